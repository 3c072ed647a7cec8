"""Sessions, CSRF tokens and password hashing of the dashboard.

Sessions are signed cookies (HMAC-SHA-256 under the server secret) carrying the user id,
the clinic id, the user's `session_version` and an expiry; every request checks the version
against the database, so revoking a user or changing a password ends their sessions at once.

CSRF uses signed double-submit tokens: a random seed in an HttpOnly cookie, and in every
form an HMAC of that seed and the signed-in user's id. A forged form from another site can
neither read the cookie nor compute the HMAC. The seed is replaced at login and logout.

Passwords are hashed with argon2id (~0.2 s per hash): always in a worker thread, never on
the event loop and never inside a database write operation.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..ids import constant_time_equal, keyed_hash

SESSION_COOKIE = "avv_session"
CSRF_COOKIE = "avv_csrf"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 12 * 3600
PASSWORD_MIN = 12
PASSWORD_MAX = 256

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified against when no account matches, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, purpose: str, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{keyed_hash(secret, purpose, body)}"


def unsign(secret: bytes, purpose: str, value: str | None) -> dict[str, Any] | None:
    if not value or value.count(".") != 1:
        return None
    body, mac = value.split(".")
    if not constant_time_equal(mac, keyed_hash(secret, purpose, body)):
        return None
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


@dataclass(frozen=True)
class Session:
    user_id: str
    clinic_id: str
    version: int
    expires: int


def session_cookie(secret: bytes, user_id: str, clinic_id: str, version: int) -> str:
    expires = int(time.time()) + SESSION_SECONDS
    return sign(
        secret, "dashboard-session", {"u": user_id, "c": clinic_id, "v": version, "e": expires}
    )


def read_session(secret: bytes, value: str | None) -> Session | None:
    data = unsign(secret, "dashboard-session", value)
    if data is None:
        return None
    try:
        session = Session(str(data["u"]), str(data["c"]), int(data["v"]), int(data["e"]))
    except (KeyError, TypeError, ValueError):
        return None
    return session if session.expires > time.time() else None


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
            return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
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
    if "password" not in problems and password != confirmation:
        problems["password_confirmation"] = "The two passwords do not match."
    return problems
