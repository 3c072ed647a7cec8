"""Business rules of users. Services run inside a transaction given to them; they never commit.

Every function takes the connection, the settings and the actor (API key, dashboard user or
command line), raises ProblemErrors, and records its change in the audit trail, so the API,
the dashboard and the CLI share one set of rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from .. import events
from ..actor import Actor
from ..audit import service as audit
from ..config import Settings
from ..dashboard import service as dashboard_service
from ..errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..fields import email_key
from ..ids import new_user_id
from ..invitations import repository as invitations_repo
from ..pagination import DEFAULT_LIMIT, Position, decode_cursor, encode_cursor, split_page
from . import repository as repo
from .repository import UserFilters
from .schemas import EDITABLE_FIELDS, UserInviteRequest, UserUpdateRequest, user_wire

CURSOR_KIND = "users"


def _audited_fields(row: Any) -> dict[str, Any]:
    """The user's fields as the audit trail shows them (wire names; nothing secret)."""
    wire = user_wire(row)
    return {k: wire[k] for k in ("email", "status", *EDITABLE_FIELDS)}


@dataclass(frozen=True)
class InviteItem:
    """One invitation to make: by whom, of whom, when (and `level` only for owners)."""

    actor: Actor
    request: UserInviteRequest
    now: datetime
    level: str | None = None


def _email_taken(email: str) -> Conflict:
    return Conflict(
        f"A user with the email {email} already exists in this clinic "
        "(if their access was revoked, reactivate them instead).",
        code="email_already_exists",
    )


async def invite(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    request: UserInviteRequest,
    *,
    now: datetime,
    level: str | None = None,
) -> dict[str, Any]:
    """Create a pending user, a `sent` invitation and its queued email; returns the users row."""
    [outcome] = await invite_many(conn, settings, [InviteItem(actor, request, now, level)])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _new_user_row(
    actor: Actor, request: UserInviteRequest, now: datetime, level: str, status: str
) -> dict[str, Any]:
    return {
        "id": new_user_id(),
        "clinic_id": actor.clinic_id,
        "email": request.email,
        "email_lower": email_key(request.email),
        "first_name": request.first_name,
        "middle_name": request.middle_name,
        "last_name": request.last_name,
        "suffix1": request.suffix1,
        "suffix2": request.suffix2,
        "phone_number": request.phone_number,
        "clinic_role": request.clinic_role,
        "level": level,
        "can_manage_studies": request.can_manage_studies,
        "has_dashboard_access": request.has_dashboard_access,
        "invited_source": actor.invited_source,
        "inviter_id": actor.id if actor.kind == "user" else None,
        "status": status,
        "password_hash": None,
        "session_version": 0,
        "created_at": now,
        "updated_at": now,
        "last_login_at": None,
    }


async def invite_many(
    conn: AsyncConnection, settings: Settings, items: list[InviteItem]
) -> list[dict[str, Any] | Conflict]:
    """Invite several people at once (one statement per table): the users row of each, or the
    Conflict of an address the clinic already has (or that comes earlier in `items`)."""
    outcomes: list[dict[str, Any] | Conflict | None] = [None] * len(items)
    by_clinic: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_clinic.setdefault(item.actor.clinic_id, []).append(i)
    for clinic_id, indexes in by_clinic.items():
        wanted = {email_key(items[i].request.email) for i in indexes}
        taken = await repo.existing_emails(conn, clinic_id, wanted)
        for i in indexes:
            lowered = email_key(items[i].request.email)
            if lowered in taken:
                outcomes[i] = _email_taken(items[i].request.email)
            taken.add(lowered)
    rows: list[dict[str, Any]] = []
    new_invitations: list[invitations_repo.NewInvitation] = []
    accepted: list[int] = []
    for i, item in enumerate(items):
        if outcomes[i] is not None:
            continue
        actor, request = item.actor, item.request
        row = _new_user_row(actor, request, item.now, item.level or request.level, "invited")
        rows.append(row)
        accepted.append(i)
        new_invitations.append(
            invitations_repo.NewInvitation(
                clinic_id=actor.clinic_id,
                user_id=row["id"],
                email=request.email,
                inviter_id=row["inviter_id"],
                api_key_id=actor.id if actor.kind == "api_key" else None,
                invited_source=actor.invited_source,
                expiry=item.now + settings.invitation_ttl,
            )
        )
    if rows:
        now = max(items[i].now for i in accepted)
        await repo.insert_many(conn, rows)
        invitation_ids = await invitations_repo.create_and_queue_many(
            conn, settings.resolved_secret_key, new_invitations, now
        )
        drafts = []
        for i, row, invitation_id in zip(accepted, rows, invitation_ids, strict=True):
            changes = audit.diff({}, {**_audited_fields(row), "invitationId": invitation_id})
            drafts.append(
                audit.Draft(
                    items[i].actor, "user.invited", "user", row["id"], changes, items[i].now
                )
            )
            outcomes[i] = row
        await audit.record_many(conn, drafts)
    return [o for o in outcomes if o is not None]


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserPage:
    users: list[Any]
    cursor: str | None
    has_more: bool

    def wire(self) -> dict[str, Any]:
        return {
            "users": [user_wire(u) for u in self.users],
            "cursor": self.cursor,
            "hasMore": self.has_more,
        }


