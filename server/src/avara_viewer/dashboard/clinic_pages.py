"""The clinic's invitations (resend, revoke) and API keys (create, revoke) behind a session,
for owners and admins."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from .. import flows
from ..clinics import service as clinics
from ..clock import utcnow
from ..errors import ProblemError, TooManyRequests
from ..invitations import service as invitations_service
from . import confirm
from .admin import PER_PAGE, actor_of, notice_of
from .web import (
    DashboardRoute,
    PageError,
    Redirect,
    ctx_of,
    field,
    form_data,
    page,
    redirect,
    require_admin,
)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

# --- invitations --------------------------------------------------------------------------

INVITATION_STATUSES = ("sent", "accepted", "rejected", "revoked")


@router.get("/invitations")
async def invitations_page(request: Request) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    params = request.query_params
    status = params.get("status", "")
    expired = params.get("expired", "")
    q = params.get("q", "").strip()[:200]
    filters = replace(
        invitations_service.parse_filters(
            status=status if status in INVITATION_STATUSES else None,
            expired=expired if expired in ("expired", "not-expired") else None,
        ),
        q=q,
    )
    cursor = params.get("cursor") or None
    shown_before = params.get("shown", "")
    offset = int(shown_before) if cursor and shown_before.isdigit() and len(shown_before) < 7 else 0
    now = utcnow()

    async def read(conn: Any) -> Any:
        result = await invitations_service.list_invitations(
            conn, ctx.settings, me.clinic_id, filters, now=now, cursor=cursor, limit=PER_PAGE
        )
        total = await invitations_service.count_invitations(conn, me.clinic_id, filters, now=now)
        return result, total

    try:
        result, total = await ctx.db.read(read)
    except ProblemError:
        raise Redirect("/invitations") from None
    query = {k: v for k, v in {"q": q, "status": status, "expired": expired}.items() if v}
    next_url = None
    if result.has_more and result.cursor:
        next_url = "/invitations?" + urlencode(
            {**query, "cursor": result.cursor, "shown": offset + len(result.invitations)}
        )
    return page(
        request,
        "invitations.html",
        invitations=result.invitations,
        status_filter=status,
        expired=expired,
        q=q,
        filtered=bool(query),
        total=total,
        first_shown=offset + 1,
        last_shown=offset + len(result.invitations),
        next_url=next_url,
        first_url=("/invitations?" + urlencode(query)) if cursor else None,
        notice=notice_of(request),
        error=_problem_of(request),
    )


def _problem_of(request: Request) -> str | None:
    params = request.query_params
    if params.get("problem") != "too-soon":
        return None
    wait = params.get("wait", "")
    minutes = (int(wait) + 59) // 60 if wait.isdigit() and len(wait) < 7 else 1
    return (
        "That invitation was sent only moments ago, so it was not sent again. Give the email "
        "a few minutes to arrive (ask the person to check their spam folder); you can resend "
        f"it in about {minutes} minute{'s' if minutes != 1 else ''}."
    )


async def _invitation_action(request: Request, invitation_id: str, action: str) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    actor = actor_of(request, me)

    async def op(conn: Any) -> Any:
        if action == "resent":
            return await flows.resend_invitation(
                conn, ctx.settings, actor, invitation_id, now=utcnow()
            )
        return await flows.revoke_invitation(
            conn, ctx.settings, actor, invitation_id=invitation_id, now=utcnow()
        )

    try:
        await ctx.db.write(op)
    except TooManyRequests as exc:
        # Not a dead end: back to the list, which says when resending will work.
        wait = exc.headers.get("Retry-After", "60")
        raise Redirect(f"/invitations?problem=too-soon&wait={wait}") from None
    except ProblemError as exc:
        if exc.status != 409:
            raise
        raise PageError(exc.status, exc.title, exc.detail) from None
    ctx.outbox_wakeup.set()
    notice = "resent" if action == "resent" else "invitation-revoked"
    return redirect(request, f"/invitations?notice={notice}")


@router.post("/invitations/{invitation_id}/resend")
async def resend_invitation(request: Request, invitation_id: str) -> Response:
    return await _invitation_action(request, invitation_id, "resent")


@router.get("/invitations/{invitation_id}/revoke")
async def revoke_invitation_confirm(request: Request, invitation_id: str) -> Response:
    me = await require_admin(request)
    invitation = await ctx_of(request).db.read(
        lambda conn: invitations_service.get_invitation(conn, me.clinic_id, invitation_id)
    )
    if invitation["status"] != "sent":
        raise Redirect("/invitations")
    return page(request, "confirm.html", c=confirm.revoke_invitation(invitation))


@router.post("/invitations/{invitation_id}/revoke")
async def revoke_invitation(request: Request, invitation_id: str) -> Response:
    return await _invitation_action(request, invitation_id, "revoked")


# --- API keys -----------------------------------------------------------------------------


@router.get("/api-keys")
async def api_keys_page(request: Request) -> Response:
    me = await require_admin(request)
    keys = await ctx_of(request).db.read(lambda conn: clinics.list_api_keys(conn, me.clinic_id))
    return page(
        request, "api_keys.html", keys=keys, secret=None, error=None, notice=notice_of(request)
    )


@router.post("/api-keys")
async def create_api_key(request: Request) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    form = await form_data(request)
    description = " ".join(field(form, "description").split())
    error = None
    if not description:
        error = "Describe what the key is for (for example “PACS integration”)."
    elif len(description) > 200:
        error = "Use at most 200 characters."
    secret = None
    if error is None:
        key = await ctx.db.write(
            lambda conn: clinics.create_api_key_by(
                conn, ctx.settings.resolved_secret_key, actor_of(request, me), description, utcnow()
            )
        )
        secret = key.secret
    keys = await ctx.db.read(lambda conn: clinics.list_api_keys(conn, me.clinic_id))
    return page(
        request,
        "api_keys.html",
        status=201 if secret else 422,
        keys=keys,
        secret=secret,
        error=error,
        notice=None,
        description=description,
    )


@router.get("/api-keys/{key_id}/revoke")
async def revoke_api_key_confirm(request: Request, key_id: str) -> Response:
    me = await require_admin(request)
    keys = await ctx_of(request).db.read(lambda conn: clinics.list_api_keys(conn, me.clinic_id))
    key = next((k for k in keys if k["id"] == key_id and k["revoked_at"] is None), None)
    if key is None:
        raise PageError(404, "Not found", "There is no such active API key in your clinic.")
    return page(request, "confirm.html", c=confirm.revoke_api_key(key))


@router.post("/api-keys/{key_id}/revoke")
async def revoke_api_key(request: Request, key_id: str) -> Response:
    me = await require_admin(request)
    done = await ctx_of(request).db.write(
        lambda conn: clinics.revoke_api_key(conn, actor_of(request, me), key_id, utcnow())
    )
    if not done:
        raise PageError(404, "Not found", "There is no such active API key in your clinic.")
    return redirect(request, "/api-keys?notice=key-revoked")
