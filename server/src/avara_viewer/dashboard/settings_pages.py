"""The clinic's sign-in, for its admins and owners: single sign-on and MFA policy settings,
the clinic's active sessions (any of which an admin can end), and an owner resetting another
person's two-step verification."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from .. import events
from ..accounts import mfa, policy, sessions, sso
from ..accounts import service as accounts
from ..accounts.oidc import OidcError
from ..clock import utcnow
from ..errors import ProblemError, ValidationFailed
from ..users import service as users_service
from .admin import actor_of
from .signin import redirect_uri
from .web import (
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

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

NOTICES = {
    "policy-saved": "Sign-in rules saved. The idle timeout applies at once; two-step "
    "verification from each person's next sign-in.",
    "sso-saved": "Single sign-on saved.",
    "ended": "The session has ended.",
}


async def _settings_page(
    request: Request,
    me: Me,
    *,
    status: int = 200,
    policy_errors: dict[str, str] | None = None,
    sso_errors: dict[str, str] | None = None,
    sso_error: str | None = None,
    sso_form: dict[str, Any] | None = None,
) -> Response:
    ctx = ctx_of(request)
    secret = ctx.settings.resolved_secret_key

    async def load(conn: AsyncConnection) -> tuple[policy.Policy, sso.SsoSettings | None]:
        return await policy.of_clinic(conn, me.clinic_id), await sso.settings_of(
            conn, secret, me.clinic_id
        )

    clinic_policy, connection = await ctx.db.read(load)
    shown = sso_form or {
        "configured": connection is not None,
        "issuer": connection.issuer if connection else "",
        "client_id": connection.client_id if connection else "",
        "domains": ", ".join(connection.domains) if connection else "",
        "required": connection.required if connection else False,
        "join_with_defaults": connection.join_with_defaults if connection else False,
    }
    idle = clinic_policy.idle_timeout
    return page(
        request,
        "sign_in_settings.html",
        status=status,
        policy=clinic_policy,
        idle_minutes=str(int(idle.total_seconds() // 60)) if idle else "",
        default_idle_minutes=int(ctx.settings.session_idle_timeout.total_seconds() // 60),
        sso=shown,
        redirect_uri=redirect_uri(request),
        policy_errors=policy_errors or {},
        sso_errors=sso_errors or {},
        sso_error=sso_error,
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )


@router.get("/settings/sign-in")
async def settings_page(request: Request) -> Response:
    me = await require_admin(request)
    return await _settings_page(request, me)


@router.post("/settings/sign-in/policy")
async def save_policy(request: Request) -> Response:
    me = await require_admin(request)
    form = await form_data(request)
    try:
        chosen = policy.check(field(form, "mfa_required_for"), field(form, "idle_timeout_minutes"))
    except ValidationFailed as exc:
        errors = {e["field"]: e["message"] for e in exc.errors or []}
        return await _settings_page(request, me, status=422, policy_errors=errors)
    await ctx_of(request).db.write(
        lambda conn: policy.update_policy(conn, actor_of(request, me), chosen, utcnow())
    )
    return redirect(request, "/settings/sign-in?notice=policy-saved")


@router.post("/settings/sign-in/sso")
async def save_sso(request: Request) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    form = await form_data(request)
    domains = tuple(d for d in re.split(r"[\s,;]+", field(form, "domains")) if d)
    secret_given = form.get("client_secret")
    wanted = sso.SsoRequest(
        issuer=field(form, "issuer"),
        client_id=field(form, "client_id"),
        client_secret=secret_given if isinstance(secret_given, str) and secret_given else None,
        domains=domains,
        required=form.get("required") is not None,
        join_with_defaults=form.get("join_with_defaults") is not None,
    )
    shown = {
        "configured": True,
        "issuer": wanted.issuer,
        "client_id": wanted.client_id,
        "domains": field(form, "domains"),
        "required": wanted.required,
        "join_with_defaults": wanted.join_with_defaults,
    }
    try:
        await sso.configure_checked(
            ctx.db,
            ctx.relying_party,
            ctx.settings.resolved_secret_key,
            actor_of(request, me),
            wanted,
            utcnow(),
        )
    except OidcError as exc:
        return await _settings_page(request, me, status=422, sso_error=exc.message, sso_form=shown)
    except ValidationFailed as exc:
        errors = {e["field"]: e["message"] for e in exc.errors or []}
        return await _settings_page(request, me, status=422, sso_errors=errors, sso_form=shown)
    except ProblemError as exc:
        return await _settings_page(
            request, me, status=exc.status, sso_error=exc.detail, sso_form=shown
        )
    return redirect(request, "/settings/sign-in?notice=sso-saved")


# --- sessions -----------------------------------------------------------------------------


@router.get("/sessions")
async def clinic_sessions(request: Request) -> Response:
    me = await require_admin(request)

    async def load(conn: AsyncConnection) -> tuple[list[sessions.SessionInfo], dict[str, str]]:
        found = await sessions.of_clinic(conn, me.clinic_id, utcnow())
        names = await users_service.names(conn, me.clinic_id, {s.user_id for s in found})
        return found, names

    found, names = await ctx_of(request).db.read(load)
    return page(
        request,
        "sessions.html",
        sessions=found,
        names=names,
        current_session=me.session.public_id,
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )


@router.post("/sessions/{public_id}/end")
async def end_session(request: Request, public_id: str) -> Response:
    me = await require_admin(request)

    async def work(conn: AsyncConnection) -> bool:
        ended = await sessions.end_in_clinic(conn, me.clinic_id, public_id[:40])
        if ended is None:
            return False
        await events.emit(
            conn,
            events.DomainEvent(
                events.SESSIONS_ENDED,
                actor_of(request, me),
                "user",
                ended.user_id,
                {"session": ended.public_id, "sessionsEnded": 1},
                utcnow(),
            ),
        )
        return True

    if not await ctx_of(request).db.write(work):
        raise PageError(404, "Not found", "There is no such session in your clinic any more.")
    return redirect(request, "/sessions?notice=ended")


# --- an owner resets another person's MFA -------------------------------------------------


@router.post("/users/{user_id}/mfa/reset")
async def reset_mfa(request: Request, user_id: str) -> Response:
    me = await require_admin(request)
    if not me.is_owner:
        raise PageError(
            403,
            "Only owners can do this",
            "Resetting someone's two-step verification lets them sign in with a password "
            "alone until they set it up again, so only the clinic's owners can do it.",
        )
    if user_id == me.id:
        raise PageError(
            403,
            "Not for your own account",
            "Another owner of your clinic can reset your two-step verification.",
        )

    async def work(conn: AsyncConnection) -> None:
        target = await users_service.get_user(conn, me.clinic_id, user_id)
        had = await mfa.remove(conn, target["id"])
        ended = await accounts.end_sessions(conn, target["id"])
        await events.emit(
            conn,
            events.DomainEvent(
                events.MFA_RESET,
                actor_of(request, me),
                "user",
                target["id"],
                {"hadMfa": had, "sessionsEnded": ended},
                utcnow(),
            ),
        )

    await ctx_of(request).db.write(work)
    return redirect(request, f"/users/{user_id}?notice=mfa-reset")
