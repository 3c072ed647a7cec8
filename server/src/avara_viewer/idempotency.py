"""Idempotency-Key records: the first response to a (clinic, key) pair, replayed on retries."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, UTCDateTime

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
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def find(
    conn: AsyncConnection, clinic_id: str, key: str, not_before: datetime
) -> StoredResponse | None:
    row = (
        await conn.execute(
            select(_table.c.request_hash, _table.c.status_code, _table.c.response_body).where(
                _table.c.clinic_id == clinic_id,
                _table.c.key == key,
                _table.c.created_at >= not_before,
            )
        )
    ).first()
    return StoredResponse(row[0], row[1], row[2]) if row else None


async def store(
    conn: AsyncConnection,
    *,
    clinic_id: str,
    key: str,
    request_hash: str,
    status_code: int,
    body: str,
    now: datetime,
    ttl: timedelta,
) -> None:
    # An expired record under the same key gives way to the new one.
    await conn.execute(
        delete(_table).where(
            _table.c.clinic_id == clinic_id,
            _table.c.key == key,
            _table.c.created_at < now - ttl,
        )
    )
    await conn.execute(
        _table.insert().values(
            clinic_id=clinic_id,
            key=key,
            request_hash=request_hash,
            status_code=status_code,
            response_body=body,
            created_at=now,
        )
    )
