"""Flows: the changes that span domains, composed from the owning services in one transaction.

A flow is the one way to do its change, whichever way in asked for it (the API, the
dashboard, the command line, next SCIM). Domains never call each other's writers: users/ and
invitations/ do not import each other, and each service emits the domain event of its own
change. Flows run inside a transaction given to them and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from . import events
from .accounts import service as accounts
from .accounts import sso
from .accounts.oidc import Identity
from .actor import Actor
from .audit.service import diff
from .clinics import service as clinics
from .config import Settings
from .errors import Conflict, NotFound
from .fields import validate
from .invitations import service as invitations
from .invitations.service import InvitationView
from .links import LinkUnusable
from .users import service as users
from .users.schemas import UserInviteRequest, UserUpdateRequest
from .users.service import InviteItem
from .webhooks import retention as webhook_retention

T = TypeVar("T")


# --- inviting -----------------------------------------------------------------------------


async def invite(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    request: UserInviteRequest,
    *,
    now: datetime,
    level: str | None = None,
) -> dict[str, Any]:
    """Invite one person: a pending user, a `sent` invitation, its queued email and the
    `user.invited` event. Returns the users row; raises the Conflict of a taken address."""
    [outcome] = await invite_many(conn, settings, [InviteItem(actor, request, now, level)])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def invite_many(
    conn: AsyncConnection, settings: Settings, items: list[InviteItem]
) -> list[dict[str, Any] | Conflict]:
    """Invite several people at once (one statement per table; the API's concurrent requests,
    a CSV file): the users row of each item, or the Conflict of an address the clinic
    already has (or that comes earlier in `items`)."""
    outcomes = await users.add_invited_many(conn, items)
    made = [(item, o) for item, o in zip(items, outcomes, strict=True) if isinstance(o, dict)]
    if not made:
        return outcomes
    now = max(item.now for item, _ in made)
    invitation_ids = await invitations.issue_many(
        conn,
        settings,
        [invitations.new_for(settings, i.actor, row["id"], row["email"], i.now) for i, row in made],
        now,
    )
    await events.emit_many(
        conn,
        [
            events.DomainEvent(
                events.USER_INVITED,
                item.actor,
                "user",
                row["id"],
                diff({}, {**users.audited_fields(row), "invitationId": invitation_id}),
                item.now,
            )
            for (item, row), invitation_id in zip(made, invitation_ids, strict=True)
        ],
    )
    return outcomes


async def invite_owner(
    conn: AsyncConnection,
    settings: Settings,
    clinic_id: str,
    request: UserInviteRequest,
    *,
    now: datetime,
) -> dict[str, Any]:
    """The operator invites a clinic owner from the command line (the only way to make one)."""
    if await clinics.clinic_name(conn, clinic_id) is None:
        raise NotFound(f"No clinic with id {clinic_id}.")
    actor = Actor(clinic_id=clinic_id, kind="cli", id=None)
    return await invite(conn, settings, actor, request, now=now, level="owner")


# --- a user's access ----------------------------------------------------------------------


async def revoke_access(
    conn: AsyncConnection, settings: Settings, actor: Actor, user_id: str, *, now: datetime
) -> str:
    """The user can no longer log in, their sessions end and a pending invitation is revoked.
    Returns a message for the caller."""
    target = await users.revocable(conn, actor, user_id)
    revoked_invitations = await invitations.revoke_pending_for_user(conn, user_id, now)
    await accounts.access_revoked(conn, user_id, now)
    await users.mark_revoked(
        conn, actor, target, revoked_invitation_ids=revoked_invitations, now=now
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
    target = await users.reactivatable(conn, actor, user_id)
    joined = (
        target["password_hash"] is not None
        or target["last_login_at"] is not None
        or await invitations.was_accepted(conn, user_id)
    )
    if joined:
        await users.mark_reactivated(conn, actor, target, "active", invitation_id=None, now=now)
        return f"{target['email']} is active again and can log in."
    [invitation_id] = await invitations.issue_many(
        conn, settings, [invitations.new_for(settings, actor, user_id, target["email"], now)], now
    )
    await users.mark_reactivated(
        conn, actor, target, "invited", invitation_id=invitation_id, now=now
    )
    return f"{target['email']} had not accepted their invitation: a new invitation was sent."


# --- a pending invitation, changed by the clinic ------------------------------------------


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
    invitation = await invitations.get_invitation(
        conn, actor.clinic_id, invitation_id, for_update=True
    )
    invitations.require_sent(invitation, "edited")
    user = await users.get_user(conn, actor.clinic_id, invitation["user_id"], for_update=True)
    await users.check_may_change(conn, actor, user)
    _, changes = await users.apply_field_update(conn, actor, user, update, now=now)
    if changes:
        await invitations.record_edit(conn, actor, invitation_id, changes, now)
    return await invitations.get_invitation(conn, actor.clinic_id, invitation_id)


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
    reactivate brings them back with a fresh invitation."""
    invitations.check_target(invitation_id, user_id)
    if invitation_id is None:
        assert user_id is not None
        await users.get_user(conn, actor.clinic_id, user_id, for_update=True)
        invitation_id = await invitations.latest_id_for_user(conn, user_id)
    invitation = await invitations.get_invitation(
        conn, actor.clinic_id, invitation_id, for_update=True
    )
    invitations.require_sent(invitation, "revoked")
    user = await users.get_user(conn, actor.clinic_id, invitation["user_id"], for_update=True)
    await users.check_may_change(conn, actor, user)
    user_status_change = None
    if user["status"] == "invited":
        await users.set_status(conn, user, "revoked", now)
        user_status_change = {"before": "invited", "after": "revoked"}
    return await invitations.revoke(
        conn, actor, invitation, user_status_change=user_status_change, now=now
    )


