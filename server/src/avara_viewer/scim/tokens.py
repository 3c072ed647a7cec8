"""SCIM tokens: made and revoked by the operator (CLI), proven on each request by a keyed hash
under the server secret, looked up by a prefix of the token — like API keys, but a separate
credential so a clinic can cut its identity provider off alone."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from .. import events
from ..actor import Actor
from ..clinics.service import clinic_name
from ..db import Database
from ..errors import NotFound, Unauthorized
from ..ids import constant_time_equal, keyed_hash, new_uuid
from .models import ScimToken

tokens = ScimToken.__table__

PREFIX = "scim_"
_LOOKUP_CHARS = 12
# A verified token is remembered this long (one look-up a second for a busy IdP); revoking
# takes effect within this time.
CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class NewToken:
    id: str
    token: str


@dataclass(frozen=True)
class ScimPrincipal:
    clinic_id: str
    token_id: str


def _lookup(token: str) -> str | None:
    if not token.startswith(PREFIX) or len(token) < len(PREFIX) + 32:
        return None
    return token[len(PREFIX) : len(PREFIX) + _LOOKUP_CHARS]


def _hash(secret_key: bytes, token: str) -> str:
    return keyed_hash(secret_key, "scim-token", token)


async def create(
    conn: AsyncConnection,
    secret_key: bytes,
    clinic_id: str,
    description: str,
    now: datetime,
    actor: Actor | None = None,
) -> NewToken:
    """Make a token (the command line's, unless `actor` is a dashboard admin)."""
    if await clinic_name(conn, clinic_id) is None:
        raise NotFound(f"No clinic with id {clinic_id}.")
    token = PREFIX + secrets.token_urlsafe(32)
    token_id = new_uuid()
    await conn.execute(
        tokens.insert().values(
            id=token_id,
            clinic_id=clinic_id,
            description=description,
            lookup=_lookup(token),
            token_hash=_hash(secret_key, token),
            created_at=now,
        )
    )
    actor = actor or Actor(clinic_id=clinic_id, kind="cli", id=None)
    await events.emit(
        conn,
        events.DomainEvent(
            events.SCIM_TOKEN_CREATED,
            actor,
            "scim_token",
            token_id,
            {"description": {"before": None, "after": description}},
            now,
        ),
    )
    return NewToken(token_id, token)


async def revoke(
    conn: AsyncConnection, token_id: str, now: datetime, actor: Actor | None = None
) -> None:
    """Revoke a token (any clinic's from the command line; only its own clinic's for a
    dashboard `actor`)."""
    row = (
        await conn.execute(
            select(tokens.c.clinic_id, tokens.c.revoked_at).where(tokens.c.id == token_id)
        )
    ).first()
    if row is None or (actor is not None and actor.clinic_id != row.clinic_id):
        raise NotFound(f"No SCIM token with id {token_id}.")
    if row.revoked_at is not None:
        return
    await conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked_at=now))
    await events.emit(
        conn,
        events.DomainEvent(
            events.SCIM_TOKEN_REVOKED,
            actor or Actor(clinic_id=row.clinic_id, kind="cli", id=None),
            "scim_token",
            token_id,
            {},
            now,
        ),
    )


async def list_for_clinic(conn: AsyncConnection, clinic_id: str) -> list[Any]:
    rows = await conn.execute(
        select(tokens.c.id, tokens.c.description, tokens.c.created_at, tokens.c.revoked_at)
        .where(tokens.c.clinic_id == clinic_id)
        .order_by(tokens.c.created_at, tokens.c.id)
    )
    return list(rows.all())


def _invalid() -> Unauthorized:
    return Unauthorized("The SCIM token is not valid.", code="invalid_scim_token")


class ScimAuthenticator:
    def __init__(self, secret_key: bytes) -> None:
        self._secret = secret_key
        self._cache: dict[str, tuple[float, str, ScimPrincipal]] = {}

    async def authenticate(self, request: Request, db: Database) -> ScimPrincipal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                "Send the clinic's SCIM token as: Authorization: Bearer <token>.",
                code="missing_scim_token",
            )
        lookup = _lookup(token)
        if lookup is None:
            raise _invalid()
        presented = _hash(self._secret, token)
        now = time.monotonic()
        cached = self._cache.get(lookup)
        if cached and cached[0] > now and constant_time_equal(cached[1], presented):
            return cached[2]

        async def find(conn: AsyncConnection) -> Any:
            columns = (tokens.c.id, tokens.c.clinic_id, tokens.c.token_hash, tokens.c.revoked_at)
            query = select(*columns).where(tokens.c.lookup == lookup)
            return (await conn.execute(query)).first()

        row = await db.read(find)
        if (
            row is None
            or row.revoked_at is not None
            or not constant_time_equal(row.token_hash, presented)
        ):
            self._cache.pop(lookup, None)
            raise _invalid()
        principal = ScimPrincipal(clinic_id=row.clinic_id, token_id=row.id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[lookup] = (now + CACHE_SECONDS, row.token_hash, principal)
        return principal
