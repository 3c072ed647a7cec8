"""Domain events: the one list of what can happen to a clinic's people, and the one place
that records it.

Every state change emits one event inside the transaction that makes the change, by calling
`emit(conn, event)` after its writes. Recording an event appends it to the clinic's audit
chain, queues the webhook deliveries it causes and, when it changes what a person may do,
ends their dashboard sessions, all in the same transaction: an acknowledged change, its
record, its webhooks and its effect on sign-in commit together or not at all.

`type` is the audit action and the name consumers see. Consumers that speak another
vocabulary (webhooks call `invitation.rejected` `invitation.declined`) map names themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from .accounts import sessions as account_sessions
from .actor import Actor
from .audit import service as audit
from .webhooks import record as webhooks

# Changes to people and their invitations.
USER_INVITED = "user.invited"
USER_UPDATED = "user.updated"
USER_ACCESS_REVOKED = "user.access_revoked"
USER_REACTIVATED = "user.reactivated"
# Made active at once, without an invitation (SCIM, for clinics that sign in with SSO).
USER_CREATED = "user.created"
# Erased for good (SCIM DELETE): the entry names the erased fields, never their values.
USER_DELETED = "user.deleted"
INVITATION_UPDATED = "invitation.updated"
INVITATION_ACCEPTED = "invitation.accepted"
INVITATION_REJECTED = "invitation.rejected"
INVITATION_REVOKED = "invitation.revoked"
INVITATION_RESENT = "invitation.resent"
# Changes to a clinic's credentials.
API_KEY_CREATED = "api_key.created"
API_KEY_REVOKED = "api_key.revoked"
# Changes to a clinic's webhook endpoints (audited; not themselves sent as webhooks).
WEBHOOK_ENDPOINT_CREATED = "webhook_endpoint.created"
WEBHOOK_ENDPOINT_UPDATED = "webhook_endpoint.updated"
WEBHOOK_ENDPOINT_DELETED = "webhook_endpoint.deleted"
WEBHOOK_ENDPOINT_SECRET_ROTATED = "webhook_endpoint.secret_rotated"
WEBHOOK_DELIVERY_RETRIED = "webhook_delivery.retried"
SCIM_TOKEN_CREATED = "scim_token.created"
SCIM_TOKEN_REVOKED = "scim_token.revoked"
SCIM_SETTINGS_UPDATED = "scim.settings_updated"
SCIM_GROUP_CHANGED = "scim.group_changed"
# A SCIM call that changed nothing (a read, a refused request): every call is on record.
SCIM_REQUEST = "scim.request"
# Signing in: sessions, MFA, single sign-on, and a clinic's sign-in rules.
SIGNED_IN = "account.signed_in"
SIGNED_OUT = "account.signed_out"
SESSIONS_ENDED = "account.sessions_ended"
PASSWORD_CHANGED = "account.password_changed"
MFA_ENROLLED = "account.mfa_enrolled"
MFA_RESET = "account.mfa_reset"
MFA_RECOVERY_CODE_USED = "account.mfa_recovery_code_used"
MFA_RECOVERY_CODES_REPLACED = "account.mfa_recovery_codes_replaced"
SSO_LINKED = "account.sso_linked"
SSO_CONFIGURED = "clinic.sso_configured"
SIGN_IN_POLICY_UPDATED = "clinic.sign_in_policy_updated"

EVENT_TYPES: frozenset[str] = frozenset(
    {
        USER_INVITED,
        USER_UPDATED,
        USER_ACCESS_REVOKED,
        USER_REACTIVATED,
        USER_CREATED,
        USER_DELETED,
        INVITATION_UPDATED,
        INVITATION_ACCEPTED,
        INVITATION_REJECTED,
        INVITATION_REVOKED,
        INVITATION_RESENT,
        API_KEY_CREATED,
        API_KEY_REVOKED,
        WEBHOOK_ENDPOINT_CREATED,
        WEBHOOK_ENDPOINT_UPDATED,
        WEBHOOK_ENDPOINT_DELETED,
        WEBHOOK_ENDPOINT_SECRET_ROTATED,
        WEBHOOK_DELIVERY_RETRIED,
        SCIM_TOKEN_CREATED,
        SCIM_TOKEN_REVOKED,
        SCIM_SETTINGS_UPDATED,
        SCIM_GROUP_CHANGED,
        SCIM_REQUEST,
        SIGNED_IN,
        SIGNED_OUT,
        SESSIONS_ENDED,
        PASSWORD_CHANGED,
        MFA_ENROLLED,
        MFA_RESET,
        MFA_RECOVERY_CODE_USED,
        MFA_RECOVERY_CODES_REPLACED,
        SSO_LINKED,
        SSO_CONFIGURED,
        SIGN_IN_POLICY_UPDATED,
    }
)


@dataclass(frozen=True)
class DomainEvent:
    """Who (actor) did what (type) to which target, with the fields that changed
    (`{wire name: {"before", "after"}}`, nothing secret), at `now`."""

    type: str
    actor: Actor
    target_type: str
    target_id: str | None
    changes: Mapping[str, Any]
    now: datetime

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown domain event type {self.type!r}; add it to EVENT_TYPES")


async def emit(conn: AsyncConnection, *events: DomainEvent) -> None:
    """Record events in the caller's transaction (after the writes they describe)."""
    await emit_many(conn, list(events))


async def emit_many(conn: AsyncConnection, events: Sequence[DomainEvent]) -> None:
    if not events:
        return
    await audit.record_many(
        conn,
        [
            audit.Draft(e.actor, e.type, e.target_type, e.target_id, e.changes, e.now)
            for e in events
        ],
    )
    await webhooks.record_domain_events(conn, events)
    await end_sessions_on_access_change(conn, events)


# A change to what a person may do ends their dashboard sessions, whichever way in made it
# (API, dashboard, SCIM): they sign in again under the new rules.
_ACCESS_FIELDS = ("level", "hasDashboardAccess")


async def end_sessions_on_access_change(
    conn: AsyncConnection, events: Sequence[DomainEvent]
) -> None:
    for event in events:
        if event.target_type != "user" or event.target_id is None:
            continue
        if event.type == USER_ACCESS_REVOKED or (
            event.type == USER_UPDATED and any(f in event.changes for f in _ACCESS_FIELDS)
        ):
            await account_sessions.end_all(conn, event.target_id)
