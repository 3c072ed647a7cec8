"""Pages behind a session: the directory, profiles, inviting (one or by CSV), and the
clinic's API keys. Members see the directory read-only; the rest is for owners and admins."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from ..actor import Actor
from ..clock import utcnow
from ..errors import Conflict, ProblemError
from ..fields import CLINIC_ROLES
from ..invitations import service as invitations_service
from ..users import service as users_service
from ..users.schemas import EDITABLE_FIELDS, UserInviteRequest, UserUpdateRequest
from . import forms, service
from .web import (
    DashboardRoute,
    Me,
    PageError,
    Redirect,
    ctx_of,
    field,
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


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


@router.get("/users")
async def directory(request: Request) -> Response:
    me = await require_user(request)
    params = request.query_params
    filters = service.DirectoryFilters(
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
        lambda conn: service.directory_page(
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
        notice=_notice(request),
    )


@router.get("/profile")
async def profile(request: Request) -> Response:
    me = await require_user(request)
    return redirect(request, f"/users/{me.id}")


@router.get("/users/new")
async def invite_page(request: Request) -> Response:
    await require_admin(request)
    return page(
        request, "invite.html", values={"hasDashboardAccess": True}, errors={}, roles=CLINIC_ROLES
    )


@router.post("/users/new")
async def invite(request: Request) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    form = await form_data(request)
    data = forms.wire_from_form(form, with_email=True)
    invite_request, errors = forms.check(UserInviteRequest, data)
    if invite_request is not None:
        actor = actor_of(request, me)

        async def op(conn: Any) -> dict[str, Any]:
            return await users_service.invite(
                conn, ctx.settings, actor, invite_request, now=utcnow()
            )

        try:
            try:
                row = await ctx.db.write(op)
            except IntegrityError:  # a concurrent invite of the same address won the race
                row = await ctx.db.write(op)
        except Conflict as exc:
            errors = {"email": exc.detail}
        else:
            ctx.outbox_wakeup.set()
            return redirect(request, f"/users/{row['id']}?notice=invited")
    return page(request, "invite.html", status=422, values=data, errors=errors, roles=CLINIC_ROLES)


@router.get("/users/bulk")
async def bulk_page(request: Request) -> Response:
    await require_admin(request)
    return page(request, "bulk.html", rows=None, error=None, csv_text="", columns=forms.CSV_COLUMNS)


async def _preview(request: Request, me: Me, text: str) -> tuple[list[forms.CsvRow], str | None]:
    rows, error = forms.parse_csv(text)
    if error is None:
        from ..fields import email_key

        lowered = [email_key(str(r.data.get("email", ""))) for r in rows]
        existing = await ctx_of(request).db.read(
            lambda conn: service.emails_in_clinic(conn, me.clinic_id, lowered)
        )
        forms.validate_rows(UserInviteRequest, rows, existing)
    return rows, error


@router.post("/users/bulk")
async def bulk(request: Request) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    form = await form_data(request)
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(512 * 1024 + 1)
        if len(raw) > 512 * 1024:
            return page(
                request,
                "bulk.html",
                status=422,
                rows=None,
                csv_text="",
                columns=forms.CSV_COLUMNS,
                error="The file is larger than 512 KB; split it into smaller files.",
            )
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return page(
                request,
                "bulk.html",
                status=422,
                rows=None,
                csv_text="",
                columns=forms.CSV_COLUMNS,
                error="The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again.",
            )
    else:
        value = form.get("csv_text")
        text = value if isinstance(value, str) else ""
    rows, error = await _preview(request, me, text)
    if error is not None:
        return page(
            request,
            "bulk.html",
            status=422,
            rows=None,
            csv_text="",
            columns=forms.CSV_COLUMNS,
            error=error,
        )
    ready = [r for r in rows if r.request is not None]
    if field(form, "action") != "send" or not ready:
        return page(
            request,
            "bulk.html",
            rows=rows,
            ready=len(ready),
            csv_text=text,
            columns=forms.CSV_COLUMNS,
            error=None,
        )

    actor = actor_of(request, me)

    async def op(conn: Any) -> list[str]:
        refused: list[str] = []
        for row in ready:
            try:
                async with conn.begin_nested():
                    await users_service.invite(conn, ctx.settings, actor, row.request, now=utcnow())
            except Conflict:
                refused.append(row.request.email)
        return refused

    refused = await ctx.db.write(op)
    ctx.outbox_wakeup.set()
    if refused:
        for row in ready:
            if row.request.email in refused:
                row.errors["email"] = "was invited by someone else meanwhile"
        return page(
            request,
            "bulk.html",
            rows=rows,
            ready=0,
            csv_text="",
            columns=forms.CSV_COLUMNS,
            error=f"{len(ready) - len(refused)} invitation(s) sent; {len(refused)} refused.",
        )
    return redirect(request, "/users?notice=bulk-invited")


@router.get("/users/{user_id}")
async def user_page(request: Request, user_id: str) -> Response:
    me = await require_user(request)
    row = await ctx_of(request).db.read(
        lambda conn: service.user_with_inviter(conn, me.clinic_id, user_id)
    )
    if row is None:
        raise not_found()
    return page(
        request,
        "user.html",
        user=row,
        notice=_notice(request),
        can_edit=me.is_admin and row["level"] != "owner" and row["id"] != me.id,
        error=None,
    )


def _values_of(row: Any) -> dict[str, Any]:
    """The edit form's values: the user's editable fields by their wire names."""
    return {wire: row[column] for wire, column in EDITABLE_FIELDS.items()}


async def _target(request: Request, me: Me, user_id: str) -> Any:
    row = await ctx_of(request).db.read(
        lambda conn: service.user_with_inviter(conn, me.clinic_id, user_id)
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
        else:
            return redirect(request, f"/users/{user_id}?notice=updated")
    return page(
        request, "edit.html", status=422, user=row, values=data, errors=errors, roles=CLINIC_ROLES
    )


async def _user_action(request: Request, user_id: str, action: str) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    actor = actor_of(request, me)
    operation = users_service.revoke_access if action == "revoked" else users_service.reactivate
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


# --- invitations --------------------------------------------------------------------------

INVITATION_STATUSES = ("sent", "accepted", "rejected", "revoked")


@router.get("/invitations")
async def invitations_page(request: Request) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    params = request.query_params
    status = params.get("status", "")
    expired = params.get("expired", "")
    filters = invitations_service.parse_filters(
        status=status if status in INVITATION_STATUSES else None,
        expired=expired if expired in ("expired", "not-expired") else None,
    )
    cursor = params.get("cursor") or None
    now = utcnow()
    try:
        result = await ctx.db.read(
            lambda conn: invitations_service.list_invitations(
                conn, ctx.settings, me.clinic_id, filters, now=now, cursor=cursor, limit=PER_PAGE
            )
        )
    except ProblemError:
        raise Redirect("/invitations") from None
    next_url = None
    if result.has_more and result.cursor:
        next_url = "/invitations?" + urlencode(
            {
                k: v
                for k, v in {"status": status, "expired": expired, "cursor": result.cursor}.items()
                if v
            }
        )
    return page(
        request,
        "invitations.html",
        invitations=result.invitations,
        status_filter=status,
        expired=expired,
        next_url=next_url,
        first_page=cursor is None,
        notice=_notice(request),
        error=None,
    )


async def _invitation_action(request: Request, invitation_id: str, action: str) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    actor = actor_of(request, me)

    async def op(conn: Any) -> Any:
        if action == "resent":
            return await invitations_service.resend_invitation(
                conn, ctx.settings, actor, invitation_id, now=utcnow()
            )
        return await invitations_service.revoke_invitation(
            conn, ctx.settings, actor, invitation_id=invitation_id, now=utcnow()
        )

    try:
        await ctx.db.write(op)
    except ProblemError as exc:
        if exc.status not in (409, 429):
            raise
        raise PageError(exc.status, exc.title, exc.detail) from None
    ctx.outbox_wakeup.set()
    notice = "resent" if action == "resent" else "invitation-revoked"
    return redirect(request, f"/invitations?notice={notice}")


@router.post("/invitations/{invitation_id}/resend")
async def resend_invitation(request: Request, invitation_id: str) -> Response:
    return await _invitation_action(request, invitation_id, "resent")


@router.post("/invitations/{invitation_id}/revoke")
async def revoke_invitation(request: Request, invitation_id: str) -> Response:
    return await _invitation_action(request, invitation_id, "revoked")


# --- API keys -----------------------------------------------------------------------------


@router.get("/api-keys")
async def api_keys_page(request: Request) -> Response:
    me = await require_admin(request)
    keys = await ctx_of(request).db.read(lambda conn: service.list_api_keys(conn, me.clinic_id))
    return page(
        request, "api_keys.html", keys=keys, secret=None, error=None, notice=_notice(request)
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
            lambda conn: service.create_api_key(
                conn, ctx.settings.resolved_secret_key, actor_of(request, me), description, utcnow()
            )
        )
        secret = key.secret
    keys = await ctx.db.read(lambda conn: service.list_api_keys(conn, me.clinic_id))
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


@router.post("/api-keys/{key_id}/revoke")
async def revoke_api_key(request: Request, key_id: str) -> Response:
    me = await require_admin(request)
    done = await ctx_of(request).db.write(
        lambda conn: service.revoke_api_key(conn, actor_of(request, me), key_id, utcnow())
    )
    if not done:
        raise PageError(404, "Not found", "There is no such active API key in your clinic.")
    return redirect(request, "/api-keys?notice=key-revoked")
