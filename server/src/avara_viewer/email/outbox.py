"""The email outbox table's one writer: queueing a message inside the caller's transaction,
and the delivery loop's claims (leases) and recorded outcomes.

Claims are leases (`lease_until`), so several processes can deliver from one database: on
PostgreSQL the claim skips rows another process holds (FOR UPDATE SKIP LOCKED); on SQLite
the claim is one UPDATE under the database's write lock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import insert_rows
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


# json.dumps(payload, separators=(",", ":")), its encoder made once.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


async def enqueue_many(conn: AsyncConnection, messages: list[Queued], now: datetime) -> None:
    await insert_rows(
        conn,
        outbox,
        [
            {
                "clinic_id": m.clinic_id,
                "kind": m.kind,
                "subject_id": m.subject_id,
                "payload": _COMPACT_JSON.encode(m.payload),
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
    # The lease this claim set: outcomes other than "sent" are recorded only while the row
    # still carries it (a later claim sets another).
    lease_until: datetime


async def claim(
    conn: AsyncConnection,
    now: datetime,
    *,
    limit: int,
    lease_until: datetime,
    skip_locked: bool,
    horizon: timedelta,
) -> list[Claimed]:
    """Lease up to `limit` due messages (oldest due first) and count the attempt.

    Clock steps: no retry is ever scheduled more than `horizon` (the longest backoff) ahead,
    nor a lease set more than that ahead, so a due time or lease further in the future was
    written under a clock that has since been stepped back: it counts as due (or expired)
    instead of parking the message for the length of the step."""
    stepped = now + horizon
    due = (
        select(outbox.c.id)
        .where(
            outbox.c.status == "pending",
            or_(outbox.c.next_attempt_at <= now, outbox.c.next_attempt_at > stepped),
            or_(
                outbox.c.lease_until.is_(None),
                outbox.c.lease_until < now,
                outbox.c.lease_until > stepped,
            ),
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
            lease_until,
        )
        for r in sorted(rows, key=lambda r: r.id)
    ]


async def sent_by_another(conn: AsyncConnection, messages: list[Claimed]) -> list[int]:
    """The ids among `messages` (which this claim has just sent) that another claim already
    recorded as sent: their lease ran out and was taken over, so each went out twice. Only
    the second of the two senders to record finds this, so each duplicate counts once."""
    if not messages:
        return []
    # FOR UPDATE: two senders recording at once on PostgreSQL would each miss the other's
    # uncommitted "sent"; locked, the second waits and then reads the first's.
    rows = await conn.execute(
        select(outbox.c.id, outbox.c.status)
        .where(outbox.c.id.in_([m.id for m in messages]))
        .order_by(outbox.c.id)
        .with_for_update()
    )
    return sorted(r.id for r in rows if r.status == "sent")


async def renew_lease(
    conn: AsyncConnection, message_id: int, held: datetime, renewed: datetime
) -> bool:
    """Extend a lease still held (a conversation outliving its batch); False when it was
    lost meanwhile."""
    result = await conn.execute(
        update(outbox)
        .where(
            outbox.c.id == message_id,
            outbox.c.status == "pending",
            outbox.c.lease_until == held,
        )
        .values(lease_until=renewed)
    )
    return result.rowcount == 1


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
    lease_until: datetime | None = None,
) -> None:
    """Release the lease of a message not sent: closed with `status` (failed, cancelled), or
    due again at `next_attempt_at`. Only while still `pending` and, when `lease_until` is
    given, still under that lease: a message another claim took over is left to it."""
    values: dict[str, Any] = {"lease_until": None, "last_error": error}
    if status is not None:
        values["status"] = status
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    where = [outbox.c.id == message_id, outbox.c.status == "pending"]
    if lease_until is not None:
        where.append(outbox.c.lease_until == lease_until)
    await conn.execute(update(outbox).where(*where).values(**values))


async def pending_state(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many emails wait in the outbox, and when the oldest of them was queued."""
    row = (
        await conn.execute(
            select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.status == "pending")
        )
    ).one()
    return int(row[0]), row[1]  # MIN() keeps the column's type: an aware UTC datetime


def pending_age(oldest_created_at: datetime | None, now: datetime) -> float:
    """Seconds the oldest pending email has waited: never negative, even when it was queued
    under a clock that has since been stepped back."""
    if oldest_created_at is None:
        return 0.0
    return max((now - oldest_created_at).total_seconds(), 0.0)


async def forget(conn: AsyncConnection, kind: str, subject_ids: list[str]) -> None:
    """Delete every message of these subjects, sent or not (erasing a person: the rows hold
    their address and name)."""
    if subject_ids:
        await conn.execute(
            outbox.delete().where(outbox.c.kind == kind, outbox.c.subject_id.in_(subject_ids))
        )
