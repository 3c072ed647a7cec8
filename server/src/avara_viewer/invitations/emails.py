"""The invitation email kind of the outbox: loads an invitation with its people, renders the
email with its accept link, and records the delivery on the invitation once known.

Registered with the delivery loop by the composition root (context.email_kinds).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..config import Settings
from ..email.kinds import Superseded
from ..email.outbox import Claimed
from ..email.render import RenderedEmail, render_invitation
from .models import Invitation
from .repository import invitation_token, inviter_name, with_people

INVITATION_EMAIL = "invitation"

invitations = Invitation.__table__


class InvitationEmails:
    """Messages queued with {"nonce": ...}: the link nonce they were written for, so an email
    for a link since replaced (resent) or closed (revoked, answered) is cancelled."""

    name = INVITATION_EMAIL

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def render(
        self, conn: AsyncConnection, messages: list[Claimed]
    ) -> dict[int, RenderedEmail | Exception]:
        rows = await conn.execute(
            with_people().where(invitations.c.id.in_({m.subject_id for m in messages}))
        )
        found = {row.id: row for row in rows}
        out: dict[int, RenderedEmail | Exception] = {}
        for message in messages:
            row = found.get(message.subject_id)
            if (
                row is None
                or row.status != "sent"
                or row.token_nonce != message.payload.get("nonce")
            ):
                out[message.id] = Superseded(
                    "the invitation was resent, revoked or answered before this email went out"
                )
                continue
            token = invitation_token(self.settings.resolved_secret_key, row.id, row.token_nonce)
            try:
                out[message.id] = render_invitation(
                    clinic_name=row.clinic_name,
                    inviter_name=inviter_name(row),
                    first_name=row.first_name,
                    last_name=row.last_name,
                    clinic_role=row.clinic_role,
                    level=row.level,
                    has_dashboard_access=row.has_dashboard_access,
                    accept_url=f"{self.settings.public_url}/invitations/accept?token={token}",
                    expires_at=row.expiry,
                )
            except Exception as exc:
                out[message.id] = exc
        return out

    async def delivered(
        self, conn: AsyncConnection, outcomes: list[tuple[Claimed, str]], now: datetime
    ) -> None:
        """delivery_status of the invitation whose link the email carried (a later link's
        invitation is left alone); last_sent_at keeps its value when the email failed."""
        rows: list[dict[str, Any]] = [
            {
                "b_id": message.subject_id,
                "b_nonce": message.payload.get("nonce"),
                "b_status": outcome,
                "b_sent_at": now if outcome == "sent" else None,
            }
            for message, outcome in outcomes
        ]
        await conn.execute(
            update(invitations)
            .where(
                invitations.c.id == bindparam("b_id"),
                invitations.c.token_nonce == bindparam("b_nonce"),
            )
            .values(
                delivery_status=bindparam("b_status"),
                last_sent_at=func.coalesce(
                    bindparam("b_sent_at", type_=invitations.c.last_sent_at.type),
                    invitations.c.last_sent_at,
                ),
            ),
            rows,
        )
