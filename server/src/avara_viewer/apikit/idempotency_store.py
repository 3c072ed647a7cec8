"""The idempotency_keys table (owned by the API kit): the first response to a (clinic, key)
pair, found again and replayed on retries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Integer, String, Text, UniqueConstraint, delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime

MAX_KEY_LENGTH = 255


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    clinic_id: Mapped[str] = mapped_column(String(36))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("clinic_id", "key", name="uq_idempotency_clinic_key"),)


_table = IdempotencyRecord.__table__


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status_code: int
    body: str


def request_fingerprint(method: str, path: str, body: Any) -> str:
    """Same method, path and JSON body (key order and spacing aside) give the same hash."""
    canonical = orjson.dumps([method, path, body], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _lock_key(clinic_id: str, key: str) -> int:
    digest = hashlib.sha256(f"idempotency:{clinic_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def find_many(
    conn: AsyncConnection, keys: list[tuple[str, str]], not_before: datetime
) -> dict[tuple[str, str], StoredResponse]:
    """The live records among (clinic id, key) pairs.

    On PostgreSQL each key's transaction-scoped advisory lock is taken first (in one order), so
    a concurrent request with the same key, in another process, waits for this transaction and
    then finds its record: a replay, never a second run that meets the first's rows (a 409)."""
    if conn.dialect.name == "postgresql" and keys:
        locks = sorted({_lock_key(clinic_id, key) for clinic_id, key in keys})
        await conn.execute(
            text(
                "SELECT pg_advisory_xact_lock(k) FROM "
                "(SELECT unnest(CAST(:locks AS bigint[])) AS k ORDER BY k) AS ordered"
            ),
            {"locks": locks},
        )
    found: dict[tuple[str, str], StoredResponse] = {}
    by_clinic: dict[str, list[str]] = {}
    for clinic_id, key in keys:
        by_clinic.setdefault(clinic_id, []).append(key)
    for clinic_id, clinic_keys in by_clinic.items():
        rows = await conn.execute(
            select(
                _table.c.key, _table.c.request_hash, _table.c.status_code, _table.c.response_body
            ).where(
                _table.c.clinic_id == clinic_id,
                _table.c.key.in_(clinic_keys),
                _table.c.created_at >= not_before,
            )
        )
        for key, request_hash, status_code, body in rows:
            found[(clinic_id, key)] = StoredResponse(request_hash, status_code, body)
    return found


@dataclass(frozen=True)
class NewRecord:
    clinic_id: str
    key: str
    request_hash: str
    status_code: int
    body: str


async def store_many(
    conn: AsyncConnection, records: list[NewRecord], now: datetime, ttl: timedelta
) -> None:
    if not records:
        return
    # An expired record under the same key gives way to the new one.
    by_clinic: dict[str, list[str]] = {}
    for record in records:
        by_clinic.setdefault(record.clinic_id, []).append(record.key)
    for clinic_id, keys in by_clinic.items():
        await conn.execute(
            delete(_table).where(
                _table.c.clinic_id == clinic_id,
                _table.c.key.in_(keys),
                _table.c.created_at < now - ttl,
            )
        )
    await conn.execute(
        _table.insert(),
        [
            {
                "clinic_id": r.clinic_id,
                "key": r.key,
                "request_hash": r.request_hash,
                "status_code": r.status_code,
                "response_body": r.body,
                "created_at": now,
            }
            for r in records
        ],
    )
