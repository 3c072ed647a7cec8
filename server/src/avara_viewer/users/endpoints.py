"""HTTP endpoints of /v1/viewer/users."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from .. import flows
from ..apikit.body import HeaderGetter, read_json_object
from ..apikit.idempotent import Answer, keyed_payload, run_mutation
from ..apikit.responses import json_response, problem_responses
from ..clinics.auth import ApiPrincipal, api_actor
from ..clock import utcnow
from ..context import AppContext, api_principal, authorize, get_context
from ..fields import EMAIL_MAX, NAME_MAX, InvitedSource, UserLevel, UserStatus, validate
from ..openapi_extras import mutation_openapi
from ..pagination import DEFAULT_LIMIT, MAX_LIMIT
from . import service
from .repository import UserFilters
from .schemas import (
    SuccessOut,
    UserIdRequest,
    UserInviteRequest,
    UserListOut,
    UserOut,
    user_wire,
    validate_update,
)

router = APIRouter(prefix="/v1/viewer/users", tags=["users"])

_API_ERRORS = (400, 401, 413, 415, 422, 429)


@router.post(
    "",
    status_code=201,
    operation_id="users_invite",
    summary="Create and invite a new user",
    description=(
        "Creates a user in the API key's clinic and sends them an invitation email. One "
        "transaction records the user (status invited), the invitation (sent) and the queued "
        "email: a 201 means all three are durably stored."
    ),
    response_model=UserOut,
    responses=problem_responses(*_API_ERRORS, 409),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/UserInviteRequest"}}
            },
        },
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": (
                    "Replays the first response for 24 h when sent again with the same body."
                ),
            }
        ],
    },
)
async def invite_user(request: Request) -> Response:
    # Served by users.lean in front of FastAPI; this route declares the operation (OpenAPI)
    # and answers when the lean layer steps aside (an app mounted under a root path).
    return await invite(
        get_context(request),
        request.headers,
        request.state.request_id,
        request.url.path,
        lambda: read_json_object(request),
    )


async def invite(
    ctx: AppContext,
    headers: HeaderGetter,
    request_id: str,
    path: str,
    read_body: Callable[[], Awaitable[dict[str, Any]]],
) -> Response:
    """POST /v1/viewer/users, for FastAPI's route and the lean layer alike: the key (401, 429),
    the body (415, 413, 400, 422), the Idempotency-Key, then the invite grouped with
    concurrent ones in one durable transaction."""
    principal = await authorize(ctx, headers.get("authorization"))
    body = await read_body()
    request: UserInviteRequest = validate(UserInviteRequest, body)
    item = service.InviteItem(principal.actor(request_id), request, utcnow())
    keyed = keyed_payload(
        "POST", path, headers.get("idempotency-key"), principal.clinic_id, body, item
    )
    answer: Answer = await ctx.db.write_batched(ctx.invite_batcher, keyed)
    if answer.status == 201:
        ctx.outbox_wakeup.set()
    return answer.response()


UserIdPath = Annotated[
    str, Path(alias="userId", description="usr_ followed by 32 lowercase hex characters")
]


@router.get(
    "",
    operation_id="users_list",
    summary="List users",
    description=(
        "The clinic's users, newest first (ties broken by id), one page at a time: pass the "
        "`cursor` of a page to get the next. Every page costs the same, however deep."
    ),
    response_model=UserListOut,
    responses=problem_responses(401, 422, 429),
)
async def list_users(
    request: Request,
    principal: ApiPrincipal = Depends(api_principal),
    cursor: Annotated[str | None, Query(description="The `cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Users per page")] = DEFAULT_LIMIT,
    # Bounded like the fields they search, so a search never asks the database to match a
    # pattern longer than any value it could find (SQLite refuses LIKE patterns over 50,000
    # bytes; matching a long one costs time however it ends).
    email: Annotated[
        str | None, Query(max_length=EMAIL_MAX, description="Exact address, ignoring case")
    ] = None,
    first_name: Annotated[
        str | None,
        Query(
            alias="firstName",
            max_length=NAME_MAX,
            description="Part of the first name, ignoring case",
        ),
    ] = None,
    last_name: Annotated[
        str | None,
        Query(
            alias="lastName",
            max_length=NAME_MAX,
            description="Part of the last name, ignoring case",
        ),
    ] = None,
    level: Annotated[UserLevel | None, Query()] = None,
    invited_source: Annotated[InvitedSource | None, Query(alias="invitedSource")] = None,
    status: Annotated[UserStatus | None, Query()] = None,
) -> Response:
    ctx = get_context(request)
    filters = UserFilters(
        email=email,
        first_name=first_name,
        last_name=last_name,
        level=level,
        invited_source=invited_source,
        status=status,
    )
    page = await ctx.db.read(
        lambda conn: service.list_users(
            conn, ctx.settings, principal.clinic_id, filters, cursor=cursor, limit=limit
        )
    )
    return json_response(200, page.wire())


@router.post(
    "/revoke-access",
    operation_id="users_revoke_access",
    summary="Revoke a user's access",
    description=(
        "The user can no longer log in, their dashboard sessions end and a pending invitation "
        "is revoked (its link stops working). Owners cannot be revoked through the API."
    ),
    response_model=SuccessOut,
    responses=problem_responses(*_API_ERRORS, 403, 404, 409),
    openapi_extra=mutation_openapi("UserIdRequest"),
)
async def revoke_access(
    request: Request, principal: ApiPrincipal = Depends(api_principal)
) -> Response:
    return await _user_action(request, principal, flows.revoke_access)


@router.post(
    "/reactivate",
    operation_id="users_reactivate",
    summary="Reactivate a revoked user",
    description=(
        "A revoked user who had joined becomes active again. One who never accepted their "
        "invitation goes back to `invited` with a fresh invitation email. Reactivating an "
        "active or invited user is a 409."
    ),
    response_model=SuccessOut,
    responses=problem_responses(*_API_ERRORS, 403, 404, 409),
    openapi_extra=mutation_openapi("UserIdRequest"),
)
async def reactivate(
    request: Request, principal: ApiPrincipal = Depends(api_principal)
) -> Response:
    return await _user_action(request, principal, flows.reactivate)


async def _user_action(request: Request, principal: ApiPrincipal, action: Any) -> Response:
    ctx = get_context(request)
    body = await read_json_object(request)
    named: UserIdRequest = validate(UserIdRequest, body)
    actor = api_actor(request, principal)

    async def mutation(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        message = await action(conn, ctx.settings, actor, named.user_id, now=utcnow())
        return 200, {"success": True, "message": message}

    response = await run_mutation(
        ctx.db, ctx.settings.idempotency_ttl, request, principal.clinic_id, body, mutation
    )
    ctx.outbox_wakeup.set()
    return response


@router.get(
    "/{userId}",
    operation_id="users_retrieve",
    summary="Retrieve a user",
    response_model=UserOut,
    responses=problem_responses(401, 404, 429),
)
async def retrieve_user(request: Request, user_id: UserIdPath) -> Response:
    # Served by users.lean, like invite_user; authenticated by `retrieve` (OpenAPI declares
    # the security scheme).
    return await retrieve(get_context(request), request.headers.get("authorization"), user_id)


async def retrieve(ctx: AppContext, authorization: str | None, user_id: str) -> Response:
    """GET /v1/viewer/users/{userId}, for FastAPI's route and the lean layer alike."""
    principal = await authorize(ctx, authorization)
    row = await ctx.db.read(lambda conn: service.get_user(conn, principal.clinic_id, user_id))
    return json_response(200, user_wire(row))


@router.patch(
    "/{userId}",
    operation_id="users_update",
    summary="Update a user",
    description=(
        "Changes the fields given, with the rules of the invite call; `null` clears an optional "
        "field. The email cannot be changed; admins must keep dashboard access; owners cannot "
        "be changed through the API (403). An empty body changes nothing."
    ),
    response_model=UserOut,
    responses=problem_responses(*_API_ERRORS, 403, 404),
    openapi_extra=mutation_openapi("UserUpdateRequest"),
)
async def update_user(
    request: Request, user_id: UserIdPath, principal: ApiPrincipal = Depends(api_principal)
) -> Response:
    ctx = get_context(request)
    body = await read_json_object(request)
    update = validate_update(body)
    actor = api_actor(request, principal)

    async def mutation(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        row = await service.update_user(conn, ctx.settings, actor, user_id, update, now=utcnow())
        return 200, user_wire(row)

    return await run_mutation(
        ctx.db, ctx.settings.idempotency_ttl, request, principal.clinic_id, body, mutation
    )
