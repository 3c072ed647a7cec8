"""HTTP endpoints of /scim/v2: discovery and /Users, in application/scim+json, each call
authenticated by the clinic's SCIM token, rate limited per token and put on the audit trail.
Every error is a SCIM Error document; no client input gives a 5xx."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from ..actor import Actor
from ..apikit.body import read_json_object
from ..clock import utcnow
from ..context import AppContext, get_context
from ..db import retry_on_integrity_error
from ..errors import ProblemError
from . import filter as scim_filter
from . import groups, schema, service
from . import repository as repo
from .errors import ScimError, from_problem, invalid_value
from .resource import attribute_list, check_text, project, read_user, render, user_location
from .tokens import ScimAuthenticator

log = logging.getLogger("avara_viewer.scim")

router = APIRouter(prefix="/scim/v2", include_in_schema=False)

Work = Callable[[AppContext, Actor], Awaitable[Response]]
# Paging numbers beyond a 32-bit integer can only be a mistake (or a probe).
_INT_LIMIT = 2**31 - 1


def scim_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type=schema.SCIM_JSON, headers=headers
    )


def _base(ctx: AppContext) -> str:
    return f"{ctx.settings.public_url}/scim/v2"


def _authenticator(request: Request, ctx: AppContext) -> ScimAuthenticator:
    state = request.app.state
    if getattr(state, "scim_authenticator", None) is None:
        state.scim_authenticator = ScimAuthenticator(ctx.settings.resolved_secret_key)
    authenticator: ScimAuthenticator = state.scim_authenticator
    return authenticator


async def _call(request: Request, work: Work) -> Response:
    """Authenticate, rate limit, run, and answer errors in the SCIM Error schema. A refused
    call is recorded too (in a transaction of its own, since the work's rolled back)."""
    ctx = get_context(request)
    try:
        principal = await _authenticator(request, ctx).authenticate(request, ctx.db)
        ctx.rate_limiter.check(principal.token_id)
    except ProblemError as exc:
        return from_problem(exc).response()
    actor = Actor(
        clinic_id=principal.clinic_id,
        kind="scim_token",
        id=principal.token_id,
        request_id=request.state.request_id,
    )
    try:
        return await work(ctx, actor)
    except ScimError as exc:
        error = exc
    except ProblemError as exc:
        error = from_problem(exc)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return ScimError(500, "An unexpected error occurred; it has been logged.").response()
    details: dict[str, Any] = {
        "method": request.method,
        "path": request.url.path,
        "status": error.status,
    }
    if error.scim_type:
        details["scimType"] = error.scim_type
    try:
        await ctx.db.write(lambda conn: service.record_call(conn, actor, utcnow(), details))
    except Exception:
        log.exception("could not record a refused SCIM call")
    return error.response()


async def _write(ctx: AppContext, op: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
    # A concurrent request may commit the same userName or email first (PostgreSQL): the
    # second run's checks see it and answer 409.
    return await retry_on_integrity_error(lambda: ctx.db.write(op))


async def _read_and_record(
    ctx: AppContext,
    actor: Actor,
    request: Request,
    read: Callable[[AsyncConnection], Awaitable[Any]],
    results: Callable[[Any], int],
) -> Any:
    """Run a read and record the call in the same transaction."""

    async def op(conn: AsyncConnection) -> Any:
        found = await read(conn)
        details = {
            "method": request.method,
            "path": request.url.path,
            "status": 200,
            "results": results(found),
        }
        await service.record_call(conn, actor, utcnow(), details)
        return found

    return await ctx.db.write(op)


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json_object(request)
    check_text(body)
    return body


def _projection(request: Request) -> tuple[list[str], list[str]]:
    return (
        attribute_list(request.query_params.get("attributes")),
        attribute_list(request.query_params.get("excludedAttributes")),
    )


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_value(f"{name} must be an integer.") from None
    if abs(value) > _INT_LIMIT:
        raise invalid_value(f"{name} must be between -{_INT_LIMIT} and {_INT_LIMIT}.")
    return value


def _list_response(resources: list[dict[str, Any]], total: int, start: int) -> dict[str, Any]:
    return {
        "schemas": [schema.LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


async def _static(request: Request, body: Callable[[str], Any]) -> Response:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        async def read(conn: AsyncConnection) -> Any:
            return body(_base(ctx))

        return scim_response(200, await _read_and_record(ctx, actor, request, read, lambda _: 1))

    return await _call(request, work)


# --- discovery ---------------------------------------------------------------------------------


@router.get("/ServiceProviderConfig")
async def service_provider_config(request: Request) -> Response:
    return await _static(request, schema.service_provider_config)


@router.get("/ResourceTypes")
async def resource_types(request: Request) -> Response:
    return await _static(request, lambda base: _list_response(schema.resource_types(base), 2, 1))


@router.get("/ResourceTypes/{name}")
async def resource_type(request: Request, name: str) -> Response:
    if name == "User":
        return await _static(request, schema.user_resource_type)
    if name == "Group":
        return await _static(request, schema.group_resource_type)
    return await _call(request, _missing(f"No resource type {name!r}."))


@router.get("/Schemas")
async def schemas(request: Request) -> Response:
    return await _static(
        request, lambda base: _list_response(schema.schemas(base), len(schema.schemas(base)), 1)
    )


@router.get("/Schemas/{schema_id}")
async def schema_by_id(request: Request, schema_id: str) -> Response:
    for item in schema.schemas(""):
        if item["id"].lower() == schema_id.lower():
            return await _static(
                request,
                lambda base, wanted=item["id"]: next(
                    s for s in schema.schemas(base) if s["id"] == wanted
                ),
            )
    return await _call(request, _missing(f"No schema {schema_id!r}."))


def _missing(detail: str) -> Work:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        raise ScimError(404, detail)

    return work


# --- users -------------------------------------------------------------------------------------


@router.get("/Users")
async def list_users(request: Request) -> Response:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        start = max(1, _int_param(request, "startIndex", 1))
        count = min(max(0, _int_param(request, "count", schema.DEFAULT_COUNT)), schema.MAX_RESULTS)
        text = request.query_params.get("filter")
        attributes, excluded = _projection(request)
        dialect = "sqlite" if ctx.db.is_sqlite else "postgresql"
        condition = scim_filter.parse(text, dialect) if text is not None else None

        async def read(conn: AsyncConnection) -> tuple[int, Any]:
            return await repo.search(conn, actor.clinic_id, condition, start - 1, count)

        total, rows = await _read_and_record(ctx, actor, request, read, lambda found: found[0])
        base = _base(ctx)
        resources = [project(render(row, base), attributes, excluded) for row in rows]
        return scim_response(200, _list_response(resources, total, start))

    return await _call(request, work)


def _user_response(request: Request, ctx: AppContext, row: Any, status: int = 200) -> Response:
    base = _base(ctx)
    attributes, excluded = _projection(request)
    body = project(render(row, base), attributes, excluded)
    headers = {"Location": user_location(base, row["id"])} if status == 201 else None
    return scim_response(status, body, headers)


@router.post("/Users")
async def create_user(request: Request) -> Response:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        desired = read_user(await _body(request))
        row = await _write(
            ctx, lambda conn: service.create(conn, ctx.settings, actor, desired, utcnow())
        )
        ctx.outbox_wakeup.set()
        return _user_response(request, ctx, row, 201)

    return await _call(request, work)


@router.get("/Users/{user_id}")
async def get_one(request: Request, user_id: str) -> Response:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        async def read(conn: AsyncConnection) -> Any:
            row = await repo.get(conn, actor.clinic_id, user_id)
            if row is None:
                raise ScimError(404, f"No user with id {user_id} in this clinic.")
            return row

        row = await _read_and_record(ctx, actor, request, read, lambda _: 1)
        return _user_response(request, ctx, row)

    return await _call(request, work)


@router.put("/Users/{user_id}")
async def replace_user(request: Request, user_id: str) -> Response:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        desired = read_user(await _body(request))
        row = await _write(
            ctx,
            lambda conn: _changed_or_recorded(
                conn,
                actor,
                request,
                ctx,
                user_id,
                lambda: service.replace(conn, ctx.settings, actor, user_id, desired, utcnow()),
            ),
        )
        return _user_response(request, ctx, row)

    return await _call(request, work)


@router.patch("/Users/{user_id}")
async def patch_user(request: Request, user_id: str) -> Response:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        body = await _body(request)
        base = _base(ctx)
        row = await _write(
            ctx,
            lambda conn: _changed_or_recorded(
                conn,
                actor,
                request,
                ctx,
                user_id,
                lambda: service.patch(conn, ctx.settings, actor, user_id, body, base, utcnow()),
            ),
        )
        return _user_response(request, ctx, row)

    return await _call(request, work)


async def _changed_or_recorded(
    conn: AsyncConnection,
    actor: Actor,
    request: Request,
    ctx: AppContext,
    user_id: str,
    change: Callable[[], Awaitable[Any]],
) -> Any:
    """Run a change; when it changed nothing, record the call (a change records itself)."""
    before = await repo.get(conn, actor.clinic_id, user_id)
    after = await change()
    if before is not None and dict(before) == dict(after):
        details = {"method": request.method, "path": request.url.path, "status": 200}
        await service.record_call(conn, actor, utcnow(), details)
    return after


@router.delete("/Users/{user_id}")
async def delete_user(request: Request, user_id: str) -> Response:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        await _write(ctx, lambda conn: service.delete(conn, ctx.settings, actor, user_id, utcnow()))
        return Response(status_code=204)

    return await _call(request, work)


_KNOWN = ("/ServiceProviderConfig", "/ResourceTypes", "/Schemas", "/Users", "/Groups")


# --- groups ------------------------------------------------------------------------------------


async def _group_answer(
    request: Request, ctx: AppContext, actor: Actor, group_id: str, status: int = 200
) -> Response:
    """The group as it now is. A GET records the call; a change has recorded itself."""

    async def read(conn: AsyncConnection) -> Any:
        row = await groups.get(conn, actor.clinic_id, group_id)
        if row is None:
            raise ScimError(404, f"No group with id {group_id} in this clinic.")
        return row, (await groups.members_of(conn, [group_id]))[group_id]

    if request.method == "GET":
        row, people = await _read_and_record(ctx, actor, request, read, lambda _: 1)
    else:
        row, people = await ctx.db.read(read)
    base = _base(ctx)
    attributes, excluded = _projection(request)
    body = project(groups.render(row, people, base), attributes, excluded)
    headers = {"Location": f"{base}/Groups/{group_id}"} if status == 201 else None
    return scim_response(status, body, headers)


@router.get("/Groups")
async def list_groups(request: Request) -> Response:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        start = max(1, _int_param(request, "startIndex", 1))
        count = min(max(0, _int_param(request, "count", schema.DEFAULT_COUNT)), schema.MAX_RESULTS)
        text = request.query_params.get("filter")
        attributes, excluded = _projection(request)
        dialect = "sqlite" if ctx.db.is_sqlite else "postgresql"
        condition = (
            scim_filter.parse(text, dialect, scim_filter.GROUPS) if text is not None else None
        )

        async def read(conn: AsyncConnection) -> tuple[int, Any, Any]:
            total, rows = await groups.search(conn, actor.clinic_id, condition, start - 1, count)
            people = await groups.members_of(conn, [r["id"] for r in rows])
            return total, rows, people

        total, rows, people = await _read_and_record(
            ctx, actor, request, read, lambda found: found[0]
        )
        base = _base(ctx)
        resources = [
            project(groups.render(row, people[row["id"]], base), attributes, excluded)
            for row in rows
        ]
        return scim_response(200, _list_response(resources, total, start))

    return await _call(request, work)


@router.post("/Groups")
async def create_group(request: Request) -> Response:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        body = await _body(request)
        group_id = await _write(
            ctx, lambda conn: groups.create(conn, ctx.settings, actor, body, utcnow())
        )
        return await _group_answer(request, ctx, actor, group_id, 201)

    return await _call(request, work)


@router.get("/Groups/{group_id}")
async def get_group(request: Request, group_id: str) -> Response:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        return await _group_answer(request, ctx, actor, group_id)

    return await _call(request, work)


@router.put("/Groups/{group_id}")
async def replace_group(request: Request, group_id: str) -> Response:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        body = await _body(request)
        await _write(
            ctx, lambda conn: groups.replace(conn, ctx.settings, actor, group_id, body, utcnow())
        )
        return await _group_answer(request, ctx, actor, group_id)

    return await _call(request, work)


@router.patch("/Groups/{group_id}")
async def patch_group(request: Request, group_id: str) -> Response:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        body = await _body(request)
        await _write(
            ctx, lambda conn: groups.patch(conn, ctx.settings, actor, group_id, body, utcnow())
        )
        return await _group_answer(request, ctx, actor, group_id)

    return await _call(request, work)


@router.delete("/Groups/{group_id}")
async def delete_group(request: Request, group_id: str) -> Response:
    async def work(ctx: AppContext, actor: Actor) -> Response:
        await _write(
            ctx, lambda conn: groups.delete_group(conn, ctx.settings, actor, group_id, utcnow())
        )
        return Response(status_code=204)

    return await _call(request, work)


@router.api_route(
    "/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
)
async def elsewhere(request: Request, rest: str) -> Response:
    """Unknown paths and methods, answered in the SCIM Error schema."""
    path = "/" + rest
    if path.startswith(_KNOWN):
        return ScimError(405, f"{request.method} is not supported on {path}.").response()
    return ScimError(404, f"No SCIM endpoint {path}.").response()