async def list_users(
    conn: AsyncConnection,
    settings: Settings,
    clinic_id: str,
    filters: UserFilters,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> UserPage:
    """A page of the clinic's users, newest first; `cursor` comes from the previous page."""
    secret = settings.resolved_secret_key
    after = decode_cursor(secret, CURSOR_KIND, cursor) if cursor is not None else None
    rows = await repo.page(conn, clinic_id, filters, after, limit + 1)
    users, has_more = split_page(rows, limit)
    next_cursor = (
        encode_cursor(secret, CURSOR_KIND, Position(users[-1]["created_at"], users[-1]["id"]))
        if has_more
        else None
    )
    return UserPage(users, next_cursor, has_more)


async def get_user(
    conn: AsyncConnection, clinic_id: str, user_id: str, *, for_update: bool = False
) -> Any:
    """The clinic's user, or 404 (for unknown ids and for other clinics' users alike)."""
    row = await repo.get(conn, clinic_id, user_id, for_update=for_update)
    if row is None:
        raise NotFound(f"No user with id {user_id} in this clinic.", code="user_not_found")
    return row


# --- who may change whom --------------------------------------------------------------------


async def check_may_change(conn: AsyncConnection, actor: Actor, target: Any) -> None:
    """API keys manage admins and members; dashboard users must be active admins or owners,
    and only an owner (or the operator's command line) may change an owner."""
    acting_level = None
    if actor.kind == "user":
        me = await repo.get(conn, actor.clinic_id, actor.id or "")
        if me is None or me["status"] != "active" or me["level"] not in ("admin", "owner"):
            raise Forbidden("Only the clinic's admins and owners can change users.")
        acting_level = me["level"]
    if target["level"] == "owner" and actor.kind != "cli" and acting_level != "owner":
        raise Forbidden(
            "Owners cannot be changed through the API; an owner can change them in the dashboard.",
            code="owner_protected",
        )


# --- changing -----------------------------------------------------------------------------


async def set_status(conn: AsyncConnection, target: Any, status: str, now: datetime) -> None:
    """Set a user's status without other rules (callers check them and audit the change)."""
    await repo.set_values(conn, target["id"], {"status": status, "updated_at": now})


async def apply_field_update(
    conn: AsyncConnection,
    actor: Actor,
    target: Any,
    update: UserUpdateRequest,
    *,
    now: datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply an update's fields to a user row (the caller has run check_may_change).

    Returns the new row and the audit changes; also used by invitation updates."""
    given = {
        wire: getattr(update, column)
        for wire, column in EDITABLE_FIELDS.items()
        if column in update.model_fields_set
    }
    new_row = dict(target)
    for wire, value in given.items():
        new_row[EDITABLE_FIELDS[wire]] = value
    if new_row["level"] == "admin" and not new_row["has_dashboard_access"]:
        field = "hasDashboardAccess" if "hasDashboardAccess" in given else "level"
        raise ValidationFailed(
            "An admin must have dashboard access.",
            errors=[{"field": field, "message": "admins must have dashboard access"}],
        )
    changes = audit.diff(_audited_fields(target), _audited_fields(new_row))
    if changes:
        new_row["updated_at"] = now
        await repo.set_values(
            conn,
            target["id"],
            {EDITABLE_FIELDS[w]: v for w, v in given.items()} | {"updated_at": now},
        )
    return new_row, changes


async def update_user(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    user_id: str,
    update: UserUpdateRequest,
    *,
    now: datetime,
) -> dict[str, Any]:
    """Change some of a user's fields (never the email); returns the updated row."""
    target = await get_user(conn, actor.clinic_id, user_id, for_update=True)
    await check_may_change(conn, actor, target)
    new_row, changes = await apply_field_update(conn, actor, target, update, now=now)
    if changes:
        await audit.record(
            conn,
            actor,
            action="user.updated",
            target_type="user",
            target_id=user_id,
            changes=changes,
            now=now,
        )
    return new_row


async def revoke_access(
    conn: AsyncConnection, settings: Settings, actor: Actor, user_id: str, *, now: datetime
) -> str:
    """The user can no longer log in, their sessions end (session_version is bumped) and a
    pending invitation is revoked. Returns a message for the caller."""
    target = await get_user(conn, actor.clinic_id, user_id, for_update=True)
    await check_may_change(conn, actor, target)
    if actor.kind == "user" and actor.id == user_id:
        raise Conflict("You cannot revoke your own access.", code="cannot_revoke_self")
    if target["status"] == "revoked":
        raise Conflict(f"The access of user {user_id} is already revoked.", code="already_revoked")
    revoked_invitations = await invitations_repo.pending_for_user(conn, user_id)
    for invitation_id in revoked_invitations:
        await invitations_repo.revoke(conn, invitation_id, now)
    await repo.set_values(
        conn,
        user_id,
        {"status": "revoked", "session_version": target["session_version"] + 1, "updated_at": now},
    )
    changes = audit.diff({"status": target["status"]}, {"status": "revoked"})
    if revoked_invitations:
        changes["revokedInvitationIds"] = revoked_invitations
    await audit.record(
        conn,
        actor,
        action="user.access_revoked",
        target_type="user",
        target_id=user_id,
        changes=changes,
        now=now,
    )
    if revoked_invitations:
        return f"Access revoked for {target['email']}; their pending invitation was revoked too."
    return f"Access revoked for {target['email']}; their sessions have ended."


async def reactivate(
    conn: AsyncConnection, settings: Settings, actor: Actor, user_id: str, *, now: datetime
) -> str:
    """Give a revoked user their access back. Returns a message for the caller.

    Someone who had joined (accepted an invitation, set a password or logged in) becomes
    active at once. Someone who never accepted goes back to `invited` with a fresh invitation
    and a new email, since the old link was revoked with their access."""
    target = await get_user(conn, actor.clinic_id, user_id, for_update=True)
    await check_may_change(conn, actor, target)
    if target["status"] != "revoked":
        state = "active" if target["status"] == "active" else "invited and has not accepted yet"
        raise Conflict(
            f"User {user_id} is {state}: only users whose access was revoked can be reactivated.",
            code=f"user_{target['status']}",
        )
    joined = (
        target["password_hash"] is not None
        or target["last_login_at"] is not None
        or await invitations_repo.was_accepted(conn, user_id)
    )
    changes: dict[str, Any]
    if joined:
        await repo.set_values(conn, user_id, {"status": "active", "updated_at": now})
        changes = audit.diff({"status": "revoked"}, {"status": "active"})
        message = f"{target['email']} is active again and can log in."
    else:
        await repo.set_values(conn, user_id, {"status": "invited", "updated_at": now})
        invitation_id = await invitations_repo.create_and_queue(
            conn,
            secret_key=settings.resolved_secret_key,
            clinic_id=actor.clinic_id,
            user_id=user_id,
            email=target["email"],
            inviter_id=actor.id if actor.kind == "user" else None,
            api_key_id=actor.id if actor.kind == "api_key" else None,
            invited_source=actor.invited_source,
            expiry=now + settings.invitation_ttl,
            now=now,
        )
        changes = audit.diff({"status": "revoked"}, {"status": "invited"})
        changes["invitationId"] = invitation_id
        message = f"{target['email']} had not accepted their invitation: a new invitation was sent."
    await audit.record(
        conn,
        actor,
        action="user.reactivated",
        target_type="user",
        target_id=user_id,
        changes=changes,
        now=now,
    )
    return message


# --- for SCIM (issue 12): people whose identity provider manages them -------------------------


async def create_active(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    request: UserInviteRequest,
    *,
    now: datetime,
) -> dict[str, Any]:
    """Create a user who is active at once, without an invitation or its email (for clinics
    whose people sign in with single sign-on). Returns the users row; 409 for a taken email."""
    if await repo.existing_emails(conn, actor.clinic_id, {email_key(request.email)}):
        raise _email_taken(request.email)
    row = _new_user_row(actor, request, now, request.level, "active")
    await repo.insert_many(conn, [row])
    await events.emit(
        conn,
        events.DomainEvent(
            events.USER_CREATED, actor, "user", row["id"], audit.diff({}, _audited_fields(row)), now
        ),
    )
    return row


async def activate_without_invitation(
    conn: AsyncConnection, settings: Settings, actor: Actor, user_id: str, *, now: datetime
) -> None:
    """Give a revoked user their access back at once, without an invitation or an email,
    whether or not they ever accepted one (the counterpart of create_active)."""
    target = await get_user(conn, actor.clinic_id, user_id, for_update=True)
    await check_may_change(conn, actor, target)
    if target["status"] != "revoked":
        raise Conflict(f"User {user_id} is not revoked.", code=f"user_{target['status']}")
    await repo.set_values(conn, user_id, {"status": "active", "updated_at": now})
    await events.emit(
        conn,
        events.DomainEvent(
            events.USER_REACTIVATED,
            actor,
            "user",
            user_id,
            audit.diff({"status": "revoked"}, {"status": "active"}),
            now,
        ),
    )


async def erase_user(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    user_id: str,
    *,
    now: datetime,
) -> None:
    """Remove the user for good: their row, invitations, password resets and every email
    about them (queued or sent). The audit entry names the erased fields, never their values.
    The caller deletes what it keeps about the user first (SCIM's identity row)."""
    target = await get_user(conn, actor.clinic_id, user_id, for_update=True)
    await check_may_change(conn, actor, target)
    if actor.kind == "user" and actor.id == user_id:
        raise Conflict("You cannot delete yourself.", code="cannot_delete_self")
    invitation_ids = await invitations_repo.forget_for_user(conn, user_id)
    await dashboard_service.forget_password_resets(conn, user_id)
    await repo.delete(conn, user_id)
    erased = sorted(k for k, v in _audited_fields(target).items() if v is not None)
    await events.emit(
        conn,
        events.DomainEvent(
            events.USER_DELETED,
            actor,
            "user",
            user_id,
            {"erasedFields": erased, "erasedInvitationIds": invitation_ids},
            now,
        ),
    )
