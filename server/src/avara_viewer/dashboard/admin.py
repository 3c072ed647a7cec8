"""Pages about the clinic's people behind a session: the directory, profiles, editing,
revoking and reactivating. Members see the directory read-only; the rest is for owners and
admins. (Inviting is in invite_pages, the invitations and API keys pages in clinic_pages.)"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from .. import flows
from ..actor import Actor
from ..clock import utcnow
from ..errors import Conflict, ProblemError
from ..fields import CLINIC_ROLES
from ..users import service as users_service
from ..users.repository import DirectoryFilters
from ..users.schemas import EDITABLE_FIELDS, UserUpdateRequest
from . import forms
from .web import (
    DashboardRoute,
    Me,
    PageError,
    ctx_of,
    form_data,
    page,
    redirect,
    require_admin,
    require_user,
)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

PER_PAGE = 25
NOTICES = {
    "invited": "Invitation sent.",
    "bulk-invited": "Invitations sent.",
    "key-revoked": "The API key was revoked; requests made with it are refused from now on.",
    "updated": "Changes saved.",
    "revoked": "Access revoked. Their sessions have ended and a pending invitation was withdrawn.",
    "reactivated": "Access restored.",
    "resent": "A new invitation email is on its way; the previous link no longer works.",
    "invitation-revoked": "Invitation revoked; its link no longer works.",
    "mfa-reset": "Two-step verification was reset and their sessions have ended. They set it "
    "up again at their next sign-in (when the clinic requires it).",
}


def actor_of(request: Request, me: Me) -> Actor:
    return Actor(
        clinic_id=me.clinic_id,
        kind="user",
        id=me.id,
        request_id=request.state.request_id,
    )


def not_found() -> PageError:
    return PageError(404, "Not found", "There is no such user in your clinic.")


def notice_of(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


@router.get("/users")
async def directory(request: Request) -> Response:
    me = await require_user(request)
    params = request.query_params
    filters = DirectoryFilters(
        q=params.get("q", "").strip()[:200],
        level=params.get("level", "")
        if params.get("level") in ("owner", "admin", "member")
        else "",
        status=params.get("status", "")
        if params.get("status") in ("invited", "active", "revoked")
        else "",
        source=params.get("source", "") if params.get("source") in ("dashboard", "api") else "",
    )
    try:
        page_number = max(1, min(int(params.get("page", "1")), 100_000))
    except ValueError:
        page_number = 1
    rows, total = await ctx_of(request).db.read(
        lambda conn: users_service.directory_page(
            conn, me.clinic_id, filters, page=page_number, per_page=PER_PAGE
        )
    )
    pages = max(1, (total + PER_PAGE - 1) // PER_PAGE)
    query = {k: v for k, v in vars(filters).items() if v}

    def page_url(n: int) -> str:
        return "/users?" + urlencode({**query, "page": n})

    return page(
        request,
        "directory.html",
        users=rows,
        total=total,
        filters=filters,
        page_number=page_number,
        pages=pages,
        prev_url=page_url(page_number - 1) if page_number > 1 else None,
        next_url=page_url(page_number + 1) if page_number < pages else None,
        notice=notice_of(request),
    )


@router.get("/users/{user_id}")
async def user_page(request: Request, user_id: str) -> Response:
    me = await require_user(request)
    row = await ctx_of(request).db.read(
        lambda conn: users_service.user_with_inviter(conn, me.clinic_id, user_id)
    )
    if row is None:
        raise not_found()
    return page(
        request,
        "user.html",
        user=row,
        notice=notice_of(request),
        can_edit=me.is_admin and row["level"] != "owner" and row["id"] != me.id,
        error=None,
    )


def _values_of(row: Any) -> dict[str, Any]:
    """The edit form's values: the user's editable fields by their wire names."""
    return {wire: row[column] for wire, column in EDITABLE_FIELDS.items()}


async def _target(request: Request, me: Me, user_id: str) -> Any:
    row = await ctx_of(request).db.read(
        lambda conn: users_service.user_with_inviter(conn, me.clinic_id, user_id)
    )
    if row is None:
        raise not_found()
    return row


@router.get("/users/{user_id}/edit")
async def edit_page(request: Request, user_id: str) -> Response:
    me = await require_admin(request)
    row = await _target(request, me, user_id)
    return page(
        request, "edit.html", user=row, values=_values_of(row), errors={}, roles=CLINIC_ROLES
    )


@router.post("/users/{user_id}/edit")
async def edit(request: Request, user_id: str) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    row = await _target(request, me, user_id)
    form = await form_data(request)
    data = forms.wire_from_form(form, with_email=False)
    update_request, errors = forms.check(UserUpdateRequest, data)
    status = 422
    if update_request is not None:
        actor = actor_of(request, me)
        try:
            await ctx.db.write(
                lambda conn: users_service.update_user(
                    conn, ctx.settings, actor, user_id, update_request, now=utcnow()
                )
            )
        except ProblemError as exc:
            if not exc.errors:
                raise
            errors = {e["field"]: e["message"] for e in exc.errors}
            status = exc.status
        else:
            return redirect(request, f"/users/{user_id}?notice=updated")
    return page(
        request, "edit.html", status=status, user=row, values=data, errors=errors,
        roles=CLINIC_ROLES,
    )


async def _user_action(request: Request, user_id: str, action: str) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    actor = actor_of(request, me)
    operation = flows.revoke_access if action == "revoked" else flows.reactivate
    try:
        await ctx.db.write(lambda conn: operation(conn, ctx.settings, actor, user_id, now=utcnow()))
    except Conflict as exc:
        row = await _target(request, me, user_id)
        return page(
            request, "user.html", status=409, user=row, notice=None, can_edit=True, error=exc.detail
        )
    ctx.outbox_wakeup.set()
    return redirect(request, f"/users/{user_id}?notice={action}")


@router.post("/users/{user_id}/revoke")
async def revoke_user(request: Request, user_id: str) -> Response:
    return await _user_action(request, user_id, "revoked")


@router.post("/users/{user_id}/reactivate")
async def reactivate_user(request: Request, user_id: str) -> Response:
    return await _user_action(request, user_id, "reactivated")
