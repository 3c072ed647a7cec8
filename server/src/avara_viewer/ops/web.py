"""The operator's HTTP surface: /readyz and /metrics, and the request middleware."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from ..apikit.responses import json_response
from ..clock import utcnow
from ..email.outbox import pending_state
from ..errors import problem_response
from . import metrics
from .middleware import RequestContextMiddleware

log = logging.getLogger("avara_viewer.ops")

READY_TIMEOUT_SECONDS = 2.0


def install(app: FastAPI, *, log_requests: bool = True) -> None:
    app.add_middleware(RequestContextMiddleware, log_requests=log_requests)

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        db = request.app.state.ctx.db
        try:
            pending, oldest = await asyncio.wait_for(db.read(pending_state), READY_TIMEOUT_SECONDS)
        except Exception as exc:
            log.warning("not ready: %s: %s", type(exc).__name__, exc)
            body: dict[str, Any] = {
                "type": "https://avara-viewer.dev/problems/not-ready",
                "title": "Not ready",
                "status": 503,
                "detail": "The database is not reachable.",
                "code": "not_ready",
            }
            return problem_response(503, body, {"Retry-After": "5"})
        now = utcnow()
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        return json_response(
            200,
            {
                "status": "ready",
                "database": "ok",
                "outbox": {"pending": pending, "oldestPendingAgeSeconds": round(age, 3)},
            },
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        db = request.app.state.ctx.db
        try:
            pending, oldest = await asyncio.wait_for(db.read(pending_state), READY_TIMEOUT_SECONDS)
        except Exception:
            log.warning("metrics: the outbox could not be read", exc_info=True)
        else:
            metrics.set_outbox(pending, oldest, utcnow())
        data, content_type = metrics.exposition()
        return Response(data, media_type=content_type)
