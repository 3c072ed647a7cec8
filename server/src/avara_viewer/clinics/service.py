"""Clinics and their API keys: creating clinics (the operator's command line), creating,
listing and revoking keys (the command line and the dashboard's keys page). Only this module
writes the clinics and api_keys tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .. import events
from ..actor import Actor
from ..errors import NotFound
from ..ids import api_key_lookup, new_api_key, new_uuid
from .auth import hash_api_key
from .models import ApiKey, Clinic

clinics = Clinic.__table__
api_keys = ApiKey.__table__


@dataclass(frozen=True)
class NewApiKey:
    id: str
    secret: str


async def create_clinic(conn: AsyncConnection, name: str, now: datetime) -> str:
    clinic_id = new_uuid()
    await conn.execute(clinics.insert().values(id=clinic_id, name=name, created_at=now))
    return clinic_id


async def clinic_name(conn: AsyncConnection, clinic_id: str) -> str | None:
    return (await conn.execute(select(clinics.c.name).where(clinics.c.id == clinic_id))).scalar()


async def any_clinic_id(conn: AsyncConnection) -> str | None:
    """One clinic's id, or None when there is no clinic yet (the demo's first run)."""
    return (await conn.execute(select(clinics.c.id).limit(1))).scalar()


async def create_api_key(
    conn: AsyncConnection,
    secret_key: bytes,
    clinic_id: str,
    description: str,
    now: datetime,
    created_by_user_id: str | None = None,
) -> NewApiKey:
    if await clinic_name(conn, clinic_id) is None:
        raise NotFound(f"No clinic with id {clinic_id}.")
    secret = new_api_key()
    lookup = api_key_lookup(secret)
    assert lookup is not None
    key_id = new_uuid()
    await conn.execute(
        api_keys.insert().values(
            id=key_id,
            clinic_id=clinic_id,
            description=description,
            lookup=lookup,
            key_hash=hash_api_key(secret_key, secret),
            created_at=now,
            created_by_user_id=created_by_user_id,
        )
    )
    return NewApiKey(id=key_id, secret=secret)


async def create_api_key_by(
    conn: AsyncConnection, secret_key: bytes, actor: Actor, description: str, now: datetime
) -> NewApiKey:
    """A key created by a dashboard user for their clinic; emits `api_key.created`."""
    key = await create_api_key(
        conn, secret_key, actor.clinic_id, description, now, created_by_user_id=actor.id
    )
    changes = {"description": {"before": None, "after": description}}
    await events.emit(
        conn, events.DomainEvent(events.API_KEY_CREATED, actor, "api_key", key.id, changes, now)
    )
    return key


async def list_api_keys(conn: AsyncConnection, clinic_id: str) -> list[Any]:
    """The clinic's keys, active ones first, newest first."""
    return list(
        (
            await conn.execute(
                select(api_keys)
                .where(api_keys.c.clinic_id == clinic_id)
                .order_by(api_keys.c.revoked_at.is_not(None), api_keys.c.created_at.desc())
            )
        )
        .mappings()
        .all()
    )


async def revoke_api_key(conn: AsyncConnection, actor: Actor, key_id: str, now: datetime) -> bool:
    """Revoke one of the actor's clinic's active keys (emits `api_key.revoked`); False when
    there is no such key."""
    result = await conn.execute(
        update(api_keys)
        .where(
            api_keys.c.id == key_id,
            api_keys.c.clinic_id == actor.clinic_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    if result.rowcount != 1:
        return False
    changes = {"revokedAt": {"before": None, "after": now.isoformat()}}
    await events.emit(
        conn, events.DomainEvent(events.API_KEY_REVOKED, actor, "api_key", key_id, changes, now)
    )
    return True
