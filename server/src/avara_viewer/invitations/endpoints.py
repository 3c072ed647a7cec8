"""HTTP endpoints of /v1/viewer/users/invitations (registered before /v1/viewer/users/{userId})."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from .. import flows
from ..apikit.body import read_json_object
from ..apikit.idempotent import run_mutation
from ..apikit.responses import json_response, problem_responses
from ..clinics.auth import ApiPrincipal, api_actor
from ..clock import utcnow
from ..context import api_principal, get_context
from ..fields import validate
from ..openapi_extras import mutation_openapi
from ..pagination import DEFAULT_LIMIT, MAX_LIMIT
from ..users.schemas import SuccessOut, validate_update
from . import service
from .schemas import InvitationListOut, InvitationOut, InvitationRevokeRequest, invitation_wire

router = APIRouter(prefix="/v1/viewer/users/invitations", tags=["invitations"])

_API_ERRORS = (400, 401, 413, 415, 422, 429)

InvitationIdPath = Annotated[
    str, Path(alias="invitationId", description="inv_ followed by 32 lowercase hex characters")
]


@router.get(
    "",
    operation_id="invitations_list",
    summary="List invitations",
    description=(
        "The clinic's invitations, newest first, one page at a time. `expired=expired` gives "
        "the `sent` invitations whose link has lapsed; `not-expired` gives every other one."
    ),
    response_model=InvitationListOut,
    responses=problem_responses(401, 422, 429),
)
async def list_invitations(
    request: Request,
    principal: ApiPrincipal = Depends(api_principal),
    cursor: Annotated[str | None, Query(description="The `cursor` of the previous page")] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Invitations per page")
    ] = DEFAULT_LIMIT,
    status: Annotated[
        str | None,
        Query(max_length=100, description="Comma-separated statuses, e.g. `sent,revoked`"),
    ] = None,
    expired: Annotated[
        str | None,
        Query(max_length=20, description="`all` (default), `expired` or `not-expired`"),
    ] = None,
    start_date: Annotated[
        str | None,
        Query(
            alias="startDate", max_length=10, description="Created on or after (YYYY-MM-DD, UTC)"
        ),
    ] = None,
    end_date: Annotated[
        str | None,
        Query(
            alias="endDate", max_length=10, description="Created on or before (YYYY-MM-DD, UTC)"
        ),
    ] = None,
    user_id: Annotated[str | None, Query(alias="userId", max_length=36)] = None,
) -> Response:
    ctx = get_context(request)
    filters = service.parse_filters(
        status=status, expired=expired, start_date=start_date, end_date=end_date, user_id=user_id
    )
    now = utcnow()
    page = await ctx.db.read(
        lambda conn: service.list_invitations(
            conn, ctx.settings, principal.clinic_id, filters, now=now, cursor=cursor, limit=limit
        )
    )
    return json_response(200, page.wire())


@router.post(
    "/revoke",
    operation_id="invitations_revoke",
    summary="Revoke an invitation",
    description=(
        "Names the invitation by exactly one of `invitationId` or `userId` (that user's latest "
        "invitation). Only a `sent` invitation can be revoked; its link stops working at once "
        "and the pending user's status becomes `revoked` (reactivate them to invite again)."
    ),
    response_model=SuccessOut,
    responses=problem_responses(*_API_ERRORS, 404, 409),
    openapi_extra=mutation_openapi("InvitationRevokeRequest"),
)
async def revoke_invitation(
    request: Request, principal: ApiPrincipal = Depends(api_principal)
) -> Response:
    ctx = get_context(request)
    body = await read_json_object(request)
    named: InvitationRevokeRequest = validate(InvitationRevokeRequest, body)
    actor = api_actor(request, principal)

    async def mutation(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        message = await flows.revoke_invitation(
            conn,
            ctx.settings,
            actor,
            invitation_id=named.invitation_id,
            user_id=named.user_id,
            now=utcnow(),
        )
        return 200, {"success": True, "message": message}

    return await run_mutation(
        ctx.db, ctx.settings.idempotency_ttl, request, principal.clinic_id, body, mutation
    )


@router.get(
    "/{invitationId}",
    operation_id="invitations_retrieve",
    summary="Retrieve an invitation",
    response_model=InvitationOut,
    responses=problem_responses(401, 404, 429),
)
async def retrieve_invitation(
    request: Request,
    invitation_id: InvitationIdPath,
    principal: ApiPrincipal = Depends(api_principal),
) -> Response:
    ctx = get_context(request)
    row = await ctx.db.read(
        lambda conn: service.get_invitation(conn, principal.clinic_id, invitation_id)
    )
    return json_response(200, invitation_wire(row))


@router.patch(
    "/{invitationId}",
    operation_id="invitations_update",
    summary="Update a sent invitation",
    description=(
        "Edits the pending user of a `sent` invitation, with the rules of users.update; any "
        "other invitation is a 409."
    ),
    response_model=InvitationOut,
    responses=problem_responses(*_API_ERRORS, 403, 404, 409),
    openapi_extra=mutation_openapi("UserUpdateRequest"),
)
async def update_invitation(
    request: Request,
    invitation_id: InvitationIdPath,
    principal: ApiPrincipal = Depends(api_principal),
) -> Response:
    ctx = get_context(request)
    body = await read_json_object(request)
    update = validate_update(body)
    actor = api_actor(request, principal)

    async def mutation(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        row = await flows.update_invitation(
            conn, ctx.settings, actor, invitation_id, update, now=utcnow()
        )
        return 200, invitation_wire(row)

    return await run_mutation(
        ctx.db, ctx.settings.idempotency_ttl, request, principal.clinic_id, body, mutation
    )


@router.post(
    "/{invitationId}/resend",
    operation_id="invitations_resend",
    summary="Resend an invitation",
    description=(
        "A new link and expiry, and a new email; the old link stops working. Allowed for `sent` "
        "invitations, expired ones included (409 otherwise), at most once per cooldown "
        "(429 with Retry-After). No request body."
    ),
    response_model=InvitationOut,
    responses=problem_responses(401, 404, 409, 422, 429),
    openapi_extra=mutation_openapi(None),
)
async def resend_invitation(
    request: Request,
    invitation_id: InvitationIdPath,
    principal: ApiPrincipal = Depends(api_principal),
) -> Response:
    ctx = get_context(request)
    actor = api_actor(request, principal)

    async def mutation(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        row = await flows.resend_invitation(
            conn, ctx.settings, actor, invitation_id, now=utcnow()
        )
        return 200, invitation_wire(row)

    response = await run_mutation(
        ctx.db, ctx.settings.idempotency_ttl, request, principal.clinic_id, {}, mutation
    )
    ctx.outbox_wakeup.set()
    return response
