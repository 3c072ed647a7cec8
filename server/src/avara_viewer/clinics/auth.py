"""Bearer API-key authentication: look up by the key's prefix, prove by keyed hash; and the
record of when each key was last used."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from ..actor import Actor
from ..clock import utcnow
from ..errors import Unauthorized
from ..ids import api_key_lookup, constant_time_equal, keyed_hash
from .models import ApiKey

_keys = ApiKey.__table__
log = logging.getLogger("avara_viewer.api_keys")

ReadRunner = Callable[[Callable[[AsyncConnection], Awaitable[Any]]], Awaitable[Any]]
WriteRunner = ReadRunner

# "Last used" is for people telling live keys from forgotten ones: each process writes it at
# most once a minute per key, off the request's path, many keys in one statement.
LAST_USED_EVERY = 60.0

# A verified key is remembered this long, so a busy integration costs one look-up a second
# instead of one per request; revoking a key takes effect within this time.
CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class ApiPrincipal:
    clinic_id: str
    api_key_id: str

    def actor(self, request_id: str | None) -> Actor:
        """The actor of a request this key authenticated."""
        return Actor(
            clinic_id=self.clinic_id, kind="api_key", id=self.api_key_id, request_id=request_id
        )


def api_actor(request: Request, principal: ApiPrincipal) -> Actor:
    """The actor of an API request: the key that authenticated it, and the request's id."""
    return principal.actor(request.state.request_id)


def hash_api_key(secret_key: bytes, key: str) -> str:
    return keyed_hash(secret_key, "api-key", key)


class ApiKeyAuthenticator:
    def __init__(self, secret_key: bytes) -> None:
        self._secret = secret_key
        self._cache: dict[str, tuple[float, str, ApiPrincipal]] = {}
        self._noted: dict[str, float] = {}  # key id -> when its use was last queued
        self._pending: dict[str, Any] = {}  # key id -> the time to record
        self._flush: asyncio.Task[None] | None = None
        # Look-ups in progress: when a key's cached verdict lapses under load, the requests
        # that arrive before the database answers share one look-up instead of one each.
        self._finding: dict[str, asyncio.Future[Any]] = {}

    def note_use(self, principal: ApiPrincipal, write: WriteRunner) -> None:
        """Remember that the key was used now; written to the database in the background,
        at most once a minute per key."""
        now = time.monotonic()
        key_id = principal.api_key_id
        if now - self._noted.get(key_id, -LAST_USED_EVERY) < LAST_USED_EVERY:
            return
        if len(self._noted) > 10_000:
            self._noted.clear()
        self._noted[key_id] = now
        self._pending[key_id] = utcnow()
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._write_pending(write))

    async def _write_pending(self, write: WriteRunner) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            rows = [{"key_id": k, "used_at": t} for k, t in batch.items()]

            async def op(conn: AsyncConnection, rows: list[dict[str, Any]] = rows) -> None:
                await conn.execute(
                    update(_keys)
                    .where(_keys.c.id == bindparam("key_id"))
                    .values(last_used_at=bindparam("used_at")),
                    rows,
                )

            try:
                await write(op)
            except Exception:  # a lost "last used" is not worth failing anything for
                log.warning("could not record the last use of %d API key(s)", len(rows))

    async def _find(self, lookup: str, read: ReadRunner) -> Any:
        finding = self._finding.get(lookup)
        if finding is not None:
            try:
                return await asyncio.shield(finding)
            except asyncio.CancelledError:
                # The look-up's own request was cancelled (its client left): look up anew,
                # unless this request is the one being cancelled.
                task = asyncio.current_task()
                if not finding.cancelled() or (task is not None and task.cancelling()):
                    raise
            return await read(_find_key(lookup))
        finding = asyncio.get_running_loop().create_future()
        self._finding[lookup] = finding
        try:
            row = await read(_find_key(lookup))
        except BaseException as exc:
            if isinstance(exc, Exception):
                finding.set_exception(exc)
                finding.exception()  # retrieved: nobody else may be waiting
            else:
                finding.cancel()
            raise
        else:
            finding.set_result(row)
            return row
        finally:
            del self._finding[lookup]

    async def authenticate(self, request: Request, read: ReadRunner) -> ApiPrincipal:
        return await self.authenticate_header(request.headers.get("authorization"), read)

    async def authenticate_header(self, header: str | None, read: ReadRunner) -> ApiPrincipal:
        """The principal of an Authorization header's API key, or 401."""
        if not header:
            raise Unauthorized(
                "Send your API key as: Authorization: Bearer <key>.",
                code="missing_api_key",
            )
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Unauthorized(
                "Send your API key as: Authorization: Bearer <key>.",
                code="missing_api_key",
            )
        lookup = api_key_lookup(key)
        if lookup is None:
            raise Unauthorized("The API key is not valid.", code="invalid_api_key")
        presented = hash_api_key(self._secret, key)
        now = time.monotonic()
        cached = self._cache.get(lookup)
        if cached and cached[0] > now and constant_time_equal(cached[1], presented):
            return cached[2]
        row = await self._find(lookup, read)
        if (
            row is None
            or row.revoked_at is not None
            or not constant_time_equal(row.key_hash, presented)
        ):
            self._cache.pop(lookup, None)
            raise Unauthorized("The API key is not valid.", code="invalid_api_key")
        principal = ApiPrincipal(clinic_id=row.clinic_id, api_key_id=row.id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[lookup] = (now + CACHE_SECONDS, row.key_hash, principal)
        return principal


def _find_key(lookup: str) -> Callable[[AsyncConnection], Awaitable[Any]]:
    async def op(conn: AsyncConnection) -> Any:
        return (
            await conn.execute(
                select(_keys.c.id, _keys.c.clinic_id, _keys.c.key_hash, _keys.c.revoked_at).where(
                    _keys.c.lookup == lookup
                )
            )
        ).first()

    return op
