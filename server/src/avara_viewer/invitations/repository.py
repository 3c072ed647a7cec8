"""Queries on invitations."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from ..email import outbox
from ..ids import derive_token, new_invitation_id, token_hash
from .models import Invitation

invitations = Invitation.__table__

TOKEN_PURPOSE = "invitation"


def invitation_token(secret_key: bytes, invitation_id: str, nonce: str) -> str:
    return derive_token(secret_key, TOKEN_PURPOSE, invitation_id, nonce)


async def create_and_queue(
    conn: AsyncConnection,
    *,
    secret_key: bytes,
    clinic_id: str,
    user_id: str,
    email: str,
    inviter_id: str | None,
    api_key_id: str | None,
    invited_source: str,
    expiry: datetime,
    now: datetime,
) -> str:
    """Insert a `sent` invitation and queue its email; returns the invitation id."""
    invitation_id = new_invitation_id()
    nonce = secrets.token_hex(16)
    await conn.execute(
        invitations.insert().values(
            id=invitation_id,
            clinic_id=clinic_id,
            user_id=user_id,
            inviter_id=inviter_id,
            invited_by_api_key_id=api_key_id,
            invited_source=invited_source,
            status="sent",
            token_nonce=nonce,
            token_hash=token_hash(invitation_token(secret_key, invitation_id, nonce)),
            expiry=expiry,
            delivery_status="queued",
            created_at=now,
            updated_at=now,
        )
    )
    await outbox.enqueue(
        conn,
        clinic_id=clinic_id,
        kind=outbox.INVITATION,
        subject_id=invitation_id,
        recipient=email,
        payload={"nonce": nonce},
        now=now,
    )
    return invitation_id
