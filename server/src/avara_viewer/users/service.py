"""Business rules of users. Services run inside a transaction given to them; they never commit.

Every function takes the connection and the actor (API key, dashboard user or command line),
raises ProblemErrors, and emits a domain event for its change, so the API, the dashboard and
the CLI share one set of rules. Only this package changes a user's status and profile;
changes that also touch invitations or sign-in (inviting, revoking, reactivating) are
composed in flows.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from .. import events
from ..actor import Actor
from ..audit.service import diff
from ..config import Settings
from ..errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..fields import email_key
from ..ids import new_user_id
from ..pagination import DEFAULT_LIMIT, Position, decode_cursor, encode_cursor, split_page
from . import repository as repo
from .repository import DirectoryFilters, UserFilters
from .schemas import EDITABLE_FIELDS, UserInviteRequest, UserUpdateRequest, user_wire

CURSOR_KIND = "users"


def audited_fields(row: Any) -> dict[str, Any]:
    """The user's fields as the audit trail shows them (wire names; nothing secret): the
    values user_wire gives them, each its column's value (read directly: the whole User
    object, its times formatted, was built for these twelve on every change)."""
    audited = {"email": row["email"], "status": row["status"]}
    for wire_name, column in EDITABLE_FIELDS.items():
        audited[wire_name] = row[column]
    return audited


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


async def add_invited_many(
    conn: AsyncConnection, items: list[InviteItem]
) -> list[dict[str, Any] | Conflict]:
    """Insert `invited` users (one statement): the users row of each item, or the Conflict of
    an address the clinic already has (or that comes earlier in `items`). The caller (the
    invite flow) gives each new user an invitation and emits `user.invited`."""
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
    for i, item in enumerate(items):
        if outcomes[i] is not None:
            continue
        actor, request = item.actor, item.request
        row = _new_user_row(actor, request, item.now, item.level or request.level, "invited")
        rows.append(row)
        outcomes[i] = row
    if rows:
        await repo.insert_many(conn, rows)
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


async def by_email(conn: AsyncConnection, clinic_id: str, email: str) -> Any | None:
    """The clinic's user with this address (compared ignoring case), or None."""
    user_id = await repo.id_by_email(conn, clinic_id, email_key(email))
    return await repo.get(conn, clinic_id, user_id) if user_id is not None else None


async def existing_emails(conn: AsyncConnection, clinic_id: str, emails: list[str]) -> set[str]:
    """Which of these addresses (lower-cased) the clinic already has."""
    return await repo.existing_emails(conn, clinic_id, (email_key(e) for e in emails))


async def directory_page(
    conn: AsyncConnection, clinic_id: str, filters: DirectoryFilters, *, page: int, per_page: int
) -> tuple[list[Any], int]:
    """The dashboard directory's numbered page and the number of matches."""
    return await repo.directory_page(conn, clinic_id, filters, page=page, per_page=per_page)


async def user_with_inviter(conn: AsyncConnection, clinic_id: str, user_id: str) -> Any | None:
    return await repo.with_inviter(conn, clinic_id, user_id)


async def names(conn: AsyncConnection, clinic_id: str, ids: set[str]) -> dict[str, str]:
    return await repo.names(conn, clinic_id, ids)


# --- who may change whom --------------------------------------------------------------------

# The fields that grant power: nobody changes their own.
PRIVILEGE_FIELDS = ("level", "hasDashboardAccess", "canManageStudies")


async def check_may_change(conn: AsyncConnection, actor: Actor, target: Any) -> None:
    """API keys manage admins and members; dashboard users must be active admins or owners.

    Owners are changed only by the operator's command line: not through the API, and not by
    another owner or admin in the dashboard (an owner may still correct their own name;
    apply_field_update refuses anyone's change to their own level or access)."""
    if actor.kind == "user":
        me = await repo.get(conn, actor.clinic_id, actor.id or "")
        if me is None or me["status"] != "active" or me["level"] not in ("admin", "owner"):
            raise Forbidden("Only the clinic's admins and owners can change users.")
    if target["level"] == "owner" and actor.kind != "cli" and not _is_self(actor, target):
        raise Forbidden(
            "Owners can only be changed by the operator, with the avara-viewer command line.",
            code="owner_protected",
        )


def _is_self(actor: Actor, target: Any) -> bool:
    return actor.kind == "user" and actor.id == target["id"]


def _administers(row: Any) -> bool:
    """Whether this users row is an owner who can run the clinic: active, with the dashboard."""
    return row["level"] == "owner" and row["status"] == "active" and row["has_dashboard_access"]


