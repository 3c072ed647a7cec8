"""Bearer API-key authentication: look up by the key's prefix, prove by keyed hash."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from ..actor import Actor
from ..errors import Unauthorized
from ..ids import api_key_lookup, constant_time_equal, keyed_hash
from .models import ApiKey

_keys = ApiKey.__table__

ReadRunner = Callable[[Callable[[AsyncConnection], Awaitable[Any]]], Awaitable[Any]]

# A verified key is remembered this long, so a busy integration costs one look-up a second
# instead of one per request; revoking a key takes effect within this time.
CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class ApiPrincipal:
    clinic_id: str
    api_key_id: str


def api_actor(request: Request, principal: ApiPrincipal) -> Actor:
    """The actor of an API request: the key that authenticated it, and the request's id."""
    return Actor(
        clinic_id=principal.clinic_id,
        kind="api_key",
        id=principal.api_key_id,
        request_id=request.state.request_id,
    )


def hash_api_key(secret_key: bytes, key: str) -> str:
    return keyed_hash(secret_key, "api-key", key)


class ApiKeyAuthenticator:
    def __init__(self, secret_key: bytes) -> None:
        self._secret = secret_key
        self._cache: dict[str, tuple[float, str, ApiPrincipal]] = {}

    async def authenticate(self, request: Request, read: ReadRunner) -> ApiPrincipal:
        header = request.headers.get("authorization")
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
        row = await read(_find_key(lookup))
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
