"""The password-reset email kind of the outbox: the reset link's purpose string (its one
definition), and how a queued reset email is loaded and rendered.

Registered with the delivery loop by the composition root (context.email_kinds).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ..config import Settings
from ..email.kinds import render_each
from ..email.outbox import Claimed
from ..email.render import RenderedEmail, render_password_reset
from ..ids import derive_token
from ..users import repository as users_repo

RESET_PURPOSE = "password-reset"
PASSWORD_RESET_EMAIL = "password_reset"


class PasswordResetEmails:
    """Messages queued with {"nonce": ..., "expiresAt": ...} for a user id: the link is
    derived again from the nonce, so the token itself is stored nowhere."""

    name = PASSWORD_RESET_EMAIL

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def render(
        self, conn: AsyncConnection, messages: list[Claimed]
    ) -> dict[int, RenderedEmail | Exception]:
        found = await users_repo.first_names_with_clinic(conn, {m.subject_id for m in messages})

        def render_one(message: Claimed, row: Any) -> RenderedEmail:
            token = derive_token(
                self.settings.resolved_secret_key,
                RESET_PURPOSE,
                message.subject_id,
                str(message.payload["nonce"]),
            )
            return render_password_reset(
                clinic_name=row.clinic_name,
                first_name=row.first_name,
                reset_url=f"{self.settings.public_url}/password-reset?token={token}",
                expires_at=datetime.fromisoformat(str(message.payload["expiresAt"])),
            )

        return render_each(messages, found, "the user no longer exists", render_one)

    async def delivered(
        self, conn: AsyncConnection, outcomes: list[tuple[Claimed, str]], now: datetime
    ) -> None:
        """Nothing to record: the reset row stands whether or not its email arrived."""
