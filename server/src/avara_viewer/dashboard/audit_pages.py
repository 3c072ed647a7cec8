"""The audit trail for owners and admins: entries in words, filters by person, action and
date, pages, and a CSV download of every field."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..audit import service as audit
from ..clinics import service as clinics
from ..errors import NotFound
from ..invitations import service as invitations
from ..users import service as users
from ..users.repository import DirectoryFilters
from . import audit_text
from .web import DashboardRoute, ctx_of, page, require_admin

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

PER_PAGE = 50
CSV_MAX_ROWS = 100_000
PEOPLE_LISTED = 1000


def _day(value: str) -> date | None:
    """A YYYY-MM-DD filter, or None (ignored) for anything else: digits other than ASCII
    ones (², ٣) included."""
    if not (value.isascii() and len(value) == 10):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _seq(value: str) -> int | None:
    """The `before` position: ASCII digits (not ², which isdigit() accepts), within the
    64-bit column; anything else starts from the newest entry."""
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        return None
    return int(value)


def _filters(request: Request) -> tuple[audit.AuditFilters, dict[str, str]]:
    params = request.query_params
    start, end = _day(params.get("from", "")), _day(params.get("to", ""))
    filters = audit.AuditFilters(
        action=params.get("action", "")[:60],
        actor_id=params.get("actor", "").strip()[:36],
        target_id=params.get("target", "").strip()[:36],
        start=datetime.combine(start, time(), UTC) if start else None,
        # 9999-12-31 has no day after it: no upper bound then.
        end=datetime.combine(end + timedelta(days=1), time(), UTC)
        if end and end < date.max
        else None,
    )
    echo = {
        "action": filters.action,
        "actor": filters.actor_id,
        "target": filters.target_id,
        "from": start.isoformat() if start else "",
        "to": end.isoformat() if end else "",
    }
    return filters, echo


async def _names(conn: Any, clinic_id: str, entries: list[dict[str, Any]]) -> Any:
    """Names for the page's ids: every person of the clinic (also for the filters), the
    people the page's invitations were for, and the clinic's keys."""
    people_rows, _ = await users.directory_page(
        conn, clinic_id, DirectoryFilters(), page=1, per_page=PEOPLE_LISTED
    )
    people = {
        str(r["id"]): f"{r['first_name']} {r['last_name']}".strip() for r in people_rows
    }
    ids = {e["actorId"] for e in entries if e["actorId"]} | {
        e["targetId"] for e in entries if e["targetId"]
    }
    people.update(await users.names(conn, clinic_id, ids - people.keys()))
    invitation_people: dict[str, str] = {}
    for entry in entries:
        target = entry["targetId"]
        if entry["targetType"] == "invitation" and target and target not in invitation_people:
            try:
                row = await invitations.get_invitation(conn, clinic_id, target)
            except NotFound:
                continue
            invitation_people[target] = str(row["user_id"])
    keys = {
        str(k["id"]): k["description"] or "(no description)"
        for k in await clinics.list_api_keys(conn, clinic_id)
    }
    return audit_text.Names(people, invitation_people, keys), people_rows, keys


async def audit_names(conn: Any, clinic_id: str, entries: list[dict[str, Any]]) -> Any:
    """The names the given entries need (see _names)."""
    names, _, _ = await _names(conn, clinic_id, entries)
    return names


@router.get("/audit")
async def audit_page(request: Request) -> Response:
    me = await require_admin(request)
    db = ctx_of(request).db
    filters, echo = _filters(request)
    before_seq = _seq(request.query_params.get("before", ""))

    async def read(conn: Any) -> Any:
        entries = await audit.filtered_entries(
            conn, me.clinic_id, filters, before_seq=before_seq, limit=PER_PAGE + 1
        )
        actions = await audit.actions_in(conn, me.clinic_id)
        return entries, actions, *(await _names(conn, me.clinic_id, entries[:PER_PAGE]))

    entries, actions, names, people, keys = await db.read(read)
    has_more = len(entries) > PER_PAGE
    entries = entries[:PER_PAGE]
    query = {k: v for k, v in echo.items() if v}
    next_url = "/audit?" + urlencode({**query, "before": entries[-1]["seq"]}) if has_more else None
    newest_url = "/audit?" + urlencode(query) if before_seq is not None else None
    return page(
        request,
        "audit.html",
        lines=[audit_text.line_of(e, names) for e in entries],
        actions=[(a, audit_text.action_label(a)) for a in actions],
        people=people,
        keys=keys,
        filters=echo,
        filtered=bool(query),
        next_url=next_url,
        newest_url=newest_url,
        csv_url="/audit.csv" + ("?" + urlencode(query) if query else ""),
    )


@router.get("/audit.csv")
async def audit_csv(request: Request) -> Response:
    me = await require_admin(request)
    filters, _ = _filters(request)
    entries = await ctx_of(request).db.read(
        lambda conn: audit.filtered_entries(
            conn, me.clinic_id, filters, before_seq=None, limit=CSV_MAX_ROWS
        )
    )
    out = io.StringIO()
    audit.write_csv(out, entries)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="audit-log.csv"',
            "Cache-Control": "no-store",
        },
    )
