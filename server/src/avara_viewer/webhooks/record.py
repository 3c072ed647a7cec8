"""Recording webhook events: in the transaction of the change, one delivery per subscribed
endpoint, so an acknowledged change's events are queued with it or not at all.

Domain events (events.emit) arrive here by their audit name; email outcomes and expiries,
which are not audited changes, arrive as `Happened` directly. `data` is read after the
change's writes, in its transaction: the User or Invitation exactly as the API returns it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import bindparam, event, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..clock import rfc3339
from ..invitations import repository as invitations_repo
from ..invitations.schemas import invitation_wire
from ..users.models import User
from ..users.schemas import user_wire
from .models import WebhookDelivery, WebhookEndpoint, WebhookEvent

if TYPE_CHECKING:
    from ..events import DomainEvent

endpoints_t = WebhookEndpoint.__table__
events_t = WebhookEvent.__table__
deliveries_t = WebhookDelivery.__table__
users_t = User.__table__

USER_TYPES = (
    "user.invited",
    "user.created",
    "user.updated",
    "user.access_revoked",
    "user.reactivated",
)
INVITATION_TYPES = (
    "invitation.accepted",
    "invitation.declined",
    "invitation.revoked",
    "invitation.resent",
    "invitation.expired",
    "invitation.email_delivered",
    "invitation.email_failed",
)
# user.created (active at once, without an invitation) and user.deleted come from SCIM.
EVENT_TYPES: tuple[str, ...] = (*USER_TYPES, "user.deleted", *INVITATION_TYPES)
TEST_EVENT = "webhook.test"

# Audit names of domain events -> webhook types. An edited invitation changes its pending
# user, so integrators learn of it as user.updated; the invitee's "rejected" is "declined".
FROM_DOMAIN = {
    "user.invited": "user.invited",
    "user.created": "user.created",
    "user.deleted": "user.deleted",
    "user.updated": "user.updated",
    "user.access_revoked": "user.access_revoked",
    "user.reactivated": "user.reactivated",
    "invitation.updated": "user.updated",
    "invitation.accepted": "invitation.accepted",
    "invitation.rejected": "invitation.declined",
    "invitation.revoked": "invitation.revoked",
    "invitation.resent": "invitation.resent",
}


def new_event_id() -> str:
    return "whe_" + secrets.token_hex(16)


def new_delivery_id() -> str:
    return "whd_" + secrets.token_hex(16)


@dataclass(frozen=True)
class Happened:
    """A webhook event to record: its type, and the user or invitation it is about."""

    clinic_id: str
    type: str
    target_type: str  # "user" or "invitation"
    target_id: str
    now: datetime


# Delivery loops of this process, woken when a transaction that queued deliveries commits.
_wakeups: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []


def register_wakeup(wakeup: asyncio.Event) -> None:
    _wakeups.append((asyncio.get_running_loop(), wakeup))


def unregister_wakeup(wakeup: asyncio.Event) -> None:
    _wakeups[:] = [(loop, w) for loop, w in _wakeups if w is not wakeup]


def _wake_on_commit(conn: AsyncConnection) -> None:
    if not _wakeups:
        return
    targets = list(_wakeups)

    def wake(_conn: Any) -> None:
        # SQLite commits in a worker thread: hand the wake-up to each loop's own thread.
        for loop, wakeup in targets:
            loop.call_soon_threadsafe(wakeup.set)

    event.listen(conn.sync_connection, "commit", wake, once=True)


async def record_domain_events(conn: AsyncConnection, domain_events: Sequence[DomainEvent]) -> None:
    await record(
        conn,
        [
            Happened(e.actor.clinic_id, FROM_DOMAIN[e.type], e.target_type, e.target_id, e.now)
            for e in domain_events
            if e.type in FROM_DOMAIN and e.target_id is not None
        ],
    )


def subscribes(event_types: str | None, event_type: str) -> bool:
    return event_types is None or event_type in orjson.loads(event_types)


# Built once: every change (each invite group) runs it.
_ENABLED_ENDPOINTS = select(
    endpoints_t.c.id, endpoints_t.c.clinic_id, endpoints_t.c.event_types
).where(
    endpoints_t.c.clinic_id.in_(bindparam("clinic_ids", expanding=True)),
    endpoints_t.c.enabled.is_(True),
)


async def record(conn: AsyncConnection, happened: Sequence[Happened]) -> None:
    """Queue each event for the clinic's enabled endpoints that want it (nothing if none)."""
    if not happened:
        return
    rows = await conn.execute(
        _ENABLED_ENDPOINTS, {"clinic_ids": sorted({h.clinic_id for h in happened})}
    )
    by_clinic: dict[str, list[tuple[str, str | None]]] = {}
    for endpoint_id, clinic_id, event_types in rows:
        by_clinic.setdefault(clinic_id, []).append((endpoint_id, event_types))
    wanted = [
        (h, [e for e, types in by_clinic.get(h.clinic_id, []) if subscribes(types, h.type)])
        for h in happened
    ]
    wanted = [(h, targets) for h, targets in wanted if targets]
    if not wanted:
        return
    data = await _load_data(conn, [h for h, _ in wanted])
    event_rows: list[dict[str, Any]] = []
    delivery_rows: list[dict[str, Any]] = []
    for (h, targets), (order_key, payload) in zip(wanted, data, strict=True):
        if payload is None:
            continue
        event_id = new_event_id()
        event_rows.append(_event_row(event_id, h.clinic_id, h.type, payload, h.now))
        delivery_rows += [
            _delivery_row(event_id, h.clinic_id, h.type, endpoint_id, order_key, h.now)
            for endpoint_id in targets
        ]
    await insert(conn, event_rows, delivery_rows)


