"""HTTP endpoints of /v1/viewer/users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from ..actor import Actor
from ..api import problem_responses, run_mutation
from ..clinics.auth import ApiPrincipal
from ..clock import utcnow
from ..context import api_principal, get_context
from ..fields import validate
from ..jsonbody import read_json_object
from . import service
from .schemas import UserInviteRequest, UserOut, user_wire

router = APIRouter(prefix="/v1/viewer/users", tags=["users"])

_API_ERRORS = (400, 401, 413, 415, 422, 429)


def _actor(request: Request, principal: ApiPrincipal) -> Actor:
    return Actor(
        clinic_id=principal.clinic_id,
        kind="api_key",
        id=principal.api_key_id,
        request_id=request.headers.get("x-request-id"),
    )


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
                "description": "Replays the first response for 24 h when sent again with the same body.",
            }
        ],
    },
)
async def invite_user(
    request: Request, principal: ApiPrincipal = Depends(api_principal)
) -> Response:
    ctx = get_context(request)
    body = await read_json_object(request)
    invite: UserInviteRequest = validate(UserInviteRequest, body)
    actor = _actor(request, principal)

    async def mutation(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        row = await service.invite(conn, ctx.settings, actor, invite, now=utcnow())
        return 201, user_wire(row)

    response = await run_mutation(ctx, request, principal.clinic_id, body, mutation)
    if response.status_code == 201:
        ctx.outbox_wakeup.set()
    return response
