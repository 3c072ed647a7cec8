"""Queries of SCIM: its own tables (written only here), and users read with their SCIM
identity (users ⟕ scim_users); people themselves are changed only through users.service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..users.models import User
from .models import ScimSettings, ScimUser

users = User.__table__
scim_users = ScimUser.__table__
settings_table = ScimSettings.__table__

_JOINED = users.outerjoin(scim_users, scim_users.c.user_id == users.c.id)
_COLUMNS = (
    users,
    scim_users.c.user_name.label("scim_user_name"),
    scim_users.c.external_id.label("scim_external_id"),
    scim_users.c.display_name.label("scim_display_name"),
    scim_users.c.provisioned_by_token_id.label("scim_token_id"),
    scim_users.c.updated_at.label("scim_updated_at"),
)


async def get(conn: AsyncConnection, clinic_id: str, user_id: str) -> Any:
    query = (
        select(*_COLUMNS)
        .select_from(_JOINED)
        .where(users.c.clinic_id == clinic_id, users.c.id == user_id)
    )
    return (await conn.execute(query)).mappings().first()


async def search(
    conn: AsyncConnection,
    clinic_id: str,
    condition: ColumnElement[bool] | None,
    offset: int,
    limit: int,
) -> tuple[int, Sequence[Any]]:
    """(total matches, one page of them) in creation order, ties broken by id."""
    return await page_of(
        conn, _JOINED, _COLUMNS, users, users.c.clinic_id == clinic_id, condition, offset, limit
    )


async def page_of(
    conn: AsyncConnection,
    source: Any,
    columns: Sequence[Any],
    ordered: Any,
    in_clinic: ColumnElement[bool],
    condition: ColumnElement[bool] | None,
    offset: int,
    limit: int,
) -> tuple[int, Sequence[Any]]:
    """A SCIM list page (startIndex/count are an offset and a limit): (total matches, the
    page) of `source`'s rows in the clinic, in `ordered`'s creation order, ties by id."""
    where = [in_clinic] if condition is None else [in_clinic, condition]
    total = (
        await conn.execute(select(func.count()).select_from(source).where(*where))
    ).scalar_one()
    if limit <= 0 or offset >= total:
        return total, []
    query = (
        select(*columns)
        .select_from(source)
        .where(*where)
        .order_by(ordered.c.created_at, ordered.c.id)
        .offset(offset)
        .limit(limit)
    )
    return total, (await conn.execute(query)).mappings().all()


async def user_name_owner(conn: AsyncConnection, clinic_id: str, lowered: str) -> str | None:
    """The id of the clinic's user whose userName is this (their email when SCIM never
    named them), ignoring case."""
    query = (
        select(users.c.id)
        .select_from(_JOINED)
        .where(
            users.c.clinic_id == clinic_id,
            func.coalesce(scim_users.c.user_name_lower, users.c.email_lower) == lowered,
        )
        .limit(1)
    )
    return (await conn.execute(query)).scalar()


async def save_identity(
    conn: AsyncConnection,
    *,
    user_id: str,
    clinic_id: str,
    user_name: str,
    external_id: str | None,
    display_name: str | None,
    token_id: str | None,
    now: datetime,
    exists: bool,
) -> None:
    values = {
        "user_name": user_name,
        "user_name_lower": user_name.lower(),
        "external_id": external_id,
        "display_name": display_name,
        "updated_at": now,
    }
    if exists:
        await conn.execute(
            update(scim_users).where(scim_users.c.user_id == user_id).values(**values)
        )
    else:
        await conn.execute(
            scim_users.insert().values(
                user_id=user_id,
                clinic_id=clinic_id,
                provisioned_by_token_id=token_id,
                created_at=now,
                **values,
            )
        )


async def forget_identity(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(delete(scim_users).where(scim_users.c.user_id == user_id))


async def clinic_settings(conn: AsyncConnection, clinic_id: str) -> Any:
    return (
        (await conn.execute(select(settings_table).where(settings_table.c.clinic_id == clinic_id)))
        .mappings()
        .first()
    )


async def save_settings(conn: AsyncConnection, clinic_id: str, values: dict[str, Any]) -> None:
    exists = await clinic_settings(conn, clinic_id) is not None
    if exists:
        await conn.execute(
            update(settings_table).where(settings_table.c.clinic_id == clinic_id).values(**values)
        )
    else:
        await conn.execute(settings_table.insert().values(clinic_id=clinic_id, **values))
