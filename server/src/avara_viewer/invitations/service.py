"""Business rules of invitations: list, issue, edit, revoke, resend, accept and decline.
Services never commit.

Only this package changes an invitation's status. Like users.service, every function raises
ProblemErrors and emits a domain event for its change; changes that also touch the user
(inviting, revoking, accepting) are composed in flows.py, which checks who may change whom.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from .. import events
from ..actor import Actor
from ..audit.service import diff
from ..config import Settings
from ..errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from ..fields import InvitationStatus
from ..ids import token_hash
from ..links import LinkUnusable
from ..pagination import DEFAULT_LIMIT, Position, decode_cursor, encode_cursor, split_page
from . import repository as repo
from .repository import InvitationFilters, NewInvitation
from .schemas import invitation_wire

CURSOR_KIND = "invitations"
STATUSES: tuple[str, ...] = InvitationStatus.__args__  # type: ignore[attr-defined]
EXPIRED_FILTERS = ("all", "expired", "not-expired")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")  # ASCII digits only (not ², ٣)


def is_expired(row: Any, now: datetime) -> bool:
    """A `sent` invitation whose link has lapsed (refused at accept)."""
    return bool(row["status"] == "sent" and row["expiry"] <= now)


def parse_filters(
    *,
    status: str | None = None,
    expired: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    user_id: str | None = None,
) -> InvitationFilters:
    """The list's query values as filters; one 422 naming every bad parameter."""
    errors: list[dict[str, str]] = []
    statuses: tuple[str, ...] | None = None
    if status is not None:
        statuses = tuple(s.strip() for s in status.split(","))
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown or not statuses:
            errors.append(
                {
                    "field": "status",
                    "message": "must be a comma-separated list of " + ", ".join(STATUSES),
                }
            )
    if expired is not None and expired not in EXPIRED_FILTERS:
        errors.append(
            {"field": "expired", "message": "must be one of " + ", ".join(EXPIRED_FILTERS)}
        )
    days: dict[str, date] = {}
    for name, value in (("startDate", start_date), ("endDate", end_date)):
        if value is None:
            continue
        try:
            if not _DATE.match(value):
                raise ValueError
            days[name] = date.fromisoformat(value)
        except ValueError:
            errors.append({"field": name, "message": "must be a date as YYYY-MM-DD"})
    if "startDate" in days and "endDate" in days and days["startDate"] > days["endDate"]:
        errors.append({"field": "endDate", "message": "must not be before startDate"})
    if errors:
        names = ", ".join(e["field"] for e in errors)
        raise ValidationFailed(f"Invalid query parameters: {names}.", errors=errors)
    start = days.get("startDate")
    end = days.get("endDate")
    return InvitationFilters(
        statuses=statuses,
        expired=expired or "all",
        created_from=datetime.combine(start, time(), UTC) if start else None,
        # The last day there is (9999-12-31) has no day after it: no upper bound then.
        created_before=(
            datetime.combine(end + timedelta(days=1), time(), UTC)
            if end and end < date.max
            else None
        ),
        user_id=user_id,
    )


@dataclass(frozen=True)
class InvitationPage:
    invitations: list[Any]
    cursor: str | None
    has_more: bool

    def wire(self) -> dict[str, Any]:
        return {
            "invitations": [invitation_wire(i) for i in self.invitations],
            "cursor": self.cursor,
            "hasMore": self.has_more,
        }


