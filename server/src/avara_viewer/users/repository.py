"""Queries on users: the only SQL that reads or writes the users table for the users domain."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..clinics.models import Clinic
from ..db import insert_rows
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


# Built once: every invite group runs it, and building and keying the statement cost more
# than running it.
_EXISTING_EMAILS = select(users.c.email_lower).where(
    users.c.clinic_id == bindparam("clinic_id"),
    users.c.email_lower.in_(bindparam("lowered", expanding=True)),
)


async def existing_emails(
    conn: AsyncConnection, clinic_id: str, lowered: Iterable[str]
) -> set[str]:
    """Which of these lower-cased addresses the clinic already has (one query for all)."""
    lowered = set(lowered)
    if not lowered:
        return set()
    rows = await conn.execute(
        _EXISTING_EMAILS, {"clinic_id": clinic_id, "lowered": sorted(lowered)}
    )
    return set(rows.scalars())


async def insert_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await insert_rows(conn, users, rows)


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


async def owners(conn: AsyncConnection, clinic_id: str, *, for_update: bool = False) -> Any:
    """The clinic's owners (locked with for_update), whatever their status."""
    query = select(users).where(users.c.clinic_id == clinic_id, users.c.level == "owner")
    if for_update:
        query = query.with_for_update()
    return (await conn.execute(query)).mappings().all()


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


@dataclass(frozen=True)
class DirectoryFilters:
    """The dashboard directory's search box and filters; "" means not filtered."""

    q: str = ""
    level: str = ""
    status: str = ""
    source: str = ""
    sort: str = "-created"  # a DIRECTORY_SORTS key, "-" first for descending


DIRECTORY_SORTS = {
    "name": (users.c.last_name, users.c.first_name),
    "email": (users.c.email_lower,),
    "role": (users.c.clinic_role,),
    "level": (users.c.level,),
    "status": (users.c.status,),
    "created": (users.c.created_at,),
    "login": (users.c.last_login_at,),
}


def _directory_order(sort: str) -> list[Any]:
    descending = sort.startswith("-")
    columns = DIRECTORY_SORTS.get(sort.lstrip("-"), DIRECTORY_SORTS["created"])
    # Never-logged-in people last either way; the id keeps pages stable among equals.
    order = [c.is_(None) for c in columns if c is users.c.last_login_at]
    order += [c.desc() if descending else c.asc() for c in columns]
    return [*order, users.c.id.desc() if descending else users.c.id.asc()]


async def directory_page(
    conn: AsyncConnection,
    clinic_id: str,
    filters: DirectoryFilters,
    *,
    page: int,
    per_page: int,
) -> tuple[list[Any], int]:
    """One numbered page of the clinic's users (newest first) and the number of matches."""
    conditions = [users.c.clinic_id == clinic_id]
    if filters.q:
        # autoescape: a % or _ typed in the search box matches itself, not any text.
        q = filters.q.lower()
        conditions.append(
            or_(
                users.c.email_lower.contains(q, autoescape=True),
                func.lower(users.c.first_name).contains(q, autoescape=True),
                func.lower(users.c.last_name).contains(q, autoescape=True),
                func.lower(users.c.first_name + " " + users.c.last_name).contains(
                    q, autoescape=True
                ),
            )
        )
    if filters.level:
        conditions.append(users.c.level == filters.level)
    if filters.status:
        conditions.append(users.c.status == filters.status)
    if filters.source:
        conditions.append(users.c.invited_source == filters.source)
    where = and_(*conditions)
    total = (await conn.execute(select(func.count()).select_from(users).where(where))).scalar()
    rows = (
        (
            await conn.execute(
                select(users)
                .where(where)
                .order_by(*_directory_order(filters.sort))
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
        )
        .mappings()
        .all()
    )
    return list(rows), int(total or 0)


async def with_inviter(conn: AsyncConnection, clinic_id: str, user_id: str) -> Any | None:
    """The clinic's user with their inviter's names (inviter_first, inviter_last), or None."""
    inviter = users.alias("inviter")
    return (
        (
            await conn.execute(
                select(
                    users,
                    inviter.c.first_name.label("inviter_first"),
                    inviter.c.last_name.label("inviter_last"),
                )
                .outerjoin(inviter, inviter.c.id == users.c.inviter_id)
                .where(users.c.clinic_id == clinic_id, users.c.id == user_id)
            )
        )
        .mappings()
        .first()
    )


async def names(conn: AsyncConnection, clinic_id: str, ids: set[str]) -> dict[str, str]:
    """Full names of the clinic's users with these ids."""
    if not ids:
        return {}
    rows = await conn.execute(
        select(users.c.id, users.c.first_name, users.c.last_name).where(
            users.c.clinic_id == clinic_id, users.c.id.in_(ids)
        )
    )
    return {r.id: f"{r.first_name} {r.last_name}" for r in rows}


# --- the sign-in columns, written on the accounts domain's request ---------------------------


async def set_password(
    conn: AsyncConnection,
    user_id: str,
    password_hash: str,
    *,
    now: datetime | None = None,
) -> None:
    values: dict[str, Any] = {"password_hash": password_hash}
    if now is not None:
        values["updated_at"] = now
    await conn.execute(update(users).where(users.c.id == user_id).values(**values))


async def set_last_login(conn: AsyncConnection, user_id: str, now: datetime) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(last_login_at=now))


async def delete(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(users.delete().where(users.c.id == user_id))


async def first_names_with_clinic(conn: AsyncConnection, user_ids: set[str]) -> dict[str, Any]:
    """{user id: row with first_name and clinic_name}, for the emails that greet a person."""
    clinics = Clinic.__table__
    rows = await conn.execute(
        select(users.c.id, users.c.first_name, clinics.c.name.label("clinic_name"))
        .join(clinics, clinics.c.id == users.c.clinic_id)
        .where(users.c.id.in_(user_ids))
    )
    return {row.id: row for row in rows}
