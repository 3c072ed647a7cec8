"""The dashboard's own rules: accepting and declining invitations, logging in (with
throttling), password resets, and the queries behind its pages. Operations run inside a
transaction given to them and never commit; password hashes arrive already computed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..actor import Actor
from ..audit import service as audit
from ..clinics import service as clinics_service
from ..clinics.models import ApiKey, Clinic
from ..email import outbox
from ..ids import derive_token, keyed_hash, new_uuid, token_hash
from ..invitations import repository as invitations_repo
from ..invitations.models import Invitation
from ..users.models import User
from .models import LoginThrottle, PasswordReset

users = User.__table__
invitations = Invitation.__table__
clinics = Clinic.__table__
api_keys = ApiKey.__table__
throttle = LoginThrottle.__table__
resets = PasswordReset.__table__

# Five wrong passwords for one email from one address within 15 minutes lock that pair out
# for 15 minutes; the lock is per email+IP so an attacker cannot lock a colleague out
# from elsewhere.
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
RESET_TTL = timedelta(hours=1)
RESET_COOLDOWN = timedelta(seconds=60)
RESET_PURPOSE = "password-reset"


class LinkUnusable(Exception):
    """The invitation or reset link can no longer be used; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- invitations --------------------------------------------------------------------------


@dataclass(frozen=True)
class InvitationView:
    id: str
    clinic_id: str
    status: str
    expiry: datetime
    user_id: str
    email: str
    first_name: str
    last_name: str
    clinic_role: str
    level: str
    has_dashboard_access: bool
    clinic_name: str
    inviter_name: str | None

    def state(self, now: datetime) -> str:
        """open, expired, accepted, rejected or revoked."""
        if self.status != "sent":
            return self.status
        return "expired" if self.expiry <= now else "open"


async def invitation_by_token(conn: AsyncConnection, token: str) -> InvitationView | None:
    row = (
        await conn.execute(
            invitations_repo.with_people().where(invitations.c.token_hash == token_hash(token))
        )
    ).first()
    if row is None:
        return None
    return InvitationView(
        id=row.id,
        clinic_id=row.clinic_id,
        status=row.status,
        expiry=row.expiry,
        user_id=row.user_id,
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        clinic_role=row.clinic_role,
        level=row.level,
        has_dashboard_access=row.has_dashboard_access,
        clinic_name=row.clinic_name,
        inviter_name=invitations_repo.inviter_name(row),
    )


async def _open_invitation(conn: AsyncConnection, token: str, now: datetime) -> InvitationView:
    view = await invitation_by_token(conn, token)
    if view is None:
        raise LinkUnusable("invalid")
    state = view.state(now)
    if state != "open":
        raise LinkUnusable(state)
    return view


async def accept_invitation(
    conn: AsyncConnection, token: str, password_hash: str | None, now: datetime
) -> InvitationView:
    """Mark the invitation accepted and the user active (with their password, if any)."""
    view = await _open_invitation(conn, token, now)
    if view.has_dashboard_access and password_hash is None:
        raise LinkUnusable("password_required")
    await conn.execute(
        update(invitations)
        .where(invitations.c.id == view.id, invitations.c.status == "sent")
        .values(status="accepted", updated_at=now)
    )
    values: dict[str, Any] = {"status": "active", "updated_at": now}
    if password_hash is not None:
        values["password_hash"] = password_hash
    await conn.execute(update(users).where(users.c.id == view.user_id).values(**values))
    await _audit_answer(conn, view, "invitation.accepted", "accepted", now)
    return view


async def _audit_answer(
    conn: AsyncConnection, view: InvitationView, action: str, status: str, now: datetime
) -> None:
    """The invitee's answer, recorded with the invitee as the actor."""
    await audit.record(
        conn,
        Actor(clinic_id=view.clinic_id, kind="user", id=view.user_id),
        action=action,
        target_type="invitation",
        target_id=view.id,
        changes={"status": {"before": "sent", "after": status}},
        now=now,
    )


async def decline_invitation(conn: AsyncConnection, token: str, now: datetime) -> InvitationView:
    view = await _open_invitation(conn, token, now)
    await conn.execute(
        update(invitations)
        .where(invitations.c.id == view.id, invitations.c.status == "sent")
        .values(status="rejected", updated_at=now)
    )
    await _audit_answer(conn, view, "invitation.rejected", "rejected", now)
    return view


# --- sessions and logging in --------------------------------------------------------------


