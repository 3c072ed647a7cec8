"""Creating clinics and API keys (the operator's side, used by the CLI and the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

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
