"""Queueing email: an outbox row written inside the caller's transaction."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from .outbox_models import OutboxMessage

outbox = OutboxMessage.__table__

INVITATION = "invitation"
PASSWORD_RESET = "password_reset"


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
    await conn.execute(
        outbox.insert().values(
            clinic_id=clinic_id,
            kind=kind,
            subject_id=subject_id,
            payload=json.dumps(payload, separators=(",", ":")),
            recipient=recipient,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
