"""Queries on users."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..ids import USER_ID
from ..pagination import Position, before
from .models import User

users = User.__table__


@dataclass(frozen=True)
class UserFilters:
    """The filters of users.list; None means not filtered."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    level: str | None = None
    invited_source: str | None = None
    status: str | None = None


async def id_by_email(conn: AsyncConnection, clinic_id: str, email_lower: str) -> str | None:
    return (
        await conn.execute(
            select(users.c.id).where(
                users.c.clinic_id == clinic_id, users.c.email_lower == email_lower
            )
        )
    ).scalar()


async def existing_emails(conn: AsyncConnection, clinic_id: str, lowered: set[str]) -> set[str]:
    """Which of these lower-cased addresses the clinic already has."""
    rows = await conn.execute(
        select(users.c.email_lower).where(
            users.c.clinic_id == clinic_id, users.c.email_lower.in_(sorted(lowered))
        )
    )
    return set(rows.scalars())


_INSERT = users.insert()


async def insert_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await conn.execute(_INSERT, rows)


async def get(
    conn: AsyncConnection, clinic_id: str, user_id: str, *, for_update: bool = False
) -> Any:
    """The clinic's user with this id, or None (also for ids that are not of our shape)."""
    if not USER_ID.match(user_id):
        return None
    query = select(users).where(users.c.clinic_id == clinic_id, users.c.id == user_id)
    if for_update:
        query = query.with_for_update()
    return (await conn.execute(query)).mappings().first()


async def set_values(conn: AsyncConnection, user_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(**values))


async def page(
    conn: AsyncConnection,
    clinic_id: str,
    filters: UserFilters,
    after: Position | None,
    limit: int,
) -> Sequence[Any]:
    """Up to `limit` users newest first after `after`, read along ix_users_clinic_created."""
    query = select(users).where(users.c.clinic_id == clinic_id)
    if filters.email is not None:
        query = query.where(users.c.email_lower == filters.email.lower())
    if filters.first_name is not None:
        query = query.where(
            func.lower(users.c.first_name).contains(filters.first_name.lower(), autoescape=True)
        )
    if filters.last_name is not None:
        query = query.where(
            func.lower(users.c.last_name).contains(filters.last_name.lower(), autoescape=True)
        )
    if filters.level is not None:
        query = query.where(users.c.level == filters.level)
    if filters.invited_source is not None:
        query = query.where(users.c.invited_source == filters.invited_source)
    if filters.status is not None:
        query = query.where(users.c.status == filters.status)
    if after is not None:
        query = query.where(before(users.c.created_at, users.c.id, after))
    query = query.order_by(users.c.created_at.desc(), users.c.id.desc()).limit(limit)
    return (await conn.execute(query)).mappings().all()


async def delete(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(users.delete().where(users.c.id == user_id))
