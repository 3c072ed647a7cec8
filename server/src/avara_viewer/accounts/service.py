"""Rules of signing in: sessions (signed cookies checked against users.session_version),
logging in with throttling, passwords and password resets. Operations run inside a
transaction given to them and never commit; password hashes arrive already computed."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ..email import outbox
from ..ids import derive_token, keyed_hash, token_hash
from ..links import LinkUnusable
from . import repository as repo

# Five wrong passwords for one email from one address within 15 minutes lock that pair out
# for 15 minutes; the lock is per email+IP so an attacker cannot lock a colleague out
# from elsewhere.
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
RESET_TTL = timedelta(hours=1)
RESET_COOLDOWN = timedelta(seconds=60)
RESET_PURPOSE = "password-reset"


# --- sessions ------------------------------------------------------------------------------


async def session_user(
    conn: AsyncConnection, user_id: str, clinic_id: str, version: int
) -> Any | None:
    """The users row behind a session (with clinic_name), or None when it no longer holds."""
    row = await repo.user_with_clinic(conn, user_id, clinic_id)
    if (
        row is None
        or row["status"] != "active"
        or not row["has_dashboard_access"]
        or row["session_version"] != version
    ):
        return None
    return row


async def end_sessions(conn: AsyncConnection, user_id: str) -> None:
    """Every session of the user stops holding (their access was revoked)."""
    await repo.bump_session_version(conn, user_id)


async def set_password(conn: AsyncConnection, user_id: str, password_hash: str) -> None:
    """The password an invitee chose when accepting."""
    await repo.set_password(conn, user_id, password_hash, end_sessions=False)


# --- logging in ----------------------------------------------------------------------------


def throttle_key(secret: bytes, email: str, ip: str) -> str:
    return keyed_hash(secret, "login-throttle", f"{email.lower()}|{ip}")


async def locked_until(conn: AsyncConnection, key: str, now: datetime) -> datetime | None:
    row = await repo.throttle_row(conn, key)
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return row.locked_until  # type: ignore[no-any-return]


async def record_failure(conn: AsyncConnection, key: str, now: datetime) -> datetime | None:
    """Count a failed login; returns the lock's end when this failure locks the pair out."""
    row = await repo.throttle_row(conn, key)
    if row is None or row.window_start <= now - FAILURE_WINDOW:
        failures, window_start = 1, now
    else:
        failures, window_start = row.failures + 1, row.window_start
    lock = now + LOCKOUT if failures >= MAX_FAILURES else None
    values = {"failures": failures, "window_start": window_start, "locked_until": lock}
    await repo.save_throttle(conn, key, values, exists=row is not None)
    return lock


async def login_candidates(conn: AsyncConnection, email: str) -> list[Any]:
    """Active users with dashboard access and a password under this email (one per clinic)."""
    return await repo.login_candidates(conn, email.lower())


async def record_login(
    conn: AsyncConnection, user_id: str, throttle_key_: str, now: datetime
) -> None:
    await repo.set_last_login(conn, user_id, now)
    await repo.clear_throttle(conn, throttle_key_)


# --- password resets ----------------------------------------------------------------------


async def request_password_reset(
    conn: AsyncConnection, secret: bytes, email: str, now: datetime
) -> int:
    """Queue a reset email to every active dashboard account under this address; returns how
    many were queued (never shown: the page answers the same either way)."""
    queued = 0
    for account in await repo.resettable_accounts(conn, email.lower()):
        if await repo.resets_since(conn, account.id, now - RESET_COOLDOWN):
            continue
        nonce = secrets.token_hex(16)
        expires = now + RESET_TTL
        token = derive_token(secret, RESET_PURPOSE, account.id, nonce)
        await repo.insert_reset(conn, account.id, token_hash(token), expires, now)
        await outbox.enqueue(
            conn,
            clinic_id=account.clinic_id,
            kind=outbox.PASSWORD_RESET,
            subject_id=account.id,
            recipient=account.email,
            payload={"nonce": nonce, "expiresAt": expires.isoformat()},
            now=now,
        )
        queued += 1
    return queued


async def reset_by_token(conn: AsyncConnection, token: str, now: datetime) -> Any:
    """The user a reset link is for; raises LinkUnusable when it cannot be used."""
    row = await repo.reset_with_user(conn, token_hash(token))
    if row is None:
        raise LinkUnusable("invalid")
    if row["used_at"] is not None:
        raise LinkUnusable("used")
    if row["expires_at"] <= now:
        raise LinkUnusable("expired")
    if row["status"] != "active" or not row["has_dashboard_access"]:
        raise LinkUnusable("revoked")
    return row


async def complete_password_reset(
    conn: AsyncConnection, token: str, password_hash: str, now: datetime
) -> None:
    """Set the new password, use up every open reset link and end every session."""
    row = await reset_by_token(conn, token, now)
    await repo.use_up_resets(conn, row["id"], now)
    await repo.set_password(conn, row["id"], password_hash, end_sessions=True, now=now)
