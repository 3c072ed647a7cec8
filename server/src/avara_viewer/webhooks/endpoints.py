"""HTTP endpoints of /v1/viewer/webhook-endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from ..apikit.body import read_json_object
from ..apikit.idempotent import run_mutation
from ..apikit.responses import json_response, problem_responses
from ..clinics.auth import ApiPrincipal, api_actor
from ..clock import utcnow
from ..context import api_principal, get_context
from ..errors import ValidationFailed
from ..openapi_extras import mutation_openapi
from ..pagination import DEFAULT_LIMIT, MAX_LIMIT
from . import addresses, service, signing
from .schemas import (
    DeliveryListOut,
    DeliveryOut,
    DeliveryStatus,
    EndpointCreateRequest,
    EndpointListOut,
    EndpointOut,
    EndpointUpdateRequest,
    endpoint_wire,
    validate_body,
)

router = APIRouter(prefix="/v1/viewer/webhook-endpoints", tags=["webhooks"])

_MUTATION_ERRORS = (400, 401, 413, 415, 422, 429)

EndpointIdPath = Annotated[
    str, Path(alias="endpointId", description="whep_ followed by 32 lowercase hex characters")
]
DeliveryIdPath = Annotated[
    str, Path(alias="deliveryId", description="whd_ followed by 32 lowercase hex characters")
]
Change = Callable[[AsyncConnection], Awaitable[tuple[int, dict[str, Any]]]]


async def _check_url(request: Request, url: str | None) -> None:
    """A 422 naming `url` when it may not receive webhooks (see addresses)."""
    if url is None:
        return
    settings = get_context(request).settings
    problem = await addresses.check_url(url, allow_private=settings.webhook_allow_private)
    if problem is not None:
        raise ValidationFailed(
            f"Invalid fields: url ({problem}).", errors=[{"field": "url", "message": problem}]
        )


async def _optional_body(request: Request) -> dict[str, Any]:
    """The JSON body of an action whose body may be left out."""
    length = request.headers.get("content-length")
    if "transfer-encoding" not in request.headers and (length is None or length.strip() == "0"):
        return {}
    body = await read_json_object(request)
    if body:
        names = ", ".join(body)
        raise ValidationFailed(
            f"Invalid fields: {names}.",
            errors=[{"field": name, "message": "is not a known field"} for name in body],
        )
    return body


async def _mutate(
    request: Request, principal: ApiPrincipal, body: dict[str, Any], change: Change
) -> Response:
    ctx = get_context(request)
    return await run_mutation(
        ctx.db, ctx.settings.idempotency_ttl, request, principal.clinic_id, body, change
    )


def _reveal_secret(request: Request, response: Response) -> Response:
    """Open the sealed `secret` of a create or rotate answer. The answer is stored sealed for
    Idempotency-Key replays, so the signing secret never rests in the database in the clear."""
    if response.status_code not in (200, 201):
        return response
    body = orjson.loads(bytes(response.body))
    key = get_context(request).settings.resolved_secret_key
    body["secret"] = signing.unseal(key, body["endpointId"], body["secret"])
    replayed = response.headers.get("idempotent-replayed")
    headers = {"Idempotent-Replayed": replayed} if replayed else None
    return json_response(response.status_code, body, headers)


@router.post(
    "",
    status_code=201,
    operation_id="webhook_endpoints_create",
    summary="Create a webhook endpoint",
    description=(
        "Subscribes a URL to the clinic's events (all of them unless `eventTypes` names some). "
        "The answer carries the signing secret (`whsec_…`): it is shown only here and after a "
        "rotation. Only https URLs reaching public addresses are accepted unless the operator "
        "allows private ones."
    ),
    response_model=EndpointOut,
    responses=problem_responses(*_MUTATION_ERRORS, 409),
    openapi_extra=mutation_openapi("EndpointCreateRequest"),
)
async def create_endpoint(
    request: Request, principal: ApiPrincipal = Depends(api_principal)
) -> Response:
    ctx = get_context(request)
    body = await read_json_object(request)
    create: EndpointCreateRequest = validate_body(EndpointCreateRequest, body)
    await _check_url(request, create.url)
    actor = api_actor(request, principal)

    async def change(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        return 201, await service.create_endpoint(conn, ctx.settings, actor, create, now=utcnow())

    return _reveal_secret(request, await _mutate(request, principal, body, change))


@router.get(
    "",
    operation_id="webhook_endpoints_list",
    summary="List webhook endpoints",
    description="The clinic's endpoints, newest first, one page at a time (pass `cursor`).",
    response_model=EndpointListOut,
    responses=problem_responses(401, 422, 429),
)
async def list_endpoints(
    request: Request,
    principal: ApiPrincipal = Depends(api_principal),
    cursor: Annotated[str | None, Query(description="The `cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    ctx = get_context(request)
    page = await ctx.db.read(
        lambda conn: service.list_endpoints(
            conn, ctx.settings, principal.clinic_id, cursor=cursor, limit=limit
        )
    )
    return json_response(200, page.wire())


@router.get(
    "/{endpointId}",
    operation_id="webhook_endpoints_retrieve",
    summary="Retrieve a webhook endpoint",
    response_model=EndpointOut,
    responses=problem_responses(401, 404, 429),
)
async def retrieve_endpoint(
    request: Request, endpoint_id: EndpointIdPath, principal: ApiPrincipal = Depends(api_principal)
) -> Response:
    ctx = get_context(request)
    row = await ctx.db.read(
        lambda conn: service.get_endpoint(conn, principal.clinic_id, endpoint_id)
    )
    return json_response(200, endpoint_wire(row))


@router.patch(
    "/{endpointId}",
    operation_id="webhook_endpoints_update",
    summary="Update a webhook endpoint",
    description=(
        "Changes the fields given. `enabled: true` on a disabled endpoint resumes delivery, "
        "starting with what waited for it."
    ),
    response_model=EndpointOut,
    responses=problem_responses(*_MUTATION_ERRORS, 404),
    openapi_extra=mutation_openapi("EndpointUpdateRequest"),
)
async def update_endpoint(
    request: Request, endpoint_id: EndpointIdPath, principal: ApiPrincipal = Depends(api_principal)
) -> Response:
    ctx = get_context(request)
    body = await read_json_object(request)
    update: EndpointUpdateRequest = validate_body(EndpointUpdateRequest, body)
    await _check_url(request, update.url)
    actor = api_actor(request, principal)

    async def change(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        return 200, await service.update_endpoint(
            conn, ctx.settings, actor, endpoint_id, update, now=utcnow()
        )

    return await _mutate(request, principal, body, change)


@router.delete(
    "/{endpointId}",
    operation_id="webhook_endpoints_delete",
    summary="Delete a webhook endpoint",
    description="The endpoint, its deliveries and their attempts are removed.",
    responses=problem_responses(401, 404, 429),
)
async def delete_endpoint(
    request: Request, endpoint_id: EndpointIdPath, principal: ApiPrincipal = Depends(api_principal)
) -> Response:
    ctx = get_context(request)
    actor = api_actor(request, principal)

    async def change(conn: AsyncConnection) -> dict[str, Any]:
        message = await service.delete_endpoint(conn, actor, endpoint_id, now=utcnow())
        return {"success": True, "message": message}

    return json_response(200, await ctx.db.write(change))


@router.post(
    "/{endpointId}/rotate-secret",
    operation_id="webhook_endpoints_rotate_secret",
    summary="Rotate an endpoint's signing secret",
    description=(
        "A new secret, shown once in the answer. For 24 hours every delivery is signed with "
        "both the new and the old secret (two signatures in `webhook-signature`), so the "
        "receiver can switch without missing an event."
    ),
    response_model=EndpointOut,
    responses=problem_responses(*_MUTATION_ERRORS, 404),
    openapi_extra=mutation_openapi(None),
)
async def rotate_secret(
    request: Request, endpoint_id: EndpointIdPath, principal: ApiPrincipal = Depends(api_principal)
) -> Response:
    ctx = get_context(request)
    body = await _optional_body(request)
    actor = api_actor(request, principal)

    async def change(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        return 200, await service.rotate_secret(
            conn, ctx.settings, actor, endpoint_id, now=utcnow()
        )

    return _reveal_secret(request, await _mutate(request, principal, body, change))


@router.get(
    "/{endpointId}/deliveries",
    operation_id="webhook_endpoints_deliveries_list",
    summary="List an endpoint's deliveries",
    description=(
        "Every event sent (or to be sent) to the endpoint, newest first, with its status, "
        "attempts (time, response code, latency, error), and the time of the next retry."
    ),
    response_model=DeliveryListOut,
    responses=problem_responses(401, 404, 422, 429),
)
async def list_deliveries(
    request: Request,
    endpoint_id: EndpointIdPath,
    principal: ApiPrincipal = Depends(api_principal),
    status: Annotated[DeliveryStatus | None, Query()] = None,
    cursor: Annotated[str | None, Query(description="The `cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    ctx = get_context(request)
    page = await ctx.db.read(
        lambda conn: service.list_deliveries(
            conn,
            ctx.settings,
            principal.clinic_id,
            endpoint_id,
            status=status,
            cursor=cursor,
            limit=limit,
        )
    )
    return json_response(200, page.wire())


@router.post(
    "/{endpointId}/deliveries/{deliveryId}/retry",
    operation_id="webhook_endpoints_deliveries_retry",
    summary="Send a delivery again",
    description=(
        "Sends the event again now, with the same `webhook-id` (a failed delivery, or a "
        "delivered one to replay it), with a fresh schedule of retries."
    ),
    response_model=DeliveryOut,
    responses=problem_responses(*_MUTATION_ERRORS, 404, 409),
    openapi_extra=mutation_openapi(None),
)
async def retry_delivery(
    request: Request,
    endpoint_id: EndpointIdPath,
    delivery_id: DeliveryIdPath,
    principal: ApiPrincipal = Depends(api_principal),
) -> Response:
    body = await _optional_body(request)
    actor = api_actor(request, principal)

    async def change(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        return 200, await service.retry_delivery(
            conn, actor, endpoint_id, delivery_id, now=utcnow()
        )

    return await _mutate(request, principal, body, change)


@router.post(
    "/{endpointId}/test",
    operation_id="webhook_endpoints_test",
    summary="Send a test event",
    description="Queues a `webhook.test` event for this endpoint alone; returns its delivery.",
    response_model=DeliveryOut,
    responses=problem_responses(*_MUTATION_ERRORS, 404, 409),
    openapi_extra=mutation_openapi(None),
)
async def send_test(
    request: Request, endpoint_id: EndpointIdPath, principal: ApiPrincipal = Depends(api_principal)
) -> Response:
    body = await _optional_body(request)
    actor = api_actor(request, principal)

    async def change(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        return 200, await service.send_test(conn, actor, endpoint_id, now=utcnow())

    return await _mutate(request, principal, body, change)