async def insert(
    conn: AsyncConnection, event_rows: list[dict[str, Any]], delivery_rows: list[dict[str, Any]]
) -> None:
    if not event_rows:
        return
    await conn.execute(events_t.insert(), event_rows)
    await conn.execute(deliveries_t.insert(), delivery_rows)
    _wake_on_commit(conn)


def _event_row(
    event_id: str, clinic_id: str, event_type: str, data: dict[str, Any], now: datetime
) -> dict[str, Any]:
    body = orjson.dumps(
        {"id": event_id, "type": event_type, "createdAt": rfc3339(now), "data": data}
    ).decode()
    return {
        "id": event_id,
        "clinic_id": clinic_id,
        "type": event_type,
        "body": body,
        "created_at": now,
    }


def _delivery_row(
    event_id: str,
    clinic_id: str,
    event_type: str,
    endpoint_id: str,
    order_key: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": new_delivery_id(),
        "endpoint_id": endpoint_id,
        "clinic_id": clinic_id,
        "event_id": event_id,
        "event_type": event_type,
        "order_key": order_key,
        "status": "pending",
        "attempts": 0,
        "round_attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


async def _load_data(
    conn: AsyncConnection, happened: list[Happened]
) -> list[tuple[str, dict[str, Any] | None]]:
    """(ordering key, wire object) per event: users read in one query, invitations by id."""
    invitations: dict[str, Any] = {}
    for h in happened:
        if h.target_type == "invitation" and h.target_id not in invitations:
            invitations[h.target_id] = await invitations_repo.get(conn, h.clinic_id, h.target_id)
    user_ids = {h.target_id for h in happened if h.target_type == "user"}
    user_ids |= {
        row["user_id"]
        for h in happened
        if h.target_type == "invitation" and h.type.startswith("user.")
        for row in [invitations[h.target_id]]
        if row is not None
    }
    users: dict[str, Any] = {}
    if user_ids:
        found = await conn.execute(select(users_t).where(users_t.c.id.in_(user_ids)))
        users = {row["id"]: row for row in found.mappings()}
    out: list[tuple[str, dict[str, Any] | None]] = []
    for h in happened:
        if h.target_type == "invitation":
            invitation = invitations[h.target_id]
            if invitation is None:
                out.append(("", None))
            elif h.type.startswith("user."):
                user = users.get(invitation["user_id"])
                out.append((invitation["user_id"], user_wire(user) if user else None))
            else:
                out.append((invitation["user_id"], invitation_wire(invitation)))
        elif h.type == "user.deleted":
            # The person was erased: their id is all that may still be told.
            out.append((h.target_id, {"userId": h.target_id, "deleted": True}))
        else:
            user = users.get(h.target_id)
            out.append((h.target_id, user_wire(user) if user else None))
    return out


async def record_test(
    conn: AsyncConnection, clinic_id: str, endpoint_id: str, now: datetime
) -> str:
    """A `webhook.test` event for one endpoint alone; returns its delivery id."""
    event_id = new_event_id()
    data = {"endpointId": endpoint_id, "message": "A test event from Avara Viewer."}
    delivery = _delivery_row(event_id, clinic_id, TEST_EVENT, endpoint_id, endpoint_id, now)
    await insert(conn, [_event_row(event_id, clinic_id, TEST_EVENT, data, now)], [delivery])
    return str(delivery["id"])
