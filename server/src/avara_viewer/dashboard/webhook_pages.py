"""The clinic's webhook endpoints behind a session, for owners and admins: list, add (secret
shown once), enable/disable, rotate the secret, delete, and each endpoint's deliveries with
retry and "send a test event". Every change goes through webhooks.service, audited with the
signed-in admin as actor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..clock import utcnow
from ..errors import Conflict, ProblemError, ValidationFailed
from ..webhooks import addresses, service, signing
from ..webhooks.record import EVENT_TYPES
from ..webhooks.schemas import (
    EndpointCreateRequest,
    EndpointUpdateRequest,
    endpoint_wire,
    validate_body,
)
from .admin import actor_of
from .web import (
    DashboardRoute,
    PageError,
    ctx_of,
    field,
    form_data,
    page,
    redirect,
    require_admin,
)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

DELIVERIES_PER_PAGE = 25
NOTICES = {
    "deleted": "The endpoint was deleted; it receives no more events.",
    "enabled": "The endpoint was enabled; its pending deliveries go out now.",
    "disabled": "The endpoint was disabled; events are kept until you enable it again.",
    "test-sent": "A test event was queued; its delivery appears below.",
    "retried": "The delivery was queued to be sent again.",
}
# What each confirmed action asks and does.
CONFIRMS = {
    "disable": (
        "Disable this endpoint?",
        "No events are sent to it until you enable it again; they are kept meanwhile.",
        "Disable endpoint",
    ),
    "rotate": (
        "Rotate the signing secret?",
        "A new secret is created and shown once. The current one keeps signing beside it for "
        "24 hours, so the receiver can switch without losing a delivery.",
        "Rotate secret",
    ),
    "delete": (
        "Delete this endpoint?",
        "It receives no more events, and its deliveries and their history are deleted. "
        "This cannot be undone.",
        "Delete endpoint",
    ),
}


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


def _secret_of(request: Request, wire: dict[str, Any]) -> str:
    key = ctx_of(request).settings.resolved_secret_key
    return signing.unseal(key, wire["endpointId"], wire["secret"])


async def _list_page(request: Request, me: Any, **context: Any) -> Response:
    ctx = ctx_of(request)
    found = await ctx.db.read(
        lambda conn: service.list_endpoints(
            conn, ctx.settings, me.clinic_id, limit=service.MAX_ENDPOINTS_PER_CLINIC
        )
    )
    values = {"status": 200, "secret": None, "created": None, "errors": {}, "notice": None}
    values.update(context)
    values.setdefault("form", {"url": "", "description": "", "event_types": list(EVENT_TYPES)})
    return page(
        request,
        "webhooks.html",
        endpoints=found.wire()["endpoints"],
        event_types=EVENT_TYPES,
        **values,
    )


@router.get("/webhooks")
async def webhooks_page(request: Request) -> Response:
    me = await require_admin(request)
    return await _list_page(request, me, notice=_notice(request))


@router.post("/webhooks")
async def create_endpoint(request: Request) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    form = await form_data(request)
    chosen = [t for t in form.getlist("eventTypes") if isinstance(t, str)]
    values = {
        "url": field(form, "url"),
        "description": " ".join(field(form, "description").split()),
        "event_types": chosen,
    }
    body: dict[str, Any] = {
        "url": values["url"],
        "description": values["description"] or None,
        # Every type ticked: subscribed to every type, including ones added later.
        "eventTypes": None if set(chosen) >= set(EVENT_TYPES) else chosen,
    }
    errors: dict[str, str] = {}
    create: EndpointCreateRequest | None = None
    try:
        create = validate_body(EndpointCreateRequest, body)
    except ValidationFailed as exc:
        for error in exc.errors or []:
            errors.setdefault(error["field"], error["message"])
    if not values["url"]:
        errors["url"] = "Enter the https address that receives the events."
    elif "url" not in errors:
        problem = await addresses.check_url(
            values["url"], allow_private=ctx.settings.webhook_allow_private
        )
        if problem is not None:
            errors["url"] = problem
    if not chosen:
        errors["eventTypes"] = "Choose at least one event type."
    if errors or create is None:
        return await _list_page(request, me, status=422, errors=errors, form=values)
    actor = actor_of(request, me)
    try:
        wire = await ctx.db.write(
            lambda conn: service.create_endpoint(conn, ctx.settings, actor, create, now=utcnow())
        )
    except Conflict as exc:
        raise PageError(exc.status, exc.title, exc.detail) from None
    return await _list_page(
        request, me, status=201, secret=_secret_of(request, wire), created=wire
    )


async def _endpoint_page(
    request: Request, me: Any, endpoint_id: str, *, status: int = 200, secret: str | None = None
) -> Response:
    ctx = ctx_of(request)
    cursor = request.query_params.get("cursor") or None

    async def load(conn: Any) -> tuple[Any, Any]:
        row = await service.get_endpoint(conn, me.clinic_id, endpoint_id)
        deliveries = await service.list_deliveries(
            conn, ctx.settings, me.clinic_id, endpoint_id, cursor=cursor, limit=DELIVERIES_PER_PAGE
        )
        return row, deliveries

    try:
        row, deliveries = await ctx.db.read(load)
    except ProblemError as exc:
        if exc.status != 404:
            raise
        raise PageError(
            404, "Not found", "There is no such webhook endpoint in your clinic."
        ) from None
    next_url = None
    if deliveries.has_more and deliveries.cursor:
        next_url = f"/webhooks/{endpoint_id}?cursor={deliveries.cursor}"
    return page(
        request,
        "webhook.html",
        status=status,
        endpoint=endpoint_wire(row),
        deliveries=deliveries.deliveries,
        next_url=next_url,
        secret=secret,
        notice=_notice(request),
    )


@router.get("/webhooks/{endpoint_id}")
async def endpoint_page(request: Request, endpoint_id: str) -> Response:
    me = await require_admin(request)
    return await _endpoint_page(request, me, endpoint_id)


@router.get("/webhooks/{endpoint_id}/{action}")
async def confirm_page(request: Request, endpoint_id: str, action: str) -> Response:
    me = await require_admin(request)
    if action not in CONFIRMS:
        raise PageError(404, "Not found", "There is no such page.")
    ctx = ctx_of(request)
    try:
        row = await ctx.db.read(lambda conn: service.get_endpoint(conn, me.clinic_id, endpoint_id))
    except ProblemError:
        raise PageError(
            404, "Not found", "There is no such webhook endpoint in your clinic."
        ) from None
    title, explanation, button = CONFIRMS[action]
    return page(
        request,
        "webhook_confirm.html",
        title=title,
        explanation=explanation,
        button=button,
        action=action,
        endpoint_id=endpoint_id,
        url=row["url"],
    )


async def _change(request: Request, op: Any) -> Any:
    try:
        return await ctx_of(request).db.write(op)
    except ProblemError as exc:
        raise PageError(exc.status, exc.title, exc.detail) from None


async def _set_enabled(request: Request, endpoint_id: str, enabled: bool) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    actor = actor_of(request, me)
    change = EndpointUpdateRequest(enabled=enabled)
    await _change(
        request,
        lambda conn: service.update_endpoint(
            conn, ctx.settings, actor, endpoint_id, change, now=utcnow()
        ),
    )
    notice = "enabled" if enabled else "disabled"
    return redirect(request, f"/webhooks/{endpoint_id}?notice={notice}")


@router.post("/webhooks/{endpoint_id}/enable")
async def enable_endpoint(request: Request, endpoint_id: str) -> Response:
    return await _set_enabled(request, endpoint_id, True)


@router.post("/webhooks/{endpoint_id}/disable")
async def disable_endpoint(request: Request, endpoint_id: str) -> Response:
    return await _set_enabled(request, endpoint_id, False)


@router.post("/webhooks/{endpoint_id}/rotate")
async def rotate_secret(request: Request, endpoint_id: str) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    actor = actor_of(request, me)
    wire = await _change(
        request,
        lambda conn: service.rotate_secret(conn, ctx.settings, actor, endpoint_id, now=utcnow()),
    )
    return await _endpoint_page(request, me, endpoint_id, secret=_secret_of(request, wire))


@router.post("/webhooks/{endpoint_id}/delete")
async def delete_endpoint(request: Request, endpoint_id: str) -> Response:
    me = await require_admin(request)
    actor = actor_of(request, me)
    await _change(
        request,
        lambda conn: service.delete_endpoint(conn, actor, endpoint_id, now=utcnow()),
    )
    return redirect(request, "/webhooks?notice=deleted")


@router.post("/webhooks/{endpoint_id}/test")
async def send_test(request: Request, endpoint_id: str) -> Response:
    me = await require_admin(request)
    actor = actor_of(request, me)
    await _change(
        request, lambda conn: service.send_test(conn, actor, endpoint_id, now=utcnow())
    )
    return redirect(request, f"/webhooks/{endpoint_id}?notice=test-sent")


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry")
async def retry_delivery(request: Request, endpoint_id: str, delivery_id: str) -> Response:
    me = await require_admin(request)
    actor = actor_of(request, me)
    await _change(
        request,
        lambda conn: service.retry_delivery(conn, actor, endpoint_id, delivery_id, now=utcnow()),
    )
    return redirect(request, f"/webhooks/{endpoint_id}?notice=retried")
