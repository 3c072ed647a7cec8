"""The operator's HTTP surface: /readyz and /metrics, and the request middleware."""

from __future__ import annotations

import hmac
import logging
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from .. import aio
from ..apikit.responses import json_response
from ..clock import utcnow
from ..db import Database
from ..db.faults import unavailable
from ..email.outbox import pending_age, pending_state
from ..errors import Forbidden, problem_response
from ..webhooks.delivery import backlog
from . import metrics
from .middleware import RequestContextMiddleware

log = logging.getLogger("avara_viewer.ops")

READY_TIMEOUT_SECONDS = 2.0


def install(app: FastAPI, *, log_requests: bool = True, metrics_token: str | None = None) -> None:
    app.add_middleware(RequestContextMiddleware, log_requests=log_requests)

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        db = request.app.state.ctx.db
        try:
            pending, oldest = await aio.within(_probe(db), READY_TIMEOUT_SECONDS)
        except Exception as exc:
            fault = unavailable(exc)
            if isinstance(exc, TimeoutError):
                reason = "timeout"
                why = f"the database did not answer within {READY_TIMEOUT_SECONDS} s"
            elif fault is not None:
                reason, why = fault.code, fault.reason
            else:
                reason, why = "error", f"{type(exc).__name__}: {exc}"
            log.warning("not ready: %s: %s", reason, why)
            body: dict[str, Any] = {
                "type": "https://avara-viewer.dev/problems/not-ready",
                "title": "Not ready",
                "status": 503,
                "detail": f"Reads or writes fail: {why}.",
                "code": "not_ready",
                "reason": reason,
            }
            return problem_response(503, body, {"Retry-After": "5"})
        return json_response(
            200,
            {
                "status": "ready",
                "database": "ok",
                "outbox": {
                    "pending": pending,
                    "oldestPendingAgeSeconds": round(pending_age(oldest, utcnow()), 3),
                },
            },
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        if not _may_scrape(request, metrics_token):
            return Forbidden(
                "Metrics are served to loopback clients not behind a proxy, or with the "
                "metrics token (AVARA_VIEWER_METRICS_TOKEN) as a Bearer token."
            ).response()
        db = request.app.state.ctx.db
        try:
            pending, oldest = await aio.within(db.read(pending_state), READY_TIMEOUT_SECONDS)
        except Exception:
            log.warning("metrics: the outbox could not be read", exc_info=True)
        else:
            metrics.set_outbox(pending, oldest, utcnow())
        try:
            waiting, first = await aio.within(db.read(backlog), READY_TIMEOUT_SECONDS)
        except Exception:
            log.warning("metrics: the webhook backlog could not be read", exc_info=True)
        else:
            metrics.set_webhook_backlog(waiting, first, utcnow())
        data, content_type = metrics.exposition()
        return Response(data, media_type=content_type)


async def _probe(db: Database) -> tuple[int, datetime | None]:
    """Readiness: a read (the outbox's state) and a write through the write path both work."""
    state = await db.read(pending_state)
    await db.probe_write()
    return state


_LOOPBACK = frozenset({"127.0.0.1", "::1"})
_FORWARDING = (b"forwarded", b"x-forwarded-for", b"x-real-ip")


def _may_scrape(request: Request, token: str | None) -> bool:
    """/metrics: the metrics token, when one is set, from anywhere; otherwise (or without it)
    only a loopback client whose request did not come through a proxy (a proxy on the same
    host would otherwise make every outside client look local)."""
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode()):
            return True
    client = request.client
    if client is None or client.host not in _LOOPBACK:
        return False
    return not any(name in _FORWARDING for name, _ in request.scope["headers"])
