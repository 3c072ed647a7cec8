"""The ASGI application: API routers, error handlers, lifespan (database, email delivery)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.responses import Response

from . import __version__, aio, errors
from .apikit.responses import json_response
from .config import Settings
from .context import AppContext, delivery_loop
from .dashboard import mount as mount_dashboard
from .dashboard import security
from .errors import PROBLEM_JSON
from .invitations import endpoints as invitations_endpoints
from .invitations.schemas import InvitationRevokeRequest
from .ops import web as ops_web
from .ops.heap import freeze_startup_heap
from .scim import dashboard as scim_dashboard
from .scim import endpoints as scim_endpoints
from .users import endpoints as users_endpoints
from .users.lean import LeanRoutes
from .users.schemas import UserIdRequest, UserInviteRequest, UserUpdateRequest
from .webhooks import endpoints as webhooks_endpoints
from .webhooks.delivery import WebhookLoop
from .webhooks.schemas import EndpointCreateRequest, EndpointUpdateRequest

log = logging.getLogger("avara_viewer")


def create_app(settings: Settings | None = None, *, deliver_email: bool = True) -> FastAPI:
    settings = settings or Settings()
    security.configure_hashing(settings.argon2_time_cost, settings.argon2_memory_kib)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = AppContext.create(settings)
        app.state.ctx = ctx
        await ctx.db.start()
        deliveries: list[asyncio.Task[None]] = []
        if deliver_email:
            loop = delivery_loop(settings, ctx.db, ctx.outbox_wakeup)
            deliveries.append(asyncio.create_task(loop.run(), name="avara-viewer-email"))
            hooks = WebhookLoop(settings, ctx.db)
            deliveries.append(asyncio.create_task(hooks.run(), name="avara-viewer-webhooks"))
        freeze_startup_heap()
        try:
            yield
        finally:
            for delivery in deliveries:
                await aio.stop(delivery)
            await ctx.rate_limiter.close()
            await ctx.relying_party.aclose()
            await ctx.db.close()

    app = FastAPI(
        title="Avara Viewer API",
        version=__version__,
        description=(
            "User management for imaging clinics. Authenticate with `Authorization: Bearer "
            "<API key>`; every call acts inside the key's clinic. Errors are RFC 9457 "
            "`application/problem+json` documents with a stable `code`."
        ),
        lifespan=lifespan,
        # The dashboard serves /docs from the package's own copy of Swagger UI.
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    # Added before the request middleware, so it runs inside it (request id, metrics, log).
    app.add_middleware(LeanRoutes, fastapi=app)
    ops_web.install(app, log_requests=settings.log_requests, metrics_token=settings.metrics_token)
    # Before the users router, so /v1/viewer/users/invitations is not taken for a {userId}.
    app.include_router(invitations_endpoints.router)
    app.include_router(users_endpoints.router)
    app.include_router(webhooks_endpoints.router)
    app.include_router(scim_endpoints.router)
    app.include_router(scim_dashboard.router)
    mount_dashboard(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return json_response(200, {"status": "ok"})

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (
        UserInviteRequest,
        UserUpdateRequest,
        UserIdRequest,
        InvitationRevokeRequest,
        EndpointCreateRequest,
        EndpointUpdateRequest,
    ):
        body = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        for name, definition in body.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas[model.__name__] = body
    components["securitySchemes"] = {
        "ApiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key of one clinic.",
        }
    }
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            if path.startswith("/v1/"):
                operation["security"] = [{"ApiKey": []}]
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status.isdigit() and int(status) >= 400 and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")
            # FastAPI's generic 422 entry describes its own error shape; ours is a Problem.
            if "422" in operation.get("responses", {}):
                operation["responses"]["422"]["content"] = {
                    PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                }
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = schema
    return schema