async def resend_invitation(
    conn: AsyncConnection, settings: Settings, actor: Actor, invitation_id: str, *, now: datetime
) -> Any:
    """A new link, expiry and email for a `sent` invitation the actor may change."""
    invitation = await invitations.get_invitation(
        conn, actor.clinic_id, invitation_id, for_update=True
    )
    invitations.require_sent(invitation, "resent")
    user = await users.get_user(conn, actor.clinic_id, invitation["user_id"])
    await users.check_may_change(conn, actor, user)
    return await invitations.resend(conn, settings, actor, invitation, now=now)


# --- the invitee's answer -----------------------------------------------------------------


async def accept_invitation(
    conn: AsyncConnection, token: str, password_hash: str | None, now: datetime
) -> InvitationView:
    """The invitation is accepted and its user active (with their password, if any)."""
    view = await invitations.accept(conn, token, with_password=password_hash is not None, now=now)
    await users.activate(conn, view.user_id, now)
    if password_hash is not None:
        await accounts.set_password(conn, view.user_id, password_hash)
    return view


async def decline_invitation(conn: AsyncConnection, token: str, now: datetime) -> InvitationView:
    """The invitation is rejected; its user stays `invited` (the clinic may revoke them)."""
    return await invitations.decline(conn, token, now)


# --- erasing a person ---------------------------------------------------------------------


async def erase_person(conn: AsyncConnection, actor: Actor, user_id: str, *, now: datetime) -> None:
    """Remove a person for good (SCIM DELETE): their invitations, sign-in state (sessions, MFA,
    provider link, password resets), every email about them, the webhook events about them
    already delivered (those still owed go out first) and their users row. The
    `user.deleted` event names the erased fields, never their values; the audit chain keeps
    what happened before, as the law on records asks."""
    target = await users.erasable(conn, actor, user_id)
    invitation_ids = await invitations.forget_for_user(conn, user_id)
    await accounts.forget_sign_in(conn, user_id)
    await webhook_retention.forget_user(conn, user_id)
    await users.erase(conn, actor, target, erased_invitation_ids=invitation_ids, now=now)


# --- single sign-on -----------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderSignIn:
    """What a sign-in through the clinic's provider came to: the person to start a session
    for, or a `refusal` word (unknown, revoked, no_dashboard_access, subject_mismatch,
    invitation_closed); `accepted` when it accepted their invitation."""

    user_id: str | None
    refusal: str | None = None
    accepted: bool = False


async def sign_in_with_provider(
    conn: AsyncConnection,
    settings: Settings,
    connection: sso.SsoSettings,
    identity: Identity,
    *,
    now: datetime,
) -> ProviderSignIn:
    """A verified address from the clinic's provider: an invited person accepts their
    invitation, an active one signs in, one the clinic does not know is refused (or joins as
    a member when the clinic allows it). The provider's `sub` is linked on the first sign-in
    and must match after."""
    clinic_id = connection.clinic_id
    assert identity.email is not None
    user = await users.by_email(conn, clinic_id, identity.email)
    linked_to = await sso.subject_owner(conn, clinic_id, identity.issuer, identity.subject)
    if linked_to is not None and (user is None or linked_to != user["id"]):
        return ProviderSignIn(None, "subject_mismatch")
    accepted = False
    if user is None:
        if not connection.join_with_defaults:
            return ProviderSignIn(None, "unknown")
        user = await _join_with_defaults(conn, settings, clinic_id, identity, now)
        accepted = True
    elif user["status"] == "invited":
        try:
            await invitations.accept_verified(conn, user["id"], now)
        except LinkUnusable as exc:
            return ProviderSignIn(
                None, "invitation_closed" if exc.reason != "invalid" else "unknown"
            )
        await users.activate(conn, user["id"], now)
        accepted = True
    elif user["status"] != "active":
        return ProviderSignIn(None, "revoked")
    if linked_to is None:
        existing = await sso.linked_subject(conn, user["id"])
        if existing is not None:
            return ProviderSignIn(None, "subject_mismatch")
        await sso.link(conn, clinic_id, user["id"], identity.issuer, identity.subject, now)
        await events.emit(
            conn,
            events.DomainEvent(
                events.SSO_LINKED,
                Actor(clinic_id=clinic_id, kind="user", id=user["id"]),
                "user",
                user["id"],
                {"issuer": identity.issuer},
                now,
            ),
        )
    if not user["has_dashboard_access"]:
        return ProviderSignIn(user["id"], "no_dashboard_access", accepted)
    return ProviderSignIn(user["id"], None, accepted)


async def _join_with_defaults(
    conn: AsyncConnection,
    settings: Settings,
    clinic_id: str,
    identity: Identity,
    now: datetime,
) -> Any:
    """A person the clinic does not know joins as a member with dashboard access (the clinic
    turned this on): invited and accepted at once, recorded as their own action."""
    assert identity.email is not None
    local = identity.email.split("@", 1)[0]
    request = validate(
        UserInviteRequest,
        {
            "email": identity.email,
            "firstName": identity.given_name or local,
            "lastName": identity.family_name or local,
            "clinicRole": "Other",
            "level": "member",
            "canManageStudies": False,
            "hasDashboardAccess": True,
        },
    )
    row = await invite(
        conn, settings, Actor(clinic_id=clinic_id, kind="user", id=None), request, now=now
    )
    await invitations.accept_verified(conn, row["id"], now)
    await users.activate(conn, row["id"], now)
    return {**row, "status": "active"}
