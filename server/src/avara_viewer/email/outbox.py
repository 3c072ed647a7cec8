"""The email outbox table's one writer: queueing a message inside the caller's transaction,
and the delivery loop's claims (leases) and recorded outcomes.

Claims are leases (`lease_until`), so several processes can deliver from one database: on
PostgreSQL the claim skips rows another process holds (FOR UPDATE SKIP LOCKED); on SQLite
the claim is one UPDATE under the database's write lock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .outbox_models import OutboxMessage

outbox = OutboxMessage.__table__

INVITATION = "invitation"


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


async def cancel_pending(conn: AsyncConnection, kind: str, subject_id: str, reason: str) -> None:
    """Cancel the messages of this kind about this subject that have not gone out yet (their
    reason superseded: a resent or revoked invitation, say)."""
    await conn.execute(
        update(outbox)
        .where(
            outbox.c.kind == kind,
            outbox.c.subject_id == subject_id,
            outbox.c.status == "pending",
        )
        .values(status="cancelled", last_error=reason)
    )


@dataclass(frozen=True)
class Claimed:
    """A message leased to this process for one delivery attempt."""

    id: int
    clinic_id: str
    kind: str
    subject_id: str
    payload: dict[str, Any]
    recipient: str
    attempts: int
    created_at: datetime


async def claim(
    conn: AsyncConnection, now: datetime, *, limit: int, lease_until: datetime, skip_locked: bool
) -> list[Claimed]:
    """Lease up to `limit` due messages (oldest due first) and count the attempt."""
    due = (
        select(outbox.c.id)
        .where(
            outbox.c.status == "pending",
            outbox.c.next_attempt_at <= now,
            or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now),
        )
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    ids = list((await conn.execute(due)).scalars())
    if not ids:
        return []
    rows = (
        await conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids))
            .values(lease_until=lease_until, attempts=outbox.c.attempts + 1)
            .returning(
                outbox.c.id,
                outbox.c.clinic_id,
                outbox.c.kind,
                outbox.c.subject_id,
                outbox.c.payload,
                outbox.c.recipient,
                outbox.c.attempts,
                outbox.c.created_at,
            )
        )
    ).all()
    return [
        Claimed(
            r.id,
            r.clinic_id,
            r.kind,
            r.subject_id,
            json.loads(r.payload),
            r.recipient,
            r.attempts,
            r.created_at,
        )
        for r in sorted(rows, key=lambda r: r.id)
    ]


async def mark_sent(conn: AsyncConnection, ids: list[int], now: datetime) -> None:
    if ids:
        await conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids))
            .values(status="sent", sent_at=now, lease_until=None, last_error=None)
        )


async def mark_unsent(
    conn: AsyncConnection,
    message_id: int,
    *,
    error: str | None,
    status: str | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    """Release the lease of a message not sent: closed with `status` (failed, cancelled), or
    due again at `next_attempt_at`."""
    values: dict[str, Any] = {"lease_until": None, "last_error": error}
    if status is not None:
        values["status"] = status
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    await conn.execute(update(outbox).where(outbox.c.id == message_id).values(**values))


async def pending_state(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many emails wait in the outbox, and when the oldest of them was queued."""
    row = (
        await conn.execute(
            select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.status == "pending")
        )
    ).one()
    return int(row[0]), row[1]  # MIN() keeps the column's type: an aware UTC datetime