async def list_invitations(
    conn: AsyncConnection,
    settings: Settings,
    clinic_id: str,
    filters: InvitationFilters,
    *,
    now: datetime,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> InvitationPage:
    """A page of the clinic's invitations, newest first; `cursor` from the previous page."""
    secret = settings.resolved_secret_key
    after = decode_cursor(secret, CURSOR_KIND, cursor) if cursor is not None else None
    rows = await repo.page(conn, clinic_id, filters, after, limit + 1, now)
    page, has_more = split_page(rows, limit)
    next_cursor = (
        encode_cursor(secret, CURSOR_KIND, Position(page[-1]["created_at"], page[-1]["id"]))
        if has_more
        else None
    )
    return InvitationPage(page, next_cursor, has_more)


async def count_invitations(
    conn: AsyncConnection, clinic_id: str, filters: InvitationFilters, *, now: datetime
) -> int:
    """How many of the clinic's invitations match the filters (the dashboard's count)."""
    return await repo.count(conn, clinic_id, filters, now)


async def get_invitation(
    conn: AsyncConnection, clinic_id: str, invitation_id: str, *, for_update: bool = False
) -> Any:
    """The clinic's invitation (joined with its user), or 404."""
    row = await repo.get(conn, clinic_id, invitation_id, for_update=for_update)
    if row is None:
        raise NotFound(
            f"No invitation with id {invitation_id} in this clinic.", code="invitation_not_found"
        )
    return row


def require_sent(row: Any, doing: str) -> None:
    if row["status"] != "sent":
        raise Conflict(
            f"Invitation {row['id']} is {row['status']}: only a sent (pending) invitation can be "
            f"{doing}.",
            code=f"invitation_{row['status']}",
        )


def check_target(invitation_id: str | None, user_id: str | None) -> None:
    """A revocation names exactly one of the invitation and its user."""
    if (invitation_id is None) == (user_id is None):
        raise ValidationFailed(
            "Give exactly one of invitationId or userId.",
            errors=[
                {"field": "invitationId", "message": "give exactly one of invitationId or userId"}
            ],
        )


async def latest_id_for_user(conn: AsyncConnection, user_id: str) -> str:
    latest = await repo.latest_for_user(conn, user_id)
    if latest is None:
        raise Conflict(f"User {user_id} has no invitation.", code="no_invitation")
    return str(latest.id)


async def issue_many(
    conn: AsyncConnection, settings: Settings, new: list[NewInvitation], now: datetime
) -> list[str]:
    """`sent` invitations with their queued emails; returns their ids in order. The caller's
    event (`user.invited`, `user.reactivated`) names them."""
    return await repo.create_and_queue_many(conn, settings.resolved_secret_key, new, now)


def new_for(
    settings: Settings, actor: Actor, user_id: str, email: str, now: datetime
) -> NewInvitation:
    """The invitation the actor sends to this user now."""
    return NewInvitation(
        clinic_id=actor.clinic_id,
        user_id=user_id,
        email=email,
        inviter_id=actor.id if actor.kind == "user" else None,
        api_key_id=actor.id if actor.kind == "api_key" else None,
        invited_source=actor.invited_source,
        expiry=now + settings.invitation_ttl,
    )


async def revoke_pending_for_user(conn: AsyncConnection, user_id: str, now: datetime) -> list[str]:
    """Revoke the user's `sent` invitations (their access is being revoked, whose event names
    them); returns their ids."""
    pending = await repo.pending_for_user(conn, user_id)
    for invitation_id in pending:
        await repo.revoke(conn, invitation_id, now)
    return pending


async def was_accepted(conn: AsyncConnection, user_id: str) -> bool:
    return await repo.was_accepted(conn, user_id)


async def record_edit(
    conn: AsyncConnection, actor: Actor, invitation_id: str, changes: dict[str, Any], now: datetime
) -> None:
    """The pending user's fields changed through their invitation: touch it, emit the event."""
    await repo.touch(conn, invitation_id, now)
    await events.emit(
        conn,
        events.DomainEvent(
            events.INVITATION_UPDATED, actor, "invitation", invitation_id, changes, now
        ),
    )


async def revoke(
    conn: AsyncConnection,
    actor: Actor,
    invitation: Any,
    *,
    user_status_change: dict[str, str] | None,
    now: datetime,
) -> str:
    """Revoke a `sent` invitation (the flow has checked it and set its user's status); its
    link dies at once. Returns a message for the caller."""
    await repo.revoke(conn, invitation["id"], now)
    changes = diff({"status": "sent"}, {"status": "revoked"})
    if user_status_change is not None:
        changes["userStatus"] = user_status_change
    await events.emit(
        conn,
        events.DomainEvent(
            events.INVITATION_REVOKED, actor, "invitation", invitation["id"], changes, now
        ),
    )
    return f"The invitation of {invitation['email']} was revoked; its link no longer works."


async def resend(
    conn: AsyncConnection, settings: Settings, actor: Actor, invitation: Any, *, now: datetime
) -> Any:
    """A new link and expiry and a new email for a `sent` invitation (expired ones too); the
    old link dies. Refused with a 429 within `resend_cooldown` of the last issue."""
    invitation_id = invitation["id"]
    wait = invitation["issued_at"] + settings.resend_cooldown - now
    if wait > timedelta(0):
        seconds = math.ceil(wait.total_seconds())
        raise TooManyRequests(
            f"This invitation was sent moments ago; it can be resent in {seconds} s.",
            code="resend_cooldown",
            retry_after=seconds,
        )
    expiry = now + settings.invitation_ttl
    await repo.reissue_and_queue(
        conn,
        secret_key=settings.resolved_secret_key,
        clinic_id=actor.clinic_id,
        invitation_id=invitation_id,
        email=invitation["email"],
        expiry=expiry,
        now=now,
    )
    changes = diff(
        {"expiry": invitation_wire(invitation)["expiry"]},
        {"expiry": invitation_wire({**invitation, "expiry": expiry})["expiry"]},
    )
    await events.emit(
        conn,
        events.DomainEvent(
            events.INVITATION_RESENT, actor, "invitation", invitation_id, changes, now
        ),
    )
    return await get_invitation(conn, actor.clinic_id, invitation_id)


# --- the invitee's answer (the link in the email) -----------------------------------------


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
    row = await repo.by_token_hash(conn, token_hash(token))
    if row is None:
        return None
    return _view(row)


def _view(row: Any) -> InvitationView:
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
        inviter_name=repo.inviter_name(row),
    )


