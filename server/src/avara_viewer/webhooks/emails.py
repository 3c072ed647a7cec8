"""The email telling a clinic's admins that one of its webhook endpoints was disabled
automatically (it answered 410, or failed for days): queued beside the change, rendered here.

Registered with the delivery loop by the composition root (context.email_kinds).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..config import Settings
from ..email import outbox
from ..email.kinds import render_each
from ..email.outbox import Claimed
from ..email.render import RenderedEmail, render_webhook_disabled
from ..users import repository as users_repo
from ..users.models import User

WEBHOOK_DISABLED_EMAIL = "webhook_disabled"

users = User.__table__


async def notify_admins(
    conn: AsyncConnection, clinic_id: str, endpoint_id: str, url: str, reason: str, now: datetime
) -> None:
    """Queue the email to each active owner and admin who can open the dashboard, in the
    transaction that disabled the endpoint."""
    rows = await conn.execute(
        select(users.c.id, users.c.email).where(
            users.c.clinic_id == clinic_id,
            users.c.status == "active",
            users.c.level.in_(("owner", "admin")),
            users.c.has_dashboard_access.is_(True),
        )
    )
    queued = [
        outbox.Queued(
            clinic_id,
            WEBHOOK_DISABLED_EMAIL,
            row.id,
            row.email,
            {"endpointId": endpoint_id, "url": url, "reason": reason},
        )
        for row in rows
    ]
    if queued:
        await outbox.enqueue_many(conn, queued, now)


class WebhookDisabledEmails:
    """Messages queued for an admin's user id with {"endpointId", "url", "reason"}: the
    endpoint may be deleted before the email goes out, so what it says travels with it."""

    name = WEBHOOK_DISABLED_EMAIL

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def render(
        self, conn: AsyncConnection, messages: list[Claimed]
    ) -> dict[int, RenderedEmail | Exception]:
        found = await users_repo.first_names_with_clinic(conn, {m.subject_id for m in messages})

        def render_one(message: Claimed, row: Any) -> RenderedEmail:
            return render_webhook_disabled(
                clinic_name=row.clinic_name,
                first_name=row.first_name,
                endpoint_url=str(message.payload["url"]),
                reason=str(message.payload["reason"]),
                dashboard_url=f"{self.settings.public_url}/webhooks/{message.payload['endpointId']}",
            )

        return render_each(messages, found, "the admin no longer exists", render_one)

    async def delivered(
        self, conn: AsyncConnection, outcomes: list[tuple[Claimed, str]], now: datetime
    ) -> None:
        """Nothing to record: the endpoint's state does not depend on the email."""
