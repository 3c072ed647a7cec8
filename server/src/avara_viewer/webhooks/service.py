"""Business rules of webhook endpoints and their deliveries. Services never commit.

Like the other domains, every change takes (conn, settings, actor, ...), raises
ProblemErrors and emits its domain event (the audit trail). A URL's addresses are checked by
the caller before the transaction (resolving a name is not database work).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .. import events
from ..actor import Actor
from ..audit import service as audit
from ..clock import rfc3339
from ..config import Settings
from ..errors import Conflict, NotFound
from ..pagination import DEFAULT_LIMIT, Position, before, decode_cursor, encode_cursor, split_page
from . import signing
from .delivery import attempts_t
from .record import deliveries_t, endpoints_t, record_test
from .schemas import EndpointCreateRequest, EndpointUpdateRequest, delivery_wire, endpoint_wire

ENDPOINT_ID = re.compile(r"^whep_[0-9a-f]{32}$")
DELIVERY_ID = re.compile(r"^whd_[0-9a-f]{32}$")
ENDPOINTS_CURSOR = "webhook_endpoints"
DELIVERIES_CURSOR = "webhook_deliveries"
# After a rotation the old secret keeps signing beside the new one this long, so receivers
# can switch without losing a delivery.
PREVIOUS_SECRET_TTL = timedelta(hours=24)
# The attempts shown with each delivery: the latest ones.
ATTEMPTS_SHOWN = 20
# Every event fans out to each endpoint: a bound keeps one clinic from multiplying its events
# into the whole delivery capacity.
MAX_ENDPOINTS_PER_CLINIC = 20


def new_endpoint_id() -> str:
    return "whep_" + secrets.token_hex(16)


def _audited(row: Any) -> dict[str, Any]:
    wire = endpoint_wire(row)
    return {k: wire[k] for k in ("url", "description", "eventTypes", "enabled")}


def _event_types_column(types: list[str] | None) -> str | None:
    return orjson.dumps(sorted(set(types))).decode() if types is not None else None


async def get_endpoint(
    conn: AsyncConnection, clinic_id: str, endpoint_id: str, *, for_update: bool = False
) -> Any:
    """The clinic's endpoint, or 404 (also for another clinic's and for malformed ids)."""
    row = None
    if ENDPOINT_ID.match(endpoint_id):
        query = select(endpoints_t).where(
            endpoints_t.c.clinic_id == clinic_id, endpoints_t.c.id == endpoint_id
        )
        if for_update:
            query = query.with_for_update()
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFound(
            f"No webhook endpoint with id {endpoint_id} in this clinic.",
            code="webhook_endpoint_not_found",
        )
    return row


async def create_endpoint(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    request: EndpointCreateRequest,
    *,
    now: datetime,
) -> dict[str, Any]:
    """A new endpoint with a new signing secret. The wire object's `secret` is still sealed:
    it is kept so for Idempotency-Key replays, and endpoints.reveal_secret opens it."""
    count = await conn.scalar(
        select(func.count()).where(endpoints_t.c.clinic_id == actor.clinic_id)
    )
    if count >= MAX_ENDPOINTS_PER_CLINIC:
        raise Conflict(
            f"A clinic can have at most {MAX_ENDPOINTS_PER_CLINIC} webhook endpoints; delete one "
            "first (one endpoint can receive every event type).",
            code="too_many_webhook_endpoints",
        )
    endpoint_id = new_endpoint_id()
    secret = signing.new_secret()
    row = {
        "id": endpoint_id,
        "clinic_id": actor.clinic_id,
        "url": request.url,
        "description": request.description,
        "event_types": _event_types_column(request.event_types),
        "enabled": request.enabled,
        "disabled_reason": None,
        "secret_sealed": signing.seal(settings.resolved_secret_key, endpoint_id, secret),
        "previous_secret_sealed": None,
        "previous_secret_until": None,
        "failing_since": None,
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(endpoints_t.insert().values(**row))
    changes = audit.diff({}, _audited(row))
    await events.emit(
        conn,
        events.DomainEvent(
            events.WEBHOOK_ENDPOINT_CREATED, actor, "webhook_endpoint", endpoint_id, changes, now
        ),
    )
    return endpoint_wire(row, row["secret_sealed"])


@dataclass(frozen=True)
class EndpointPage:
    endpoints: list[Any]
    cursor: str | None
    has_more: bool

    def wire(self) -> dict[str, Any]:
        return {
            "endpoints": [endpoint_wire(e) for e in self.endpoints],
            "cursor": self.cursor,
            "hasMore": self.has_more,
        }


async def list_endpoints(
    conn: AsyncConnection,
    settings: Settings,
    clinic_id: str,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> EndpointPage:
    secret = settings.resolved_secret_key
    after = decode_cursor(secret, ENDPOINTS_CURSOR, cursor) if cursor is not None else None
    e = endpoints_t
    query = select(e).where(e.c.clinic_id == clinic_id)
    if after is not None:
        query = query.where(before(e.c.created_at, e.c.id, after))
    query = query.order_by(e.c.created_at.desc(), e.c.id.desc()).limit(limit + 1)
    rows = (await conn.execute(query)).mappings().all()
    page, has_more = split_page(rows, limit)
    next_cursor = (
        encode_cursor(secret, ENDPOINTS_CURSOR, Position(page[-1]["created_at"], page[-1]["id"]))
        if has_more
        else None
    )
    return EndpointPage(page, next_cursor, has_more)


async def update_endpoint(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    endpoint_id: str,
    request: EndpointUpdateRequest,
    *,
    now: datetime,
) -> dict[str, Any]:
    """Change the fields given; enabling a disabled endpoint resumes its pending deliveries."""
    row = await get_endpoint(conn, actor.clinic_id, endpoint_id, for_update=True)
    given = request.model_fields_set
    values: dict[str, Any] = {}
    if "url" in given:
        values["url"] = request.url
    if "description" in given:
        values["description"] = request.description
    if "event_types" in given:
        values["event_types"] = _event_types_column(request.event_types)
    if "enabled" in given:
        values["enabled"] = request.enabled
        if request.enabled and not row["enabled"]:
            values.update(disabled_reason=None, failing_since=None)
        elif not request.enabled and row["enabled"]:
            where = "in the dashboard" if actor.kind == "user" else "through the API"
            values["disabled_reason"] = f"Disabled {where}."
    new_row = {**row, **values}
    changes = audit.diff(_audited(row), _audited(new_row))
    if changes:
        new_row["updated_at"] = now
        await conn.execute(
            update(endpoints_t)
            .where(endpoints_t.c.id == endpoint_id)
            .values(**values, updated_at=now)
        )
        await events.emit(
            conn,
            events.DomainEvent(
                events.WEBHOOK_ENDPOINT_UPDATED,
                actor,
                "webhook_endpoint",
                endpoint_id,
                changes,
                now,
            ),
        )
    return endpoint_wire(new_row)


async def delete_endpoint(
    conn: AsyncConnection, actor: Actor, endpoint_id: str, *, now: datetime
) -> str:
    """Remove the endpoint with its deliveries and their attempts."""
    row = await get_endpoint(conn, actor.clinic_id, endpoint_id, for_update=True)
    seqs = select(deliveries_t.c.seq).where(deliveries_t.c.endpoint_id == endpoint_id)
    await conn.execute(delete(attempts_t).where(attempts_t.c.delivery_seq.in_(seqs)))
    await conn.execute(delete(deliveries_t).where(deliveries_t.c.endpoint_id == endpoint_id))
    await conn.execute(delete(endpoints_t).where(endpoints_t.c.id == endpoint_id))
    await events.emit(
        conn,
        events.DomainEvent(
            events.WEBHOOK_ENDPOINT_DELETED,
            actor,
            "webhook_endpoint",
            endpoint_id,
            audit.diff(_audited(row), {}),
            now,
        ),
    )
    return f"The webhook endpoint {row['url']} was deleted; it receives no more events."


async def rotate_secret(
    conn: AsyncConnection, settings: Settings, actor: Actor, endpoint_id: str, *, now: datetime
) -> dict[str, Any]:
    """A new signing secret (sealed in the wire object, as for create); the current one keeps
    signing beside it for 24 hours."""
    row = await get_endpoint(conn, actor.clinic_id, endpoint_id, for_update=True)
    secret = signing.new_secret()
    values = {
        "secret_sealed": signing.seal(settings.resolved_secret_key, endpoint_id, secret),
        "previous_secret_sealed": row["secret_sealed"],
        "previous_secret_until": now + PREVIOUS_SECRET_TTL,
        "updated_at": now,
    }
    await conn.execute(update(endpoints_t).where(endpoints_t.c.id == endpoint_id).values(**values))
    await events.emit(
        conn,
        events.DomainEvent(
            events.WEBHOOK_ENDPOINT_SECRET_ROTATED,
            actor,
            "webhook_endpoint",
            endpoint_id,
            {"oldKeySignsUntil": rfc3339(now + PREVIOUS_SECRET_TTL)},
            now,
        ),
    )
    return endpoint_wire({**row, **values}, values["secret_sealed"])


# --- deliveries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: list[dict[str, Any]]
    cursor: str | None
    has_more: bool

    def wire(self) -> dict[str, Any]:
        return {"deliveries": self.deliveries, "cursor": self.cursor, "hasMore": self.has_more}


async def _with_attempts(conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    by_seq: dict[int, list[Any]] = {row["seq"]: [] for row in rows}
    if by_seq:
        found = await conn.execute(
            select(attempts_t)
            .where(attempts_t.c.delivery_seq.in_(by_seq))
            .order_by(attempts_t.c.id.desc())
        )
        for attempt in found.mappings():
            shown = by_seq[attempt["delivery_seq"]]
            if len(shown) < ATTEMPTS_SHOWN:
                shown.append(attempt)
    return [delivery_wire(row, by_seq[row["seq"]]) for row in rows]


async def list_deliveries(
    conn: AsyncConnection,
    settings: Settings,
    clinic_id: str,
    endpoint_id: str,
    *,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> DeliveryPage:
    """The endpoint's deliveries newest first, each with its latest attempts."""
    await get_endpoint(conn, clinic_id, endpoint_id)
    secret = settings.resolved_secret_key
    after = decode_cursor(secret, DELIVERIES_CURSOR, cursor) if cursor is not None else None
    d = deliveries_t
    query = select(d).where(d.c.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(d.c.status == status)
    if after is not None:
        query = query.where(before(d.c.created_at, d.c.id, after))
    query = query.order_by(d.c.created_at.desc(), d.c.id.desc()).limit(limit + 1)
    rows = (await conn.execute(query)).mappings().all()
    page, has_more = split_page(rows, limit)
    next_cursor = (
        encode_cursor(secret, DELIVERIES_CURSOR, Position(page[-1]["created_at"], page[-1]["id"]))
        if has_more
        else None
    )
    return DeliveryPage(await _with_attempts(conn, page), next_cursor, has_more)


async def get_delivery(
    conn: AsyncConnection, clinic_id: str, endpoint_id: str, delivery_id: str
) -> dict[str, Any]:
    row = await _delivery_row(conn, clinic_id, endpoint_id, delivery_id)
    [wire] = await _with_attempts(conn, [row])
    return wire


async def _delivery_row(
    conn: AsyncConnection, clinic_id: str, endpoint_id: str, delivery_id: str
) -> Any:
    await get_endpoint(conn, clinic_id, endpoint_id)
    row = None
    if DELIVERY_ID.match(delivery_id):
        row = (
            (
                await conn.execute(
                    select(deliveries_t).where(
                        deliveries_t.c.endpoint_id == endpoint_id, deliveries_t.c.id == delivery_id
                    )
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound(
            f"No delivery with id {delivery_id} to this endpoint.",
            code="webhook_delivery_not_found",
        )
    return row


async def retry_delivery(
    conn: AsyncConnection, actor: Actor, endpoint_id: str, delivery_id: str, *, now: datetime
) -> dict[str, Any]:
    """Send a delivery again now (a failed one, or a delivered one to replay it), with the
    same webhook-id, and a fresh schedule of retries."""
    row = await _delivery_row(conn, actor.clinic_id, endpoint_id, delivery_id)
    endpoint = await get_endpoint(conn, actor.clinic_id, endpoint_id)
    if not endpoint["enabled"]:
        raise Conflict(
            "The endpoint is disabled: enable it (PATCH enabled: true) to deliver again.",
            code="webhook_endpoint_disabled",
        )
    if row["status"] == "pending" and row["lease_until"] is not None and row["lease_until"] > now:
        raise Conflict(
            "This delivery is being attempted right now.", code="webhook_delivery_in_progress"
        )
    await conn.execute(
        update(deliveries_t)
        .where(deliveries_t.c.seq == row["seq"])
        .values(status="pending", next_attempt_at=now, round_attempts=0, delivered_at=None)
    )
    await events.emit(
        conn,
        events.DomainEvent(
            events.WEBHOOK_DELIVERY_RETRIED,
            actor,
            "webhook_endpoint",
            endpoint_id,
            {"deliveryId": delivery_id, "status": {"before": row["status"], "after": "pending"}},
            now,
        ),
    )
    return await get_delivery(conn, actor.clinic_id, endpoint_id, delivery_id)


async def send_test(
    conn: AsyncConnection, actor: Actor, endpoint_id: str, *, now: datetime
) -> dict[str, Any]:
    """Queue a `webhook.test` event for this endpoint alone; returns its delivery."""
    endpoint = await get_endpoint(conn, actor.clinic_id, endpoint_id)
    if not endpoint["enabled"]:
        raise Conflict(
            "The endpoint is disabled: enable it (PATCH enabled: true) to send to it.",
            code="webhook_endpoint_disabled",
        )
    delivery_id = await record_test(conn, actor.clinic_id, endpoint_id, now)
    return await get_delivery(conn, actor.clinic_id, endpoint_id, delivery_id)
