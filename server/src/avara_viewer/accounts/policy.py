"""A clinic's sign-in rules: who must use MFA ("admins": owners and admins, the default; or
"everyone") and how long a session may sit idle (the server's setting unless the clinic chose
another). Operations take the caller's transaction and never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .. import events
from ..actor import Actor
from ..audit.service import diff
from ..errors import ValidationFailed
from .sso_models import SignInPolicy

policies = SignInPolicy.__table__

MFA_FOR_ADMINS = "admins"
MFA_FOR_EVERYONE = "everyone"
MFA_CHOICES = (MFA_FOR_ADMINS, MFA_FOR_EVERYONE)
IDLE_MINUTES_MIN = 1
IDLE_MINUTES_MAX = 12 * 60


@dataclass(frozen=True)
class Policy:
    mfa_required_for: str
    # None: the server's AVARA_VIEWER_SESSION_IDLE_TIMEOUT.
    idle_timeout: timedelta | None

    def mfa_required(self, level: str) -> bool:
        return self.mfa_required_for == MFA_FOR_EVERYONE or level in ("owner", "admin")

    def idle_timeout_or(self, default: timedelta) -> timedelta:
        return self.idle_timeout if self.idle_timeout is not None else default


DEFAULT = Policy(MFA_FOR_ADMINS, None)


async def of_clinic(conn: AsyncConnection, clinic_id: str) -> Policy:
    row = (await conn.execute(select(policies).where(policies.c.clinic_id == clinic_id))).first()
    if row is None:
        return DEFAULT
    seconds = row.idle_timeout_seconds
    return Policy(row.mfa_required_for, timedelta(seconds=seconds) if seconds else None)


def check(mfa_required_for: str, idle_minutes: str) -> Policy:
    """The policy from the settings form; a 422 naming each bad field."""
    errors = []
    if mfa_required_for not in MFA_CHOICES:
        errors.append({"field": "mfaRequiredFor", "message": "Choose admins or everyone."})
    idle: timedelta | None = None
    if idle_minutes.strip():
        text = idle_minutes.strip()
        if not text.isdigit() or not IDLE_MINUTES_MIN <= int(text) <= IDLE_MINUTES_MAX:
            errors.append(
                {
                    "field": "idleTimeoutMinutes",
                    "message": f"A whole number of minutes from {IDLE_MINUTES_MIN} "
                    f"to {IDLE_MINUTES_MAX}, or empty for the server's default.",
                }
            )
        else:
            idle = timedelta(minutes=int(text))
    if errors:
        raise ValidationFailed("The sign-in settings are not valid.", errors=errors)
    return Policy(mfa_required_for, idle)


async def update_policy(conn: AsyncConnection, actor: Actor, policy: Policy, now: datetime) -> None:
    before = await of_clinic(conn, actor.clinic_id)
    exists = (
        await conn.scalar(
            select(policies.c.clinic_id).where(policies.c.clinic_id == actor.clinic_id)
        )
    ) is not None
    values = {
        "mfa_required_for": policy.mfa_required_for,
        "idle_timeout_seconds": int(policy.idle_timeout.total_seconds())
        if policy.idle_timeout
        else None,
        "updated_at": now,
    }
    if exists:
        await conn.execute(
            update(policies).where(policies.c.clinic_id == actor.clinic_id).values(**values)
        )
    else:
        await conn.execute(insert(policies).values(clinic_id=actor.clinic_id, **values))
    changes = diff(_audited(before), _audited(policy))
    if changes:
        await events.emit(
            conn,
            events.DomainEvent(
                type=events.SIGN_IN_POLICY_UPDATED,
                actor=actor,
                target_type="clinic",
                target_id=actor.clinic_id,
                changes=changes,
                now=now,
            ),
        )


def _audited(policy: Policy) -> dict[str, object]:
    return {
        "mfaRequiredFor": policy.mfa_required_for,
        "idleTimeoutMinutes": int(policy.idle_timeout.total_seconds() // 60)
        if policy.idle_timeout
        else None,
    }