async def _open_invitation(conn: AsyncConnection, token: str, now: datetime) -> InvitationView:
    view = await invitation_by_token(conn, token)
    if view is None:
        raise LinkUnusable("invalid")
    state = view.state(now)
    if state != "open":
        raise LinkUnusable(state)
    return view


async def accept(
    conn: AsyncConnection, token: str, *, with_password: bool, now: datetime
) -> InvitationView:
    """Mark the invitation accepted (the flow activates its user); the invitee is the actor."""
    view = await _open_invitation(conn, token, now)
    if view.has_dashboard_access and not with_password:
        raise LinkUnusable("password_required")
    await repo.answer(conn, view.id, "accepted", now)
    await _emit_answer(conn, view, events.INVITATION_ACCEPTED, "accepted", now)
    return view


async def accept_verified(conn: AsyncConnection, user_id: str, now: datetime) -> InvitationView:
    """Accept the user's open invitation without its link: their clinic's identity provider
    has just vouched for the invited address (single sign-on)."""
    row = await repo.latest_sent_for_user(conn, user_id)
    if row is None:
        raise LinkUnusable("invalid")
    view = _view(row)
    state = view.state(now)
    if state != "open":
        raise LinkUnusable(state)
    await repo.answer(conn, view.id, "accepted", now)
    # The email (if still queued: a person who joined at their first sign-in) has no use now.
    await repo.cancel_queued_email(conn, view.id)
    await _emit_answer(conn, view, events.INVITATION_ACCEPTED, "accepted", now)
    return view


async def decline(conn: AsyncConnection, token: str, now: datetime) -> InvitationView:
    view = await _open_invitation(conn, token, now)
    await repo.answer(conn, view.id, "rejected", now)
    await _emit_answer(conn, view, events.INVITATION_REJECTED, "rejected", now)
    return view


async def _emit_answer(
    conn: AsyncConnection, view: InvitationView, event_type: str, status: str, now: datetime
) -> None:
    """The invitee's answer, recorded with the invitee as the actor."""
    invitee = Actor(clinic_id=view.clinic_id, kind="user", id=view.user_id)
    changes = {"status": {"before": "sent", "after": status}}
    await events.emit(
        conn, events.DomainEvent(event_type, invitee, "invitation", view.id, changes, now)
    )


async def forget_for_user(conn: AsyncConnection, user_id: str) -> list[str]:
    """Delete the user's invitations and every email about them (erasing the person, whose
    name and address they hold); returns the erased invitation ids."""
    return await repo.forget_for_user(conn, user_id)
