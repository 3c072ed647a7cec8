"""Rules of signing in: server-side sessions, logging in with throttling, passwords and
password resets. Operations run inside a transaction given to them and never commit; password
hashes arrive already computed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ..email import outbox
from ..fields import envelope_address
from ..ids import derive_token, keyed_hash, token_hash
from ..links import LinkUnusable
from ..users import service as users
from . import mfa, sessions, sso
from . import repository as repo
from .emails import PASSWORD_RESET_EMAIL, RESET_PURPOSE

# Failed sign-ins are counted under three keys, each in a 15-minute window: the account from
# one address (5: a person mistyping, locked for 15 minutes), the account from anywhere (10: an
# attacker rotating addresses gets no more), and the address whatever the account (100: password
# spraying across accounts). An attempt is counted *before* its password is checked, by one
# atomic increment, so concurrent guesses cannot slip past a limit.
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
PAIR_LIMIT = 5
ACCOUNT_LIMIT = 10
ADDRESS_LIMIT = 100
# Wrong second-factor codes of one person (whatever the address).
MFA_LIMIT = 5
RESET_TTL = timedelta(hours=1)
RESET_COOLDOWN = timedelta(seconds=60)


# --- sessions ------------------------------------------------------------------------------


async def session_user(conn: AsyncConnection, user_id: str, clinic_id: str) -> Any | None:
    """The users row behind a session (with clinic_name), or None when the person may no
    longer use the dashboard."""
    row = await repo.user_with_clinic(conn, user_id, clinic_id)
    if row is None or row["status"] != "active" or not row["has_dashboard_access"]:
        return None
    return row


async def end_sessions(
    conn: AsyncConnection, user_id: str, *, keep_public_id: str | None = None
) -> int:
    """End every session of the person (but `keep_public_id`); how many ended."""
    return await sessions.end_all(conn, user_id, keep_public_id=keep_public_id)


async def access_revoked(conn: AsyncConnection, user_id: str, now: datetime) -> None:
    """Their access was revoked: sessions end and every open reset link is used up, so that a
    later reactivation does not bring an old link back to life."""
    await sessions.end_all(conn, user_id)
    await repo.use_up_resets(conn, user_id, now)


async def set_password(conn: AsyncConnection, user_id: str, password_hash: str) -> None:
    """The password an invitee chose when accepting."""
    await users.set_password(conn, user_id, password_hash)


async def change_password(
    conn: AsyncConnection, user_id: str, password_hash: str, keep_public_id: str, now: datetime
) -> int:
    """The person changed their password: every other session ends, open reset links die."""
    await users.set_password(conn, user_id, password_hash, now=now)
    await repo.use_up_resets(conn, user_id, now)
    return await sessions.end_all(conn, user_id, keep_public_id=keep_public_id)


async def password_hash_of(conn: AsyncConnection, user_id: str) -> str | None:
    return await repo.password_hash_of(conn, user_id)


# --- logging in ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ThrottleKey:
    key: str
    limit: int


@dataclass(frozen=True)
class Attempt:
    """The outcome of counting an attempt: `allowed` (the password may be checked) and, when
    the attempt limit is reached, until when."""

    allowed: bool
    locked_until: datetime | None
    keys: tuple[ThrottleKey, ...]


def login_throttle_keys(secret: bytes, email: str, ip: str) -> tuple[ThrottleKey, ...]:
    email = email.lower()
    return (
        ThrottleKey(keyed_hash(secret, "login-throttle", f"{email}|{ip}"), PAIR_LIMIT),
        ThrottleKey(keyed_hash(secret, "login-throttle-account", email), ACCOUNT_LIMIT),
        ThrottleKey(keyed_hash(secret, "login-throttle-address", ip), ADDRESS_LIMIT),
    )


def mfa_throttle_keys(secret: bytes, user_id: str) -> tuple[ThrottleKey, ...]:
    return (ThrottleKey(keyed_hash(secret, "mfa-throttle", user_id), MFA_LIMIT),)


async def count_attempt(
    conn: AsyncConnection, keys: tuple[ThrottleKey, ...], now: datetime
) -> Attempt:
    """Count an attempt as failed before checking it (success takes it back)."""
    allowed, lock_ends = True, []
    for throttle_key in keys:
        failures, locked_until = await repo.count_failure(
            conn, throttle_key.key, throttle_key.limit, now, FAILURE_WINDOW, LOCKOUT
        )
        if failures > throttle_key.limit:
            allowed = False
        if locked_until is not None and locked_until > now:
            lock_ends.append(locked_until)
    return Attempt(allowed, max(lock_ends) if lock_ends else None, keys)


async def attempt_succeeded(conn: AsyncConnection, attempt: Attempt) -> None:
    """A right password or code: the person's keys start afresh; a shared address gets back
    the one attempt counted for it."""
    for throttle_key in attempt.keys:
        if throttle_key.limit == ADDRESS_LIMIT:
            await repo.uncount_failure(conn, throttle_key.key)
        else:
            await repo.clear_throttle(conn, throttle_key.key)


async def login_candidates(conn: AsyncConnection, email: str) -> list[Any]:
    """Active users with dashboard access and a password under this email (one per clinic)."""
    return await repo.login_candidates(conn, email.lower())


async def record_login(conn: AsyncConnection, user_id: str, now: datetime) -> None:
    await users.record_login(conn, user_id, now)


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
            kind=PASSWORD_RESET_EMAIL,
            subject_id=account.id,
            recipient=envelope_address(account.email),
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
    await users.set_password(conn, row["id"], password_hash, now=now)
    await sessions.end_all(conn, row["id"])


async def forget_password_resets(conn: AsyncConnection, user_id: str) -> None:
    """Delete the user's password-reset requests and their emails (erasing the person)."""
    await outbox.forget(conn, PASSWORD_RESET_EMAIL, [user_id])
    await repo.delete_resets(conn, user_id)


async def forget_sign_in(conn: AsyncConnection, user_id: str) -> None:
    """Delete everything the person signs in with (erasing the person): sessions, MFA and
    recovery codes, the provider link and password-reset requests with their emails."""
    await sessions.end_all(conn, user_id)
    await mfa.remove(conn, user_id)
    await sso.unlink(conn, user_id)
    await forget_password_resets(conn, user_id)