async def session_user(
    conn: AsyncConnection, user_id: str, clinic_id: str, version: int
) -> Any | None:
    """The users row behind a session, or None when the session no longer holds."""
    row = (
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
    if (
        row is None
        or row["status"] != "active"
        or not row["has_dashboard_access"]
        or row["session_version"] != version
    ):
        return None
    return row


def throttle_key(secret: bytes, email: str, ip: str) -> str:
    return keyed_hash(secret, "login-throttle", f"{email.lower()}|{ip}")


async def locked_until(conn: AsyncConnection, key: str, now: datetime) -> datetime | None:
    row = (await conn.execute(select(throttle).where(throttle.c.key == key))).first()
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return row.locked_until


async def record_failure(conn: AsyncConnection, key: str, now: datetime) -> datetime | None:
    """Count a failed login; returns the lock's end when this failure locks the pair out."""
    row = (await conn.execute(select(throttle).where(throttle.c.key == key))).first()
    if row is None or row.window_start <= now - FAILURE_WINDOW:
        failures, window_start = 1, now
    else:
        failures, window_start = row.failures + 1, row.window_start
    lock = now + LOCKOUT if failures >= MAX_FAILURES else None
    values = {"failures": failures, "window_start": window_start, "locked_until": lock}
    if row is None:
        await conn.execute(throttle.insert().values(key=key, **values))
    else:
        await conn.execute(update(throttle).where(throttle.c.key == key).values(**values))
    return lock


async def login_candidates(conn: AsyncConnection, email: str) -> list[Any]:
    """Active users with dashboard access and a password under this email (one per clinic)."""
    return list(
        (
            await conn.execute(
                select(
                    users.c.id, users.c.clinic_id, users.c.password_hash, users.c.session_version
                )
                .where(
                    users.c.email_lower == email.lower(),
                    users.c.status == "active",
                    users.c.has_dashboard_access.is_(True),
                    users.c.password_hash.is_not(None),
                )
                .order_by(users.c.last_login_at.desc(), users.c.id)
                .limit(5)
            )
        ).all()
    )


async def record_login(
    conn: AsyncConnection, user_id: str, throttle_key_: str, now: datetime
) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(last_login_at=now))
    await conn.execute(delete(throttle).where(throttle.c.key == throttle_key_))


# --- password resets ----------------------------------------------------------------------


async def request_password_reset(
    conn: AsyncConnection, secret: bytes, email: str, now: datetime
) -> int:
    """Queue a reset email to every active dashboard account under this address; returns how
    many were queued (never shown: the page answers the same either way)."""
    accounts = (
        await conn.execute(
            select(users.c.id, users.c.clinic_id, users.c.email).where(
                users.c.email_lower == email.lower(),
                users.c.status == "active",
                users.c.has_dashboard_access.is_(True),
            )
        )
    ).all()
    queued = 0
    for account in accounts:
        recent = (
            await conn.execute(
                select(func.count())
                .select_from(resets)
                .where(resets.c.user_id == account.id, resets.c.created_at > now - RESET_COOLDOWN)
            )
        ).scalar()
        if recent:
            continue
        nonce = secrets.token_hex(16)
        expires = now + RESET_TTL
        token = derive_token(secret, RESET_PURPOSE, account.id, nonce)
        await conn.execute(
            resets.insert().values(
                id=new_uuid(),
                user_id=account.id,
                token_hash=token_hash(token),
                expires_at=expires,
                created_at=now,
            )
        )
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
    row = (
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
                .where(resets.c.token_hash == token_hash(token))
            )
        )
        .mappings()
        .first()
    )
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
    await conn.execute(
        update(resets)
        .where(resets.c.user_id == row["id"], resets.c.used_at.is_(None))
        .values(used_at=now)
    )
    await conn.execute(
        update(users)
        .where(users.c.id == row["id"])
        .values(
            password_hash=password_hash,
            session_version=users.c.session_version + 1,
            updated_at=now,
        )
    )


# --- page queries -------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectoryFilters:
    q: str = ""
    level: str = ""
    status: str = ""
    source: str = ""


