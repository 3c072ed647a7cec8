"""Business rules of invitations: list, edit, revoke and resend. Services never commit.

Like users.service, every function takes (conn, settings, actor, ...), raises ProblemErrors
and records its change in the audit trail, for the API and the dashboard alike.
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
from ..audit import service as audit
from ..config import Settings
from ..errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from ..fields import InvitationStatus
from ..pagination import DEFAULT_LIMIT, Position, decode_cursor, encode_cursor, split_page
from ..users import service as users_service
from ..users.schemas import UserUpdateRequest
from . import repository as repo
from .repository import InvitationFilters
from .schemas import invitation_wire

CURSOR_KIND = "invitations"
STATUSES: tuple[str, ...] = InvitationStatus.__args__  # type: ignore[attr-defined]
EXPIRED_FILTERS = ("all", "expired", "not-expired")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
        created_before=datetime.combine(end + timedelta(days=1), time(), UTC) if end else None,
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


def _require_sent(row: Any, doing: str) -> None:
    if row["status"] != "sent":
        raise Conflict(
            f"Invitation {row['id']} is {row['status']}: only a sent (pending) invitation can be "
            f"{doing}.",
            code=f"invitation_{row['status']}",
        )


async def update_invitation(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    invitation_id: str,
    update: UserUpdateRequest,
    *,
    now: datetime,
) -> Any:
    """Edit a `sent` invitation's pending user; returns the updated joined row."""
    invitation = await get_invitation(conn, actor.clinic_id, invitation_id, for_update=True)
    _require_sent(invitation, "edited")
    user = await users_service.get_user(
        conn, actor.clinic_id, invitation["user_id"], for_update=True
    )
    await users_service.check_may_change(conn, actor, user)
    _, changes = await users_service.apply_field_update(conn, actor, user, update, now=now)
    if changes:
        await repo.touch(conn, invitation_id, now)
        await events.emit(
            conn,
            events.DomainEvent(
                events.INVITATION_UPDATED,
                actor,
                "invitation",
                invitation_id,
                changes,
                now,
            ),
        )
    return await get_invitation(conn, actor.clinic_id, invitation_id)


async def revoke_invitation(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    *,
    invitation_id: str | None = None,
    user_id: str | None = None,
    now: datetime,
) -> str:
    """Revoke a `sent` invitation named by its id or its user's id; the link dies at once.

    The pending user's status becomes `revoked` too (they cannot join any more);
    users.reactivate brings them back with a fresh invitation."""
    if (invitation_id is None) == (user_id is None):
        raise ValidationFailed(
            "Give exactly one of invitationId or userId.",
            errors=[
                {"field": "invitationId", "message": "give exactly one of invitationId or userId"}
            ],
        )
    if invitation_id is None:
        assert user_id is not None
        user = await users_service.get_user(conn, actor.clinic_id, user_id, for_update=True)
        latest = await repo.latest_for_user(conn, user_id)
        if latest is None:
            raise Conflict(f"User {user_id} has no invitation.", code="no_invitation")
        invitation_id = latest.id
    invitation = await get_invitation(conn, actor.clinic_id, invitation_id, for_update=True)
    _require_sent(invitation, "revoked")
    user = await users_service.get_user(
        conn, actor.clinic_id, invitation["user_id"], for_update=True
    )
    await users_service.check_may_change(conn, actor, user)
    await repo.revoke(conn, invitation_id, now)
    changes = audit.diff({"status": "sent"}, {"status": "revoked"})
    if user["status"] == "invited":
        await users_service.set_status(conn, user, "revoked", now)
        changes["userStatus"] = {"before": "invited", "after": "revoked"}
    await events.emit(
        conn,
        events.DomainEvent(
            events.INVITATION_REVOKED,
            actor,
            "invitation",
            invitation_id,
            changes,
            now,
        ),
    )
    return f"The invitation of {invitation['email']} was revoked; its link no longer works."


async def resend_invitation(
    conn: AsyncConnection, settings: Settings, actor: Actor, invitation_id: str, *, now: datetime
) -> Any:
    """A new link and expiry and a new email for a `sent` invitation (expired ones too); the
    old link dies. Refused with a 429 within `resend_cooldown` of the last issue."""
    invitation = await get_invitation(conn, actor.clinic_id, invitation_id, for_update=True)
    _require_sent(invitation, "resent")
    user = await users_service.get_user(conn, actor.clinic_id, invitation["user_id"])
    await users_service.check_may_change(conn, actor, user)
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
    changes = audit.diff(
        {"expiry": invitation_wire(invitation)["expiry"]},
        {"expiry": invitation_wire({**invitation, "expiry": expiry})["expiry"]},
    )
    await events.emit(
        conn,
        events.DomainEvent(
            events.INVITATION_RESENT,
            actor,
            "invitation",
            invitation_id,
            changes,
            now,
        ),
    )
    return await get_invitation(conn, actor.clinic_id, invitation_id)
