"""The request middleware (pure ASGI, for its low cost per request): request id, metrics and
the access log line.

A client's `X-Request-Id` is kept when it is sane (1-64 printable ASCII characters, no
spaces), otherwise one is generated; either way it is echoed in the response, stored in
`request.state.request_id` for handlers (the audit trail records it) and attached to every
log line written while the request runs.

A query string carrying a NUL character (`%00`) is refused here with a 422 naming the
parameter: no parameter of this service can hold one, and PostgreSQL rejects it in any text
value, which made search filters answer 500 (found by fuzzing `GET /v1/viewer/users`).
"""

from __future__ import annotations

import logging
import os
import random
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ValidationFailed
from .logs import current_request_id
from .metrics import observe_request

access_log = logging.getLogger("avara_viewer.access")

MAX_REQUEST_ID = 64

# Generated request ids only need to be unique, not unguessable (they are echoed to the
# client and written in logs): a PRNG seeded from the OS, without a system call per request
# (os.urandom here cost ~10 % of the invite path's event-loop samples under py-spy).
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def _sane(value: bytes) -> bool:
    return 0 < len(value) <= MAX_REQUEST_ID and all(0x21 <= b <= 0x7E for b in value)


def request_id_of(headers: Any) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            if _sane(value):
                return value.decode("ascii")
            break
    return f"{_ids.getrandbits(128):032x}"


def _nul_in_query(query_string: bytes) -> ValidationFailed | None:
    if b"%00" not in query_string:
        return None
    names = sorted(
        {
            name
            for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
            if "\x00" in name or "\x00" in value
        }
    )
    if not names:
        return None
    return ValidationFailed(
        f"Invalid request: {', '.join(names)}.",
        errors=[{"field": name, "message": "must not contain NUL characters"} for name in names],
    )


def route_template(scope: Scope) -> str:
    """The matched route's template (`/v1/viewer/users/{userId}`), never the raw path, so the
    metrics' label values stay few whatever clients send."""
    route = scope.get("route")
    if route is None:
        return "unmatched"
    return str(getattr(route, "path_format", None) or getattr(route, "path", "unmatched"))


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope["headers"])
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = request_id
        token = current_request_id.set(request_id)
        echo = (b"x-request-id", request_id.encode("ascii"))
        status = 500  # what the client gets if the application raises before responding
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echo]
            await send(message)

        try:
            refused = _nul_in_query(scope["query_string"])
            if refused is not None:
                await refused.response()(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            method = scope["method"]
            observe_request(method, route_template(scope), status, elapsed)
            if self.log_requests:
                # The path only: query strings can carry tokens (the invitation link's).
                access_log.info(
                    "%s %s %d",
                    method,
                    scope["path"],
                    status,
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            current_request_id.reset(token)
