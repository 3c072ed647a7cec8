"""Queries of accounts: the throttle and reset tables (written only here), and reads of the
users a sign-in is about. The sign-in columns of users are written by users/ on accounts'
request (users.service.set_password, record_login)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..clinics.models import Clinic
from ..db import UTCDateTime
from ..ids import new_uuid
from ..users.models import User
from .models import LoginThrottle, PasswordReset

users = User.__table__
clinics = Clinic.__table__
throttle = LoginThrottle.__table__
resets = PasswordReset.__table__


async def user_with_clinic(conn: AsyncConnection, user_id: str, clinic_id: str) -> Any | None:
    return (
        (
            await conn.execute(
                select(users, clinics.c.name.label("clinic_name"))
                .join(clinics, clinics.c.id == users.c.clinic_id)
                .where(users.c.id == user_id, users.c.clinic_id == clinic_id)
            )
        )
        .mappings()
        .first()
    )


async def password_hash_of(conn: AsyncConnection, user_id: str) -> str | None:
    return await conn.scalar(select(users.c.password_hash).where(users.c.id == user_id))


async def count_failure(
    conn: AsyncConnection,
    key: str,
    limit: int,
    now: datetime,
    window: timedelta,
    lockout: timedelta,
) -> tuple[int, datetime | None]:
    """Add one failure under `key` in one statement (an upsert, so concurrent attempts each
    get their own count); returns the count in the window and the lock's end. A window older
    than `window` starts again, unless a lock still holds."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    # Typed, so the instants are stored as UTC like every other column's (see db.UTCDateTime).
    at, lock_end = literal(now, UTCDateTime()), literal(now + lockout, UTCDateTime())
    stale = (throttle.c.window_start <= now - window) & (
        throttle.c.locked_until.is_(None) | (throttle.c.locked_until <= now)
    )
    failures = case((stale, 1), else_=throttle.c.failures + 1)
    statement = (
        insert(throttle)
        .values(
            key=key,
            failures=1,
            window_start=now,
            locked_until=now + lockout if limit <= 1 else None,
        )
        .on_conflict_do_update(
            index_elements=[throttle.c.key],
            set_={
                "failures": failures,
                "window_start": case((stale, at), else_=throttle.c.window_start),
                "locked_until": case(
                    (failures >= limit, lock_end),
                    (stale, None),
                    else_=throttle.c.locked_until,
                ),
            },
        )
        .returning(throttle.c.failures, throttle.c.locked_until)
    )
    row = (await conn.execute(statement)).one()
    return int(row.failures), row.locked_until


async def uncount_failure(conn: AsyncConnection, key: str) -> None:
    await conn.execute(
        update(throttle)
        .where(throttle.c.key == key, throttle.c.failures > 0)
        .values(failures=throttle.c.failures - 1)
    )


async def clear_throttle(conn: AsyncConnection, key: str) -> None:
    await conn.execute(delete(throttle).where(throttle.c.key == key))


async def login_candidates(conn: AsyncConnection, email_lower: str) -> list[Any]:
    return list(
        (
            await conn.execute(
                select(users.c.id, users.c.clinic_id, users.c.password_hash, users.c.level)
                .where(
                    users.c.email_lower == email_lower,
                    users.c.status == "active",
                    users.c.has_dashboard_access.is_(True),
                    users.c.password_hash.is_not(None),
                )
                .order_by(users.c.last_login_at.desc(), users.c.id)
                .limit(5)
            )
        ).all()
    )


async def resettable_accounts(conn: AsyncConnection, email_lower: str) -> list[Any]:
    """Active users with dashboard access under this address (one per clinic)."""
    return list(
        (
            await conn.execute(
                select(users.c.id, users.c.clinic_id, users.c.email).where(
                    users.c.email_lower == email_lower,
                    users.c.status == "active",
                    users.c.has_dashboard_access.is_(True),
                )
            )
        ).all()
    )


async def resets_since(conn: AsyncConnection, user_id: str, since: datetime) -> int:
    return int(
        (
            await conn.execute(
                select(func.count())
                .select_from(resets)
                .where(resets.c.user_id == user_id, resets.c.created_at > since)
            )
        ).scalar()
        or 0
    )


async def insert_reset(
    conn: AsyncConnection, user_id: str, hashed: str, expires: datetime, now: datetime
) -> None:
    await conn.execute(
        resets.insert().values(
            id=new_uuid(), user_id=user_id, token_hash=hashed, expires_at=expires, created_at=now
        )
    )


async def reset_with_user(conn: AsyncConnection, hashed: str) -> Any:
    return (
        (
            await conn.execute(
                select(
                    resets.c.id.label("reset_id"),
                    resets.c.expires_at,
                    resets.c.used_at,
                    users.c.id,
                    users.c.email,
                    users.c.first_name,
                    users.c.last_name,
                    users.c.status,
                    users.c.has_dashboard_access,
                )
                .join(users, users.c.id == resets.c.user_id)
                .where(resets.c.token_hash == hashed)
            )
        )
        .mappings()
        .first()
    )


async def use_up_resets(conn: AsyncConnection, user_id: str, now: datetime) -> None:
    await conn.execute(
        update(resets)
        .where(resets.c.user_id == user_id, resets.c.used_at.is_(None))
        .values(used_at=now)
    )


async def delete_resets(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(delete(resets).where(resets.c.user_id == user_id))
