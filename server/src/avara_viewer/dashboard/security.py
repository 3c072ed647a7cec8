"""Cookies, CSRF tokens and password hashing of the dashboard.

The session cookie holds only a random token; the session itself lives on the server
(accounts/sessions.py), so logging out or revoking access ends it at once.

CSRF uses signed double-submit tokens: a random seed in an HttpOnly cookie, and in every
form an HMAC of that seed and the signed-in user's id. A forged form from another site can
neither read the cookie nor compute the HMAC. The seed is replaced at login and logout.

Passwords are hashed with argon2id (~0.2 s of CPU per hash by default): always in a worker
thread, never on the event loop and never inside a database write operation.
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..accounts.password_policy import guessable_reason
from ..ids import constant_time_equal, keyed_hash

SESSION_COOKIE = "avv_session"
CSRF_COOKIE = "avv_csrf"
CSRF_FIELD = "csrf_token"
PASSWORD_MIN = 12
PASSWORD_MAX = 256

# argon2id; by default the library's parameters (RFC 9106's low-memory profile: 3 passes over
# 64 MiB), set from AVARA_VIEWER_ARGON2_* at start-up by `configure_hashing`. A stored hash
# carries its own parameters, so changing them never locks anyone out.
_hasher = PasswordHasher()
# Verified against when no account matches, so a wrong email costs as long as a wrong password
# (made on first use, with the configured parameters).
_dummy_hash: str | None = None


def configure_hashing(time_cost: int, memory_kib: int) -> None:
    global _hasher, _dummy_hash
    if (time_cost, memory_kib) != (_hasher.time_cost, _hasher.memory_cost):
        _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        _dummy_hash = None


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash


def new_csrf_seed() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(secret: bytes, seed: str, user_id: str | None) -> str:
    return keyed_hash(secret, "dashboard-csrf", f"{seed}|{user_id or ''}")


def csrf_valid(secret: bytes, seed: str | None, user_id: str | None, presented: str | None) -> bool:
    if not seed or not presented:
        return False
    return constant_time_equal(csrf_token(secret, seed, user_id), presented)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when password matches; costs one argon2 verification even without a hash."""

    def check() -> bool:
        try:
            return _hasher.verify(stored_hash or _dummy(), password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def password_problems(
    password: str, confirmation: str, *, email: str, first_name: str, last_name: str
) -> dict[str, str]:
    """Field name -> message for every rule the new password breaks (empty when it is fine)."""
    problems: dict[str, str] = {}
    lowered = password.lower()
    if len(password) < PASSWORD_MIN:
        problems["password"] = f"Use at least {PASSWORD_MIN} characters."
    elif len(password) > PASSWORD_MAX:
        problems["password"] = f"Use at most {PASSWORD_MAX} characters."
    else:
        local = email.split("@", 1)[0].lower()
        personal = [p for p in (local, first_name.lower(), last_name.lower()) if len(p) >= 3]
        if any(p in lowered for p in personal):
            problems["password"] = (
                "Do not include your name or the first part of your email address."
            )
        elif (reason := guessable_reason(password)) is not None:
            problems["password"] = reason
    if "password" not in problems and password != confirmation:
        problems["password_confirmation"] = "The two passwords do not match."
    return problems
