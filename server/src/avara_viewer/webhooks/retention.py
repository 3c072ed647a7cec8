"""How long webhook events and their delivery records are kept, and forgetting a person.

- Finished deliveries (succeeded, or failed for good) and their attempts are deleted once older
  than `webhook_retention` (default 30 days), then the events none of whose deliveries is left.
  A pending delivery is never deleted: it is still owed to its endpoint.
- When a person is erased (SCIM DELETE), the events about them that have been delivered or
  given up are deleted at once, with their deliveries and attempts, since their bodies carry the
  person's name and address. Events still owed to an endpoint go out first, in order, followed
  by `user.deleted`; the retention removes them after.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import WebhookAttempt, WebhookDelivery, WebhookEvent

events_t = WebhookEvent.__table__
deliveries_t = WebhookDelivery.__table__
attempts_t = WebhookAttempt.__table__

FINISHED = ("succeeded", "failed")


async def _delete_deliveries(conn: AsyncConnection, seqs: list[int]) -> list[str]:
    """Delete these deliveries and their attempts, then their events if no delivery of theirs
    is left; returns the ids of the events deleted."""
    if not seqs:
        return []
    event_ids = list(
        (
            await conn.execute(
                select(deliveries_t.c.event_id).where(deliveries_t.c.seq.in_(seqs)).distinct()
            )
        ).scalars()
    )
    await conn.execute(delete(attempts_t).where(attempts_t.c.delivery_seq.in_(seqs)))
    await conn.execute(delete(deliveries_t).where(deliveries_t.c.seq.in_(seqs)))
    orphaned = list(
        (
            await conn.execute(
                select(events_t.c.id).where(
                    events_t.c.id.in_(event_ids),
                    ~exists().where(deliveries_t.c.event_id == events_t.c.id),
                )
            )
        ).scalars()
    )
    if orphaned:
        await conn.execute(delete(events_t).where(events_t.c.id.in_(orphaned)))
    return orphaned


async def prune(conn: AsyncConnection, older_than: datetime, limit: int) -> int:
    """Delete up to `limit` finished deliveries created before `older_than` (with their
    attempts, and their events once no delivery is left); returns how many deliveries went."""
    seqs = list(
        (
            await conn.execute(
                select(deliveries_t.c.seq)
                .where(
                    deliveries_t.c.created_at < older_than,
                    deliveries_t.c.status.in_(FINISHED),
                )
                .order_by(deliveries_t.c.created_at)
                .limit(limit)
            )
        ).scalars()
    )
    await _delete_deliveries(conn, seqs)
    return len(seqs)


async def forget_user(conn: AsyncConnection, user_id: str) -> int:
    """The finished deliveries of events about this person, their attempts and (once no
    delivery is left) the events themselves; returns how many events went."""
    seqs = list(
        (
            await conn.execute(
                select(deliveries_t.c.seq).where(
                    deliveries_t.c.order_key == user_id, deliveries_t.c.status.in_(FINISHED)
                )
            )
        ).scalars()
    )
    return len(await _delete_deliveries(conn, seqs))
