"""Wire models of the webhook endpoints API, and the Endpoint and Delivery objects as sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..clock import rfc3339
from ..errors import ValidationFailed
from ..fields import WireModel, validate
from .record import EVENT_TYPES

MAX_DESCRIPTION = 500
DeliveryStatus = Literal["pending", "succeeded", "failed"]


class EndpointCreateRequest(WireModel):
    """Subscribe a URL to the clinic's events."""

    url: str = Field(description="https URL that receives the events (POST)")
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    event_types: list[str] | None = Field(
        default=None, description="The event types to send; omitted or null: every event"
    )
    enabled: bool = True


class EndpointUpdateRequest(WireModel):
    """Change any of an endpoint's fields; `null` clears the description or subscribes it to
    every event type."""

    url: str | None = None
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    event_types: list[str] | None = None
    enabled: bool | None = None


def _check_event_types(data: dict[str, Any], errors: list[dict[str, str]]) -> None:
    types = data.get("eventTypes")
    if types is None or not isinstance(types, list):
        return
    # Items that are not strings are named by pydantic's own error for the field.
    unknown = sorted({t for t in types if isinstance(t, str) and t not in EVENT_TYPES})
    if unknown:
        errors.append(
            {
                "field": "eventTypes",
                "message": f"unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}",
            }
        )
    elif not types:
        errors.append(
            {"field": "eventTypes", "message": "must name at least one type (null: every type)"}
        )


def validate_body(model: type[WireModel], data: dict[str, Any]) -> Any:
    """Validate a create or update body; one 422 naming every bad field."""
    errors: list[dict[str, str]] = []
    _check_event_types(data, errors)
    if model is EndpointUpdateRequest:
        for name in ("url", "enabled"):
            if name in data and data[name] is None:
                errors.append({"field": name, "message": "cannot be null; leave it out to keep it"})
    result = None
    try:
        result = validate(model, data)
    except ValidationFailed as exc:
        errors.extend(e for e in exc.errors or [] if e not in errors)
    if errors:
        names = ", ".join(dict.fromkeys(e["field"] for e in errors))
        raise ValidationFailed(f"Invalid fields: {names}.", errors=errors)
    return result


class EndpointOut(BaseModel):
    """A webhook endpoint; `secret` only in the answers of create and rotate-secret."""

    model_config = ConfigDict(alias_generator=to_camel, serialize_by_alias=True)

    endpoint_id: str = Field(description="whep_ followed by 32 lowercase hex characters")
    url: str
    description: str | None
    event_types: list[str] | None = Field(description="null: every event type")
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(default=None, description="whsec_…, shown once")


class EndpointListOut(BaseModel):
    endpoints: list[EndpointOut]
    cursor: str | None
    has_more: bool = Field(alias="hasMore")


class AttemptOut(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, serialize_by_alias=True)

    attempted_at: datetime
    response_status: int | None
    latency_ms: int
    error: str | None
    response_body: str | None = Field(description="The start of the receiver's answer")


class DeliveryOut(BaseModel):
    """One event's delivery to one endpoint, with every attempt made."""

    model_config = ConfigDict(alias_generator=to_camel, serialize_by_alias=True)

    delivery_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    response_status: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="null unless pending")
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[AttemptOut]


class DeliveryListOut(BaseModel):
    deliveries: list[DeliveryOut]
    cursor: str | None
    has_more: bool = Field(alias="hasMore")


def endpoint_wire(row: Any, secret: str | None = None) -> dict[str, Any]:
    wire = {
        "endpointId": row["id"],
        "url": row["url"],
        "description": row["description"],
        "eventTypes": orjson.loads(row["event_types"]) if row["event_types"] else None,
        "enabled": bool(row["enabled"]),
        "disabledReason": row["disabled_reason"],
        "createdAt": rfc3339(row["created_at"]),
        "updatedAt": rfc3339(row["updated_at"]),
    }
    if secret is not None:
        wire["secret"] = secret
    return wire


def attempt_wire(row: Any) -> dict[str, Any]:
    return {
        "attemptedAt": rfc3339(row["attempted_at"]),
        "responseStatus": row["response_status"],
        "latencyMs": row["latency_ms"],
        "error": row["error"],
        "responseBody": row["response_snippet"],
    }


def delivery_wire(row: Any, attempts: list[Any]) -> dict[str, Any]:
    return {
        "deliveryId": row["id"],
        "eventId": row["event_id"],
        "eventType": row["event_type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "responseStatus": row["response_status"],
        "lastError": row["last_error"],
        "lastAttemptAt": rfc3339(row["last_attempt_at"]),
        "nextAttemptAt": rfc3339(row["next_attempt_at"]) if row["status"] == "pending" else None,
        "deliveredAt": rfc3339(row["delivered_at"]),
        "createdAt": rfc3339(row["created_at"]),
        "attemptLog": [attempt_wire(a) for a in attempts],
    }
