"""The audit trail for owners and admins: filters, pages, and a CSV download."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..audit import service as audit
from ..users import service as users
from .web import DashboardRoute, ctx_of, page, require_admin

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

PER_PAGE = 50
CSV_MAX_ROWS = 100_000


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


@router.get("/audit")
async def audit_page(request: Request) -> Response:
    me = await require_admin(request)
    db = ctx_of(request).db
    filters, echo = _filters(request)
    before_seq = _seq(request.query_params.get("before", ""))
    entries = await db.read(
        lambda conn: audit.filtered_entries(
            conn, me.clinic_id, filters, before_seq=before_seq, limit=PER_PAGE + 1
        )
    )
    has_more = len(entries) > PER_PAGE
    entries = entries[:PER_PAGE]
    actions = await db.read(lambda conn: audit.actions_in(conn, me.clinic_id))
    ids = {e["actorId"] for e in entries if e["actorId"]} | {
        e["targetId"] for e in entries if e["targetId"]
    }
    names = await db.read(lambda conn: users.names(conn, me.clinic_id, ids))
    query = {k: v for k, v in echo.items() if v}
    next_url = "/audit?" + urlencode({**query, "before": entries[-1]["seq"]}) if has_more else None
    return page(
        request,
        "audit.html",
        entries=[
            dict(e, changesText=json.dumps(e["changes"], indent=1, ensure_ascii=False))
            for e in entries
        ],
        actions=actions,
        names=names,
        filters=echo,
        next_url=next_url,
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
