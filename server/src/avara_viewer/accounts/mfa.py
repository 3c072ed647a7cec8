"""Multi-factor authentication: TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of
clock drift either way) and recovery codes.

Enrolment makes a key (sealed with secretbox at rest), shows it as a provisioning URI, a QR
code (SVG) and base32 text, and is confirmed by the first correct code. A code is accepted
once: the last accepted time-step is kept and only a later step is accepted, by one UPDATE that
concurrent requests cannot both win. Ten recovery codes are shown once and kept as keyed hashes
(HMAC-SHA-256 under the server secret: they are random, so a slow hash adds nothing); each
works once. Operations take the caller's transaction and never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .. import secretbox
from .mfa_models import MfaRecoveryCode, MfaTotp

ISSUER_NAME = "Avara Viewer"
PERIOD_SECONDS = 30
DIGITS = 6
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
# Lower-case letters and digits without the look-alikes 0/o, 1/l/i: 31 symbols, 10 of them
# per code (~49.5 bits), printed as two groups of five.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"

_totp = MfaTotp.__table__
_codes = MfaRecoveryCode.__table__


class AlreadyEnrolled(Exception):
    """The person already has confirmed MFA; it must be reset before enrolling again."""


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the key as text, its URI and the QR code of the URI."""

    key: str
    uri: str
    qr_svg: str


def new_key() -> str:
    return pyotp.random_base32()  # 32 base32 characters: 160 bits, RFC 4226's recommendation


def enrolment(key: str, account_name: str) -> Enrolment:
    uri = pyotp.TOTP(key, digits=DIGITS, interval=PERIOD_SECONDS).provisioning_uri(
        name=account_name, issuer_name=ISSUER_NAME
    )
    qr_svg = segno.make(uri, error="m").svg_inline(scale=4, border=2)
    return Enrolment(key=key, uri=uri, qr_svg=qr_svg)


def time_step(now: datetime) -> int:
    return int(now.timestamp()) // PERIOD_SECONDS


def matching_step(key: str, code: str, *, now: datetime, after: int | None) -> int | None:
    """The time-step (within the drift window, later than `after`) whose code is `code`."""
    code = re.sub(r"\s", "", code)
    if not re.fullmatch(rf"\d{{{DIGITS}}}", code):
        return None
    otp = pyotp.TOTP(key, digits=DIGITS, interval=PERIOD_SECONDS)
    current = time_step(now)
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        # Every candidate is compared, matched or not, so timing says nothing about which.
        if hmac.compare_digest(otp.generate_otp(step), code) and (after is None or step > after):
            found = step
    return found


def new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def recovery_code_hash(server_secret: bytes, code: str) -> str:
    normalised = re.sub(r"[^a-z0-9]", "", code.lower())
    return hmac.new(
        server_secret, b"mfa-recovery-code:" + normalised.encode(), hashlib.sha256
    ).hexdigest()


def _context(user_id: str) -> str:
    return f"mfa-totp:{user_id}"


# --- operations ---------------------------------------------------------------------------


async def is_enrolled(conn: AsyncConnection, user_id: str) -> bool:
    confirmed = await conn.scalar(select(_totp.c.confirmed_at).where(_totp.c.user_id == user_id))
    return confirmed is not None


async def begin_enrolment(
    conn: AsyncConnection, server_secret: bytes, user_id: str, now: datetime
) -> str:
    """The key of the person's unconfirmed enrolment, made now if there is none."""
    row = (
        await conn.execute(
            select(_totp.c.secret_sealed, _totp.c.confirmed_at).where(_totp.c.user_id == user_id)
        )
    ).first()
    if row is not None and row.confirmed_at is not None:
        raise AlreadyEnrolled
    if row is not None:
        return secretbox.open_sealed(server_secret, _context(user_id), row.secret_sealed)
    key = new_key()
    await conn.execute(
        insert(_totp).values(
            user_id=user_id,
            secret_sealed=secretbox.seal(server_secret, _context(user_id), key),
            confirmed_at=None,
            last_step=None,
            created_at=now,
        )
    )
    return key


async def confirm_enrolment(
    conn: AsyncConnection, server_secret: bytes, user_id: str, code: str, now: datetime
) -> list[str] | None:
    """Confirm enrolment with the first code; returns the new recovery codes (to show once),
    or None when the code is wrong."""
    row = (
        await conn.execute(
            select(_totp.c.secret_sealed).where(
                _totp.c.user_id == user_id, _totp.c.confirmed_at.is_(None)
            )
        )
    ).first()
    if row is None:
        return None
    key = secretbox.open_sealed(server_secret, _context(user_id), row.secret_sealed)
    step = matching_step(key, code, now=now, after=None)
    if step is None:
        return None
    await conn.execute(
        update(_totp).where(_totp.c.user_id == user_id).values(confirmed_at=now, last_step=step)
    )
    return await replace_recovery_codes(conn, server_secret, user_id, now)


async def verify_code(
    conn: AsyncConnection, server_secret: bytes, user_id: str, code: str, now: datetime
) -> bool:
    """A TOTP code of a confirmed enrolment, accepted once (a replay or an older code fails)."""
    row = (
        await conn.execute(
            select(_totp.c.secret_sealed, _totp.c.last_step).where(
                _totp.c.user_id == user_id, _totp.c.confirmed_at.is_not(None)
            )
        )
    ).first()
    if row is None:
        return False
    key = secretbox.open_sealed(server_secret, _context(user_id), row.secret_sealed)
    step = matching_step(key, code, now=now, after=row.last_step)
    if step is None:
        return False
    # Conditional on the step still being new: of two requests with the same code, one wins.
    result = await conn.execute(
        update(_totp)
        .where(
            _totp.c.user_id == user_id,
            (_totp.c.last_step.is_(None)) | (_totp.c.last_step < step),
        )
        .values(last_step=step)
    )
    return bool(result.rowcount == 1)


async def use_recovery_code(
    conn: AsyncConnection, server_secret: bytes, user_id: str, code: str, now: datetime
) -> bool:
    result = await conn.execute(
        update(_codes)
        .where(
            _codes.c.code_hash == recovery_code_hash(server_secret, code),
            _codes.c.user_id == user_id,
            _codes.c.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return bool(result.rowcount == 1)


async def recovery_codes_left(conn: AsyncConnection, user_id: str) -> int:
    count = await conn.scalar(
        select(func.count())
        .select_from(_codes)
        .where(_codes.c.user_id == user_id, _codes.c.used_at.is_(None))
    )
    return int(count or 0)


async def replace_recovery_codes(
    conn: AsyncConnection, server_secret: bytes, user_id: str, now: datetime
) -> list[str]:
    """New recovery codes for the person (the old ones stop working); returned to show once."""
    codes = new_recovery_codes()
    await conn.execute(delete(_codes).where(_codes.c.user_id == user_id))
    await conn.execute(
        insert(_codes),
        [
            {
                "code_hash": recovery_code_hash(server_secret, code),
                "user_id": user_id,
                "used_at": None,
                "created_at": now,
            }
            for code in codes
        ],
    )
    return codes


async def remove(conn: AsyncConnection, user_id: str) -> bool:
    """Forget the person's MFA (a reset by an owner, or their own choice where allowed);
    True when there was any."""
    await conn.execute(delete(_codes).where(_codes.c.user_id == user_id))
    result = await conn.execute(delete(_totp).where(_totp.c.user_id == user_id))
    return bool(result.rowcount)
