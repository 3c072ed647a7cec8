"""The dashboard's SCIM page, for owners and admins: the address to give the identity
provider, the clinic's SCIM tokens (made and shown once, revoked) and its provisioning
settings (invite by email or activate at once; defaults of our own fields)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..clock import utcnow
from ..dashboard.admin import actor_of
from ..dashboard.web import (
    DashboardRoute,
    Me,
    PageError,
    ctx_of,
    field,
    form_data,
    page,
    redirect,
    require_admin,
)
from ..errors import NotFound, ValidationFailed
from ..fields import CLINIC_ROLES
from . import repository as repo
from . import settings as scim_settings
from . import tokens
from .resource import ClinicDefaults

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

NOTICES = {
    "token-revoked": "The SCIM token was revoked; the identity provider using it is refused.",
    "settings-saved": "Provisioning settings saved.",
}


async def _render(request: Request, me: Me, *, status: int = 200, **context: Any) -> Response:
    ctx = ctx_of(request)

    async def read(conn: Any) -> tuple[list[Any], ClinicDefaults]:
        found = await tokens.list_for_clinic(conn, me.clinic_id)
        return found, ClinicDefaults.of(await repo.clinic_settings(conn, me.clinic_id))

    token_rows, defaults = await ctx.db.read(read)
    values = {
        "token": None,
        "error": None,
        "description": "",
        "settings_errors": {},
        "notice": NOTICES.get(request.query_params.get("notice", "")),
    }
    values.update(context)
    return page(
        request,
        "scim.html",
        status=status,
        tokens=token_rows,
        defaults=defaults,
        roles=[(r, r) for r in CLINIC_ROLES],
        levels=[("member", "Member"), ("admin", "Admin")],
        base_url=f"{ctx.settings.public_url}/scim/v2",
        **values,
    )


@router.get("/scim")
async def scim_page(request: Request) -> Response:
    me = await require_admin(request)
    return await _render(request, me)


@router.post("/scim/tokens")
async def create_token(request: Request) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    description = " ".join(field(await form_data(request), "description").split())
    if not description:
        error = "Say which identity provider will use it (for example “Entra ID”)."
        return await _render(request, me, status=422, error=error)
    if len(description) > 200:
        return await _render(
            request, me, status=422, error="Use at most 200 characters.", description=description
        )
    made = await ctx.db.write(
        lambda conn: tokens.create(
            conn,
            ctx.settings.resolved_secret_key,
            me.clinic_id,
            description,
            utcnow(),
            actor_of(request, me),
        )
    )
    return await _render(request, me, status=201, token=made.token, description=description)


@router.post("/scim/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: str) -> Response:
    me = await require_admin(request)
    try:
        await ctx_of(request).db.write(
            lambda conn: tokens.revoke(conn, token_id, utcnow(), actor_of(request, me))
        )
    except NotFound:
        raise PageError(404, "Not found", "There is no such SCIM token in your clinic.") from None
    return redirect(request, "/scim?notice=token-revoked")


@router.post("/scim/settings")
async def save_settings(request: Request) -> Response:
    me = await require_admin(request)
    form = await form_data(request)
    changes = {
        "activate_without_email": field(form, "activate_without_email") == "on",
        "clinic_role": field(form, "default_clinic_role"),
        "level": field(form, "default_level"),
        "can_manage_studies": field(form, "default_can_manage_studies") == "on",
        "has_dashboard_access": field(form, "default_has_dashboard_access") == "on",
    }
    try:
        await ctx_of(request).db.write(
            lambda conn: scim_settings.configure(
                conn, me.clinic_id, changes, utcnow(), actor_of(request, me)
            )
        )
    except ValidationFailed as exc:
        errors = {e["field"]: e["message"] for e in exc.errors or []}
        return await _render(request, me, status=422, settings_errors=errors)
    return redirect(request, "/scim?notice=settings-saved")
