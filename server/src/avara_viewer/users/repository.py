"""Queries on users."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import User

users = User.__table__


async def id_by_email(conn: AsyncConnection, clinic_id: str, email_lower: str) -> str | None:
    return (
        await conn.execute(
            select(users.c.id).where(
                users.c.clinic_id == clinic_id, users.c.email_lower == email_lower
            )
        )
    ).scalar()


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(users.insert().values(**values))


async def get(conn: AsyncConnection, clinic_id: str, user_id: str) -> Any:
    return (
        (
            await conn.execute(
                select(users).where(users.c.clinic_id == clinic_id, users.c.id == user_id)
            )
        )
        .mappings()
        .first()
    )