async def keep_an_owner(conn: AsyncConnection, target: Any, after: Any) -> None:
    """Refuse a change that would leave the clinic without an active owner with dashboard
    access. The clinic's owners are locked first, so two concurrent changes to two owners
    cannot each count the other as the one that remains."""
    if not _administers(target) or _administers(after):
        return
    others = [
        row
        for row in await repo.owners(conn, target["clinic_id"], for_update=True)
        if row["id"] != target["id"] and _administers(row)
    ]
    if not others:
        raise Conflict(
            f"{target['email']} is the clinic's only active owner: invite another owner "
            "(avara-viewer owners invite) before changing this one.",
            code="last_owner",
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
    if _is_self(actor, target):
        own = [w for w in PRIVILEGE_FIELDS if w in given and given[w] != target[EDITABLE_FIELDS[w]]]
        if own:
            raise Forbidden(
                "You cannot change your own level or access; another admin or owner can.",
                code="cannot_change_self",
                errors=[{"field": w, "message": "cannot be changed on yourself"} for w in own],
            )
    if new_row["level"] == "admin" and not new_row["has_dashboard_access"]:
        field = "hasDashboardAccess" if "hasDashboardAccess" in given else "level"
        raise ValidationFailed(
            "An admin must have dashboard access.",
            errors=[{"field": field, "message": "admins must have dashboard access"}],
        )
    changes = diff(audited_fields(target), audited_fields(new_row))
    if changes:
        await keep_an_owner(conn, target, new_row)
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
        await events.emit(
            conn, events.DomainEvent(events.USER_UPDATED, actor, "user", user_id, changes, now)
        )
    return new_row


async def revocable(conn: AsyncConnection, actor: Actor, user_id: str) -> Any:
    """The user whose access the actor may revoke now (locked), or the reason why not."""
    target = await get_user(conn, actor.clinic_id, user_id, for_update=True)
    await check_may_change(conn, actor, target)
    if actor.kind == "user" and actor.id == user_id:
        raise Conflict("You cannot revoke your own access.", code="cannot_revoke_self")
    if target["status"] == "revoked":
        raise Conflict(f"The access of user {user_id} is already revoked.", code="already_revoked")
    await keep_an_owner(conn, target, {**target, "status": "revoked"})
    return target


async def mark_revoked(
    conn: AsyncConnection,
    actor: Actor,
    target: Any,
    *,
    revoked_invitation_ids: list[str],
    now: datetime,
) -> None:
    """Set a revocable user's status to `revoked` and emit `user.access_revoked` (naming the
    pending invitations the flow revoked with it)."""
    await set_status(conn, target, "revoked", now)
    changes = diff({"status": target["status"]}, {"status": "revoked"})
    if revoked_invitation_ids:
        changes["revokedInvitationIds"] = revoked_invitation_ids
    await events.emit(
        conn,
        events.DomainEvent(events.USER_ACCESS_REVOKED, actor, "user", target["id"], changes, now),
    )


async def reactivatable(conn: AsyncConnection, actor: Actor, user_id: str) -> Any:
    """The revoked user the actor may reactivate now (locked), or the reason why not."""
    target = await get_user(conn, actor.clinic_id, user_id, for_update=True)
    await check_may_change(conn, actor, target)
    if target["status"] != "revoked":
        state = "active" if target["status"] == "active" else "invited and has not accepted yet"
        raise Conflict(
            f"User {user_id} is {state}: only users whose access was revoked can be reactivated.",
            code=f"user_{target['status']}",
        )
    return target


async def mark_reactivated(
    conn: AsyncConnection,
    actor: Actor,
    target: Any,
    status: str,
    *,
    invitation_id: str | None,
    now: datetime,
) -> None:
    """A revoked user becomes `active` (had joined) or `invited` (with the new invitation the
    flow issued); emits `user.reactivated`."""
    await set_status(conn, target, status, now)
    changes = diff({"status": "revoked"}, {"status": status})
    if invitation_id is not None:
        changes["invitationId"] = invitation_id
    await events.emit(
        conn,
        events.DomainEvent(events.USER_REACTIVATED, actor, "user", target["id"], changes, now),
    )


async def activate(conn: AsyncConnection, user_id: str, now: datetime) -> None:
    """The invitee accepted: their user becomes `active` (the invitation's event records it)."""
    await repo.set_values(conn, user_id, {"status": "active", "updated_at": now})


# --- sign-in columns (accounts/ decides when; users/ writes its own table) --------------------


async def set_password(
    conn: AsyncConnection, user_id: str, password_hash: str, *, now: datetime | None = None
) -> None:
    """Store a password hash (accounts asks; ending sessions is accounts' own business)."""
    await repo.set_password(conn, user_id, password_hash, now=now)


async def record_login(conn: AsyncConnection, user_id: str, now: datetime) -> None:
    await repo.set_last_login(conn, user_id, now)


# --- people whose identity provider manages them (SCIM) ---------------------------------------


async def create_active(
    conn: AsyncConnection, actor: Actor, request: UserInviteRequest, *, now: datetime
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
            events.USER_CREATED, actor, "user", row["id"], diff({}, audited_fields(row)), now
        ),
    )
    return row


async def activate_without_invitation(
    conn: AsyncConnection, actor: Actor, user_id: str, *, now: datetime
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
            diff({"status": "revoked"}, {"status": "active"}),
            now,
        ),
    )


async def erasable(conn: AsyncConnection, actor: Actor, user_id: str) -> Any:
    """The user to erase, after the rules of who may change whom (nobody erases themselves)."""
    target = await get_user(conn, actor.clinic_id, user_id, for_update=True)
    await check_may_change(conn, actor, target)
    if actor.kind == "user" and actor.id == user_id:
        raise Conflict("You cannot delete yourself.", code="cannot_delete_self")
    await keep_an_owner(conn, target, {**target, "status": "revoked"})
    return target


async def erase(
    conn: AsyncConnection,
    actor: Actor,
    target: Any,
    *,
    erased_invitation_ids: list[str],
    now: datetime,
) -> None:
    """Delete the users row for good (the flow erased what other domains kept first). The
    event names the erased fields, never their values."""
    await repo.delete(conn, target["id"])
    erased = sorted(k for k, v in audited_fields(target).items() if v is not None)
    await events.emit(
        conn,
        events.DomainEvent(
            events.USER_DELETED,
            actor,
            "user",
            target["id"],
            {"erasedFields": erased, "erasedInvitationIds": erased_invitation_ids},
            now,
        ),
    )
