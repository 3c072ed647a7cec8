"""The lean routes: `POST /v1/viewer/users` (the invite) and `GET /v1/viewer/users/{userId}`
answered by a pure-ASGI layer in front of FastAPI's routing; every other request goes to
FastAPI unchanged.

FastAPI's per-request machinery (routing, the request/response wrappers, dependency
solving, its exception middleware) costs more CPU than everything else an invite does.
This layer skips only that machinery, not a rule: it calls the same functions as the
FastAPI routes (users.endpoints.invite and .retrieve: the same key check, rate limit, body
reader, pydantic models and Idempotency-Key rules), answers errors with the same handlers
(errors.ProblemError.response, errors.database_problem; anything else propagates to
Starlette's ServerErrorMiddleware, as from a route) and sits inside the same pure-ASGI
request middleware (ops.middleware: request id, metrics, access log). It sets
`scope["route"]` to the FastAPI route it stands in for, so the metrics label it by the same
template. The FastAPI routes stay declared: /openapi.json and /docs describe them, and they
answer when this layer steps aside (an application mounted under a root path).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ..apikit.body import receive_json_object
from ..db.faults import DATABASE_ERRORS
from ..errors import ProblemError, database_problem
from . import endpoints

USERS = "/v1/viewer/users"
_PREFIX = USERS + "/"
# Only ids of the user form are answered here (any other segment goes to FastAPI, which
# answers it as it always has: a 404, or the route of that name).
_USER_ID_PREFIX = _PREFIX + "usr_"


class LeanRoutes:
    """Pure-ASGI middleware, added inside ops.middleware.RequestContextMiddleware."""

    def __init__(self, app: ASGIApp, *, fastapi: FastAPI) -> None:
        self.app = app
        self.fastapi = fastapi
        self._resolved = False
        self._invite_route: BaseRoute | None = None
        self._retrieve_route: BaseRoute | None = None
        # Segments after /v1/viewer/users/ that a route declared before {userId} answers
        # for GET (/v1/viewer/users/invitations): FastAPI's, not a user id.
        self._static: frozenset[str] = frozenset()

    def _resolve(self) -> None:
        """Find the FastAPI routes this layer stands in for (after every router is added)."""
        for route in endpoints.router.routes:
            path = getattr(route, "path", "")
            methods = getattr(route, "methods", None) or set()
            if path == USERS and "POST" in methods:
                self._invite_route = route
            elif path == _PREFIX + "{userId}" and "GET" in methods:
                self._retrieve_route = route
        static: set[str] = set()
        for route in _walk(self.fastapi.routes):
            path = getattr(route, "path", "")
            rest = path[len(_PREFIX) :]
            if path.startswith(_PREFIX) and "{" not in rest and "GET" in (route.methods or ()):
                static.add(rest.split("/", 1)[0])
        self._static = frozenset(static)
        self._resolved = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        if not self._resolved:
            self._resolve()
        path: str = scope["path"]
        method: str = scope["method"]
        if method == "POST" and path == USERS and self._invite_route is not None:
            scope["route"] = self._invite_route
            await self._answer(scope, receive, send, self._invite)
            return
        if (
            method == "GET"
            and path.startswith(_PREFIX)
            and self._retrieve_route is not None
            and path.startswith(_USER_ID_PREFIX)
            and "/" not in path[len(_PREFIX) :]
            and path[len(_PREFIX) :] not in self._static
        ):
            scope["route"] = self._retrieve_route
            scope["path_params"] = {"userId": path[len(_PREFIX) :]}
            await self._answer(scope, receive, send, self._retrieve)
            return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, handler: Any) -> None:
        try:
            response = await handler(scope, receive)
        except ProblemError as exc:
            response = exc.response()
        except DATABASE_ERRORS as exc:
            response = database_problem(exc, scope["method"], scope["path"])
        await response(scope, receive, send)

    async def _invite(self, scope: Scope, receive: Receive) -> Any:
        headers = _headers(scope)
        return await endpoints.invite(
            self.fastapi.state.ctx,
            headers,
            scope["state"]["request_id"],
            scope["path"],
            lambda: receive_json_object(headers, receive),
        )

    async def _retrieve(self, scope: Scope, receive: Receive) -> Any:
        return await endpoints.retrieve(
            self.fastapi.state.ctx,
            _headers(scope).get("authorization"),
            scope["path_params"]["userId"],
        )


def _walk(routes: list[BaseRoute]) -> list[Any]:
    """Every route, through FastAPI's included routers."""
    out: list[Any] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            out += _walk(inner.routes)
        elif hasattr(route, "methods"):
            out.append(route)
    return out


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name, the first of repeated ones (as Starlette's
    Headers.get gives them)."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").lower()
        if key not in headers:
            headers[key] = value.decode("latin-1")
    return headers
