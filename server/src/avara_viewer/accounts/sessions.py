"""Dashboard sessions kept on the server. The browser holds a random token; the table holds its
keyed hash with the person, clinic, device, address and two deadlines: idle (moved forward by
each request) and absolute (fixed at sign-in). Ending a session deletes its row, so a copied
cookie stops working at once. Operations take the caller's transaction and never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from . import policy
from .session_models import DashboardSession

sessions = DashboardSession.__table__

USER_AGENT_MAX = 300
# A session waiting for a second factor or MFA enrolment lasts this long at most.
PENDING_MAX_AGE = timedelta(minutes=10)


@dataclass(frozen=True)
class SessionInfo:
    public_id: str
    user_id: str
    clinic_id: str
    method: str
    pending: str | None
    created_at: datetime
    last_seen_at: datetime
    idle_expires_at: datetime
    expires_at: datetime
    user_agent: str
    ip: str

    @classmethod
    def of(cls, row: Any) -> SessionInfo:
        return cls(
            public_id=row.public_id,
            user_id=row.user_id,
            clinic_id=row.clinic_id,
            method=row.method,
            pending=row.pending,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            idle_expires_at=row.idle_expires_at,
            expires_at=row.expires_at,
            user_agent=row.user_agent,
            ip=row.ip,
        )

    def ended_reason(self, now: datetime) -> str | None:
        """ "expired" (absolute lifetime), "idle" (inactivity), or None while it is alive."""
        if now >= self.expires_at:
            return "expired"
        if now >= self.idle_expires_at:
            return "idle"
        return None


@dataclass(frozen=True)
class Lookup:
    """What a request's token found: the live session, or why there is none."""

    session: SessionInfo | None
    ended: str | None  # "idle", "expired" or None (no such session)


def token_hash(server_secret: bytes, token: str) -> str:
    return hmac.new(
        server_secret, b"dashboard-session:" + token.encode(), hashlib.sha256
    ).hexdigest()


async def start(
    conn: AsyncConnection,
    server_secret: bytes,
    *,
    user_id: str,
    clinic_id: str,
    method: str,
    pending: str | None,
    now: datetime,
    idle_timeout: timedelta,
    max_age: timedelta,
    user_agent: str,
    ip: str,
) -> tuple[str, SessionInfo]:
    """A new session; returns the token for the cookie (shown to nobody else) and the row."""
    token = secrets.token_urlsafe(32)
    if pending is not None:
        max_age = min(max_age, PENDING_MAX_AGE)
    values = {
        "public_id": "ses_" + secrets.token_hex(16),
        "user_id": user_id,
        "clinic_id": clinic_id,
        "method": method,
        "pending": pending,
        "created_at": now,
        "last_seen_at": now,
        "idle_expires_at": min(now + idle_timeout, now + max_age),
        "expires_at": now + max_age,
        "user_agent": user_agent[:USER_AGENT_MAX],
        "ip": ip[:64],
    }
    await conn.execute(insert(sessions).values(id_hash=token_hash(server_secret, token), **values))
    return token, SessionInfo(**values)  # type: ignore[arg-type]


async def touch(
    conn: AsyncConnection,
    server_secret: bytes,
    token: str,
    now: datetime,
    idle_timeout: timedelta,
) -> Lookup:
    """The session of `token` with its idle deadline moved forward (by the clinic's idle
    timeout, `idle_timeout` when it has none), or why it is gone (an ended session's row is
    deleted here)."""
    if not token or len(token) > 100:
        return Lookup(None, None)
    id_hash = token_hash(server_secret, token)
    row = (await conn.execute(select(sessions).where(sessions.c.id_hash == id_hash))).first()
    if row is None:
        return Lookup(None, None)
    found = SessionInfo.of(row)
    reason = found.ended_reason(now)
    if reason is not None:
        await conn.execute(delete(sessions).where(sessions.c.id_hash == id_hash))
        return Lookup(None, reason)
    # The clinic's idle timeout as it is now (an admin may have shortened it), else the
    # server's.
    clinic_policy = await policy.of_clinic(conn, found.clinic_id)
    idle_expires_at = min(now + clinic_policy.idle_timeout_or(idle_timeout), found.expires_at)
    await conn.execute(
        update(sessions)
        .where(sessions.c.id_hash == id_hash)
        .values(last_seen_at=now, idle_expires_at=idle_expires_at)
    )
    return Lookup(
        SessionInfo(**{**found.__dict__, "last_seen_at": now, "idle_expires_at": idle_expires_at}),
        None,
    )


async def end(conn: AsyncConnection, server_secret: bytes, token: str) -> SessionInfo | None:
    """End the session of `token` (logout); the session it was, if any."""
    if not token or len(token) > 100:
        return None
    id_hash = token_hash(server_secret, token)
    row = (await conn.execute(select(sessions).where(sessions.c.id_hash == id_hash))).first()
    if row is None:
        return None
    await conn.execute(delete(sessions).where(sessions.c.id_hash == id_hash))
    return SessionInfo.of(row)


async def end_all(conn: AsyncConnection, user_id: str, *, keep_public_id: str | None = None) -> int:
    """End every session of a person (but the one named in keep_public_id); how many ended."""
    statement = delete(sessions).where(sessions.c.user_id == user_id)
    if keep_public_id is not None:
        statement = statement.where(sessions.c.public_id != keep_public_id)
    result = await conn.execute(statement)
    return int(result.rowcount or 0)


async def end_in_clinic(
    conn: AsyncConnection, clinic_id: str, public_id: str
) -> SessionInfo | None:
    """End one session of the clinic (an admin's action); None when there is no such session
    in this clinic."""
    row = (
        await conn.execute(
            select(sessions).where(
                sessions.c.public_id == public_id, sessions.c.clinic_id == clinic_id
            )
        )
    ).first()
    if row is None:
        return None
    await conn.execute(delete(sessions).where(sessions.c.public_id == public_id))
    return SessionInfo.of(row)


async def of_user(conn: AsyncConnection, user_id: str, now: datetime) -> list[SessionInfo]:
    rows = await conn.execute(
        select(sessions)
        .where(
            sessions.c.user_id == user_id,
            sessions.c.expires_at > now,
            sessions.c.idle_expires_at > now,
        )
        .order_by(sessions.c.last_seen_at.desc())
    )
    return [SessionInfo.of(row) for row in rows]


async def of_clinic(
    conn: AsyncConnection, clinic_id: str, now: datetime, limit: int = 500
) -> list[SessionInfo]:
    rows = await conn.execute(
        select(sessions)
        .where(
            sessions.c.clinic_id == clinic_id,
            sessions.c.expires_at > now,
            sessions.c.idle_expires_at > now,
            sessions.c.pending.is_(None),
        )
        .order_by(sessions.c.last_seen_at.desc())
        .limit(limit)
    )
    return [SessionInfo.of(row) for row in rows]


async def purge_ended(conn: AsyncConnection, now: datetime) -> None:
    """Delete sessions past a deadline that no request came back for."""
    await conn.execute(
        delete(sessions).where((sessions.c.expires_at <= now) | (sessions.c.idle_expires_at <= now))
    )
