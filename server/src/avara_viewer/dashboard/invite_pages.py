"""Inviting from the dashboard: one person by form, or many from a CSV file (previewed,
then sent through the same invite flow as the API). For owners and admins."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from .. import flows
from ..clock import utcnow
from ..db import retry_on_integrity_error
from ..errors import Conflict
from ..fields import CLINIC_ROLES
from ..users import csv_rows
from ..users import service as users_service
from ..users.csv_rows import CsvRow
from ..users.schemas import UserInviteRequest
from ..users.service import InviteItem
from . import forms
from .admin import actor_of
from .web import (
    DashboardRoute,
    Me,
    ctx_of,
    env,
    field,
    form_data,
    page,
    redirect,
    require_admin,
)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

# The CSV preview names a row's problem by its column as a person reads it.
env.globals["column_labels"] = {
    "email": "Email",
    "firstName": "First name",
    "lastName": "Last name",
    "middleName": "Middle name",
    "suffix1": "Suffix",
    "suffix2": "Second suffix",
    "phoneNumber": "Phone number",
    "clinicRole": "Clinic role",
    "level": "Level",
    "canManageStudies": "Can manage studies",
    "hasDashboardAccess": "Dashboard access",
    "row": "Row",
}

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
            return await flows.invite(conn, ctx.settings, actor, invite_request, now=utcnow())

        try:
            row = await retry_on_integrity_error(lambda: ctx.db.write(op))
        except Conflict:
            errors = {
                "email": "Someone in your clinic already has this address. Find them in the "
                "directory (if their access was revoked, reactivate them there)."
            }
        else:
            ctx.outbox_wakeup.set()
            return redirect(request, f"/users/{row['id']}?notice=invited")
    return page(request, "invite.html", status=422, values=data, errors=errors, roles=CLINIC_ROLES)


@router.get("/users/bulk")
async def bulk_page(request: Request) -> Response:
    await require_admin(request)
    return page(request, "bulk.html", rows=None, error=None, csv_text="", columns=csv_rows.COLUMNS)


TEMPLATE_ROWS = (
    ("dr.lee@clinic.example", "Ana", "Lee", "Radiologist", "member", "yes", "yes", "", "MD", "",
     "5551234567"),
)


@router.get("/users/bulk/template.csv")
async def bulk_template(request: Request) -> Response:
    await require_admin(request)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(csv_rows.COLUMNS)
    writer.writerows(TEMPLATE_ROWS)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="people-to-invite.csv"'},
    )


CSV_MAX_BYTES = 512 * 1024
CSV_MAX_ROWS = 500


async def _preview(request: Request, me: Me, text: str) -> tuple[list[CsvRow], str | None]:
    try:
        rows = csv_rows.read_people(text, exact_header=False, max_rows=CSV_MAX_ROWS)
    except csv_rows.CsvFileError as exc:
        return [], str(exc)
    emails = [str(r.data.get("email", "")) for r in rows]
    existing = await ctx_of(request).db.read(
        lambda conn: users_service.existing_emails(conn, me.clinic_id, emails)
    )
    forms.mark_taken_and_repeated(rows, existing)
    return rows, None


@router.post("/users/bulk")
async def bulk(request: Request) -> Response:
    me = await require_admin(request)
    ctx = ctx_of(request)
    form = await form_data(request)
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(CSV_MAX_BYTES + 1)
        if len(raw) > CSV_MAX_BYTES:
            return page(
                request,
                "bulk.html",
                status=422,
                rows=None,
                csv_text="",
                columns=csv_rows.COLUMNS,
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
                columns=csv_rows.COLUMNS,
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
            columns=csv_rows.COLUMNS,
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
            columns=csv_rows.COLUMNS,
            error=None,
        )

    actor = actor_of(request, me)

    now = utcnow()
    items = [InviteItem(actor, row.request, now) for row in ready]
    outcomes = await retry_on_integrity_error(
        lambda: ctx.db.write(lambda conn: flows.invite_many(conn, ctx.settings, items))
    )
    refused = [
        item.request.email
        for item, outcome in zip(items, outcomes, strict=True)
        if isinstance(outcome, Conflict)
    ]
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
            columns=csv_rows.COLUMNS,
            error=f"{len(ready) - len(refused)} invitation(s) sent; {len(refused)} refused.",
        )
    return redirect(request, f"/users?notice=bulk-invited&count={len(ready)}")