async def directory_page(
    conn: AsyncConnection,
    clinic_id: str,
    filters: DirectoryFilters,
    *,
    page: int,
    per_page: int,
) -> tuple[list[Any], int]:
    """One page of the clinic's users (newest first) and the number of matches."""
    conditions = [users.c.clinic_id == clinic_id]
    if filters.q:
        pattern = f"%{filters.q.lower()}%"
        conditions.append(
            or_(
                users.c.email_lower.like(pattern),
                func.lower(users.c.first_name).like(pattern),
                func.lower(users.c.last_name).like(pattern),
                func.lower(users.c.first_name + " " + users.c.last_name).like(pattern),
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
                .order_by(users.c.created_at.desc(), users.c.id.desc())
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
        )
        .mappings()
        .all()
    )
    return list(rows), int(total or 0)


async def user_with_inviter(conn: AsyncConnection, clinic_id: str, user_id: str) -> Any | None:
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


async def emails_in_clinic(conn: AsyncConnection, clinic_id: str, lowered: list[str]) -> set[str]:
    if not lowered:
        return set()
    return set(
        (
            await conn.execute(
                select(users.c.email_lower).where(
                    users.c.clinic_id == clinic_id, users.c.email_lower.in_(lowered)
                )
            )
        ).scalars()
    )


async def list_api_keys(conn: AsyncConnection, clinic_id: str) -> list[Any]:
    return list(
        (
            await conn.execute(
                select(api_keys)
                .where(api_keys.c.clinic_id == clinic_id)
                .order_by(api_keys.c.revoked_at.is_not(None), api_keys.c.created_at.desc())
            )
        )
        .mappings()
        .all()
    )


async def create_api_key(
    conn: AsyncConnection, secret: bytes, actor: Actor, description: str, now: datetime
) -> clinics_service.NewApiKey:
    key = await clinics_service.create_api_key(
        conn, secret, actor.clinic_id, description, now, created_by_user_id=actor.id
    )
    await audit.record(
        conn,
        actor,
        action="api_key.created",
        target_type="api_key",
        target_id=key.id,
        changes={"description": {"before": None, "after": description}},
        now=now,
    )
    return key


async def revoke_api_key(conn: AsyncConnection, actor: Actor, key_id: str, now: datetime) -> bool:
    """Revoke one of the actor's clinic's active keys; False when there is no such key."""
    result = await conn.execute(
        update(api_keys)
        .where(
            api_keys.c.id == key_id,
            api_keys.c.clinic_id == actor.clinic_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    if result.rowcount != 1:
        return False
    await audit.record(
        conn,
        actor,
        action="api_key.revoked",
        target_type="api_key",
        target_id=key_id,
        changes={"revokedAt": {"before": None, "after": now.isoformat()}},
        now=now,
    )
    return True


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    actor_id: str = ""
    target_id: str = ""
    start: datetime | None = None
    end: datetime | None = None  # exclusive


async def audit_entries(
    conn: AsyncConnection,
    clinic_id: str,
    filters: AuditFilters,
    *,
    before_seq: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The clinic's audit entries matching the filters, newest first (keyset on seq)."""
    log = audit.audit_log
    query = select(log).where(log.c.clinic_id == clinic_id)
    if filters.action:
        query = query.where(log.c.action == filters.action)
    if filters.actor_id:
        query = query.where(log.c.actor_id == filters.actor_id)
    if filters.target_id:
        query = query.where(log.c.target_id == filters.target_id)
    if filters.start is not None:
        query = query.where(log.c.created_at >= filters.start)
    if filters.end is not None:
        query = query.where(log.c.created_at < filters.end)
    if before_seq is not None:
        query = query.where(log.c.seq < before_seq)
    rows = (await conn.execute(query.order_by(log.c.seq.desc()).limit(limit))).mappings().all()
    return [audit.entry_wire(r) for r in rows]


async def audit_actions(conn: AsyncConnection, clinic_id: str) -> list[str]:
    log = audit.audit_log
    return list(
        (
            await conn.execute(
                select(log.c.action)
                .where(log.c.clinic_id == clinic_id)
                .distinct()
                .order_by(log.c.action)
            )
        ).scalars()
    )


async def people_names(conn: AsyncConnection, clinic_id: str, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await conn.execute(
        select(users.c.id, users.c.first_name, users.c.last_name).where(
            users.c.clinic_id == clinic_id, users.c.id.in_(ids)
        )
    )
    return {r.id: f"{r.first_name} {r.last_name}" for r in rows}


async def forget_password_resets(conn: AsyncConnection, user_id: str) -> None:
    """Delete the user's password-reset requests and their emails (erasing the person)."""
    await outbox.forget(conn, outbox.PASSWORD_RESET, [user_id])
    await conn.execute(delete(resets).where(resets.c.user_id == user_id))
