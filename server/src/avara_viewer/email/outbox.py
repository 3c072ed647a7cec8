"""Queueing email: an outbox row written inside the caller's transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from .outbox_models import OutboxMessage

outbox = OutboxMessage.__table__

INVITATION = "invitation"
PASSWORD_RESET = "password_reset"


@dataclass(frozen=True)
class Queued:
    clinic_id: str
    kind: str
    subject_id: str
    recipient: str
    payload: dict[str, Any]


async def enqueue(
    conn: AsyncConnection,
    *,
    clinic_id: str,
    kind: str,
    subject_id: str,
    recipient: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    await enqueue_many(conn, [Queued(clinic_id, kind, subject_id, recipient, payload)], now)


_INSERT = outbox.insert()


async def enqueue_many(conn: AsyncConnection, messages: list[Queued], now: datetime) -> None:
    await conn.execute(
        _INSERT,
        [
            {
                "clinic_id": m.clinic_id,
                "kind": m.kind,
                "subject_id": m.subject_id,
                "payload": json.dumps(m.payload, separators=(",", ":")),
                "recipient": m.recipient,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for m in messages
        ],
    )


async def forget(conn: AsyncConnection, kind: str, subject_ids: list[str]) -> None:
    """Delete every message of these subjects, sent or not (erasing a person: the rows hold
    their address and name)."""
    if subject_ids:
        await conn.execute(
            outbox.delete().where(outbox.c.kind == kind, outbox.c.subject_id.in_(subject_ids))
        )
