"""Pages about the clinic's people behind a session: the directory, profiles, editing,
revoking and reactivating. Members see the directory read-only; the rest is for owners and
admins. (Inviting is in invite_pages, the invitations and API keys pages in clinic_pages.)"""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from .. import flows
from ..actor import Actor
from ..audit import service as audit
from ..clock import utcnow
from ..errors import Conflict, ProblemError, TooManyRequests
from ..fields import CLINIC_ROLES
from ..invitations import service as invitations_service
from ..users import service as users_service
from ..users.repository import DIRECTORY_SORTS, DirectoryFilters
from ..users.schemas import EDITABLE_FIELDS, UserUpdateRequest
from . import audit_text, confirm, forms
from .audit_pages import audit_names
from .web import (
    DashboardRoute,
    Me,
    PageError,
    Redirect,
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
    "reactivated": "Access restored: they can log in again.",
    "resent": "A new invitation email is on its way; the previous link no longer works.",
    "invitation-revoked": "Invitation revoked; its link no longer works.",
    "mfa-reset": "Two-step verification was reset and their sessions have ended. They set it "
    "up again at their next sign-in (when the clinic requires it).",
    "none-selected": "Nobody was selected: tick the people first, then choose the action.",
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
    params = request.query_params
    count = params.get("count", "")
    if params.get("notice") == "bulk-invited" and count.isdigit() and len(count) < 6:
        n = int(count)
        return f"{n} invitation{'s' if n != 1 else ''} sent. Each person gets an email now."
    return NOTICES.get(params.get("notice", ""))


def _directory_filters(request: Request) -> DirectoryFilters:
    params = request.query_params
    sort = params.get("sort", "")
    return DirectoryFilters(
        q=params.get("q", "").strip()[:200],
        level=params.get("level", "")
        if params.get("level") in ("owner", "admin", "member")
        else "",
        status=params.get("status", "")
        if params.get("status") in ("invited", "active", "revoked")
        else "",
        source=params.get("source", "") if params.get("source") in ("dashboard", "api") else "",
        sort=sort if sort.lstrip("-") in DIRECTORY_SORTS else "-created",
    )


def _directory_query(filters: DirectoryFilters) -> dict[str, str]:
    """The filters as URL parameters (the default sort left out)."""
    query = {k: v for k, v in vars(filters).items() if v}
    if query.get("sort") == "-created":
        del query["sort"]
    return query


@router.get("/users")
async def directory(request: Request) -> Response:
    me = await require_user(request)
    return await _directory_response(request, me, notice_of(request))


async def _directory_response(request: Request, me: Me, notice: str | None) -> Response:
    filters = _directory_filters(request)
    try:
        page_number = max(1, min(int(request.query_params.get("page", "1")), 100_000))
    except ValueError:
        page_number = 1
    rows, total = await ctx_of(request).db.read(
        lambda conn: users_service.directory_page(
            conn, me.clinic_id, filters, page=page_number, per_page=PER_PAGE
        )
    )
    pages = max(1, (total + PER_PAGE - 1) // PER_PAGE)
    query = _directory_query(filters)

    def page_url(n: int) -> str:
        return "/users?" + urlencode({**query, "page": n})

    def sort_url(key: str) -> str:
        # A column's first click sorts it A→Z (dates newest first); the next click reverses.
        first = f"-{key}" if key in ("created", "login") else key
        current = filters.sort
        chosen = ("-" + key if current == key else key) if current.lstrip("-") == key else first
        return "/users?" + urlencode({**{k: v for k, v in query.items() if k != "sort"},
                                      "sort": chosen})

    return page(
        request,
        "directory.html",
        users=rows,
        total=total,
        filters=filters,
        filtered=any(v for k, v in query.items() if k != "sort"),
        page_number=page_number,
        pages=pages,
        first_shown=(page_number - 1) * PER_PAGE + 1,
        last_shown=min(total, page_number * PER_PAGE),
        prev_url=page_url(page_number - 1) if page_number > 1 else None,
        next_url=page_url(page_number + 1) if page_number < pages else None,
        sort_url=sort_url,
        csv_url="/users.csv" + ("?" + urlencode(query) if query else ""),
        notice=notice,
    )


DIRECTORY_CSV_COLUMNS = (
    ("firstName", "first_name"),
    ("middleName", "middle_name"),
    ("lastName", "last_name"),
    ("suffix1", "suffix1"),
    ("suffix2", "suffix2"),
    ("email", "email"),
    ("phoneNumber", "phone_number"),
    ("clinicRole", "clinic_role"),
    ("level", "level"),
    ("status", "status"),
    ("canManageStudies", "can_manage_studies"),
    ("hasDashboardAccess", "has_dashboard_access"),
    ("invitedSource", "invited_source"),
    ("createdAt", "created_at"),
    ("lastLoginAt", "last_login_at"),
)
DIRECTORY_CSV_MAX = 100_000


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    # A leading =, +, - or @ would run as a formula when the file is opened in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/users.csv")
async def directory_csv(request: Request) -> Response:
    me = await require_admin(request)
    filters = _directory_filters(request)
    rows, _ = await ctx_of(request).db.read(
        lambda conn: users_service.directory_page(
            conn, me.clinic_id, filters, page=1, per_page=DIRECTORY_CSV_MAX
        )
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([wire for wire, _ in DIRECTORY_CSV_COLUMNS])
    for row in rows:
        writer.writerow([_csv_cell(row[column]) for _, column in DIRECTORY_CSV_COLUMNS])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="directory.csv"',
            "Cache-Control": "no-store",
        },
    )


# --- bulk actions on the directory ---------------------------------------------------------

BULK_MAX = 100  # more than a directory page (25): a page plus a few more is plenty


async def _selected(request: Request, me: Me, ids: list[str]) -> list[Any]:
    """The chosen people of the clinic, in the order chosen, each once (unknown ids dropped)."""
    unique = list(dict.fromkeys(i for i in ids if i))[:BULK_MAX]

    async def read(conn: Any) -> list[Any]:
        rows = [await users_service.user_with_inviter(conn, me.clinic_id, i) for i in unique]
        return [row for row in rows if row is not None]

    rows: list[Any] = await ctx_of(request).db.read(read)
    return rows


def _chosen_ids(params: Any) -> list[str]:
    """The ticked people; "select all on this page" (which works without JavaScript too)
    brings in every person listed on the page."""
    ids = list(params.getlist("user"))
    if params.get("page_all"):
        ids += params.getlist("page_user")
    return [i[:64] for i in ids]


def _refusal(row: Any, me: Me, action: str) -> str | None:
    """Why the flow will refuse this person, in the directory's words (None: it will not)."""
    if str(row["id"]) == me.id:
        return "yourself"
    if row["level"] == "owner":
        return "the clinic's owner"
    if action == "revoke" and row["status"] == "revoked":
        return "already revoked"
    if action == "resend" and row["status"] != "invited":
        return "not waiting on an invitation"
    return None


@router.get("/users/selected")
async def bulk_confirm(request: Request) -> Response:
    me = await require_admin(request)
    action = request.query_params.get("action", "")
    rows = await _selected(request, me, _chosen_ids(request.query_params))
    if action not in confirm.BULK_ACTIONS or not rows:
        raise Redirect("/users?notice=none-selected")
    refused = {str(row["id"]): _refusal(row, me, action) for row in rows}
    return page(
        request,
        "confirm.html",
        c=confirm.bulk(action, [r for r in rows if not refused[str(r["id"])]], rows),
        bulk_people=rows,
        refused=refused,
    )


@router.post("/users/selected")
async def bulk_apply(request: Request) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    actor = actor_of(request, me)
    form = await form_data(request)
    action = str(form.get("action", ""))
    if action not in confirm.BULK_ACTIONS:
        raise PageError(400, "Choose an action", "Choose Revoke access or Resend invitation.")
    rows = await _selected(request, me, _chosen_ids(form))
    done: list[Any] = []
    refused: list[tuple[Any, str]] = []
    for row in rows:
        user_id = str(row["id"])

        async def op(conn: Any, user_id: str = user_id) -> Any:
            if action == "revoke":
                return await flows.revoke_access(conn, ctx.settings, actor, user_id, now=utcnow())
            invitation_id = await invitations_service.latest_id_for_user(conn, user_id)
            return await flows.resend_invitation(
                conn, ctx.settings, actor, invitation_id, now=utcnow()
            )

        # One transaction per person: a refusal leaves the others' changes in place.
        try:
            await ctx.db.write(op)
        except TooManyRequests:
            refused.append((row, "sent only moments ago; try again in a few minutes"))
        except ProblemError as exc:
            refused.append((row, _refusal(row, me, action) or exc.detail))
        else:
            done.append(row)
    if done:
        ctx.outbox_wakeup.set()
    return await _directory_response(
        request, me, notice=confirm.bulk_outcome(action, len(done), refused)
    )


@router.get("/users/{user_id}")
async def user_page(request: Request, user_id: str) -> Response:
    me = await require_user(request)
    row = await ctx_of(request).db.read(
        lambda conn: users_service.user_with_inviter(conn, me.clinic_id, user_id)
    )
    if row is None:
        raise not_found()
    invitation, history = None, []
    if me.is_admin:
        invitation, history = await _invitation_and_history(request, me, row)
    notice = notice_of(request)
    if request.query_params.get("notice") == "reactivated" and row["status"] == "invited":
        notice = (
            "Access restored. They had not accepted their invitation yet, so they were sent a "
            "new invitation email; the old link no longer works."
        )
    return page(
        request,
        "user.html",
        user=row,
        notice=notice,
        can_edit=me.is_admin and row["level"] != "owner" and row["id"] != me.id,
        error=None,
        invitation=invitation,
        history=history,
    )


HISTORY_SHOWN = 20


async def _invitation_and_history(request: Request, me: Me, row: Any) -> tuple[Any, list[Any]]:
    """The person's latest invitation and the newest audit entries about them or it."""
    ctx = ctx_of(request)
    user_id = str(row["id"])

    async def read(conn: Any) -> tuple[Any, list[Any]]:
        found = await invitations_service.list_invitations(
            conn,
            ctx.settings,
            me.clinic_id,
            invitations_service.parse_filters(user_id=user_id),
            now=utcnow(),
            limit=1,
        )
        invitation = found.invitations[0] if found.invitations else None
        targets = [user_id] + ([str(invitation["id"])] if invitation else [])
        entries: list[dict[str, Any]] = []
        for target in targets:
            entries += await audit.filtered_entries(
                conn,
                me.clinic_id,
                audit.AuditFilters(target_id=target),
                before_seq=None,
                limit=HISTORY_SHOWN,
            )
        entries = sorted(entries, key=lambda e: -int(e["seq"]))[:HISTORY_SHOWN]
        names = await audit_names(conn, me.clinic_id, entries)
        return invitation, [audit_text.line_of(e, names) for e in entries]

    result: tuple[Any, list[Any]] = await ctx.db.read(read)
    return result


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
        invitation, history = await _invitation_and_history(request, me, row)
        return page(
            request,
            "user.html",
            status=409,
            user=row,
            notice=None,
            can_edit=row["level"] != "owner" and row["id"] != me.id,
            error=exc.detail,
            invitation=invitation,
            history=history,
        )
    ctx.outbox_wakeup.set()
    return redirect(request, f"/users/{user_id}?notice={action}")


@router.get("/users/{user_id}/revoke")
async def revoke_user_confirm(request: Request, user_id: str) -> Response:
    me = await require_admin(request)
    row = await _target(request, me, user_id)
    return page(request, "confirm.html", c=confirm.revoke_access(row))


@router.post("/users/{user_id}/revoke")
async def revoke_user(request: Request, user_id: str) -> Response:
    return await _user_action(request, user_id, "revoked")


@router.post("/users/{user_id}/reactivate")
async def reactivate_user(request: Request, user_id: str) -> Response:
    return await _user_action(request, user_id, "reactivated")
