"""The delivery loop: claims due outbox rows, renders and sends them, records the outcome.

Claims are leases (`lease_until`), so several processes can deliver from one database: on
PostgreSQL the claim skips rows another process holds (FOR UPDATE SKIP LOCKED); on SQLite
the claim is one UPDATE under the database's write lock. A process killed mid-send leaves
its lease to expire and the message is sent again with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..clinics.models import Clinic
from ..clock import utcnow
from ..config import Settings
from ..db import Database
from ..ids import derive_token
from ..invitations import repository as invitations_repo
from ..invitations.models import Invitation
from ..invitations.repository import invitation_token
from ..ops.metrics import record_email_outcomes
from ..users.models import User
from ..webhooks import record as webhooks
from . import outbox as outbox_mod
from .message import build_message
from .render import RenderedEmail, render_invitation, render_password_reset
from .transport import (
    PermanentDeliveryError,
    TemporaryDeliveryError,
    transport_from_settings,
)

log = logging.getLogger("avara_viewer.email")

outbox = outbox_mod.outbox
invitations = Invitation.__table__
users = User.__table__
clinics = Clinic.__table__


@dataclass(frozen=True)
class Claimed:
    id: int
    clinic_id: str
    kind: str
    subject_id: str
    payload: dict[str, Any]
    recipient: str
    attempts: int
    created_at: datetime


class Superseded(Exception):
    """The message no longer applies (the invitation was resent or revoked before sending)."""


class DeliveryLoop:
    def __init__(
        self, settings: Settings, db: Database, wakeup: asyncio.Event | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self.wakeup = wakeup or asyncio.Event()
        self.transport = transport_from_settings(settings.smtp_url, settings.data_dir)
        self.batch_size = max(16, settings.smtp_max_connections * 16)
        self._domain = urlsplit(settings.public_url).hostname or "avara-viewer"
        self._mail_from_addr = parseaddr(settings.mail_from)[1] or settings.mail_from

    async def run(self) -> None:
        log.info("email delivery started (%s)", type(self.transport).__name__)
        try:
            while True:
                try:
                    handled = await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("email delivery pass failed; retrying shortly")
                    handled = 0
                if handled < self.batch_size:
                    if handled == 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(
                                self.wakeup.wait(), self.settings.outbox_poll_interval
                            )
                    # Let the emails of the next few invites join this pass: each pass costs
                    # two commits, which would otherwise be paid for nearly every invite.
                    await asyncio.sleep(self.settings.outbox_gather_delay)
                    self.wakeup.clear()
        finally:
            await self.transport.aclose()

    async def run_once(self) -> int:
        """Claim one batch and deliver it; returns how many messages were handled."""
        claimed = await self.db.write(self._claim)
        if not claimed:
            return 0
        rendered = await self.db.read(lambda conn: self._render_all(conn, claimed))
        results = await asyncio.gather(*(self._deliver(m, rendered[m.id]) for m in claimed))
        recorded = await self.db.write(
            lambda conn: self._record(conn, list(zip(claimed, results, strict=True)))
        )
        record_email_outcomes(recorded)
        return len(claimed)

    async def _claim(self, conn: AsyncConnection) -> list[Claimed]:
        now = utcnow()
        due = (
            select(outbox.c.id)
            .where(
                outbox.c.status == "pending",
                outbox.c.next_attempt_at <= now,
                or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now),
            )
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(self.batch_size)
        )
        if not self.db.is_sqlite:
            due = due.with_for_update(skip_locked=True)
        ids = list((await conn.execute(due)).scalars())
        if not ids:
            return []
        rows = (
            await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(ids))
                .values(
                    lease_until=now + self.settings.outbox_lease,
                    attempts=outbox.c.attempts + 1,
                )
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

    async def _deliver(
        self, message: Claimed, rendered: RenderedEmail | Exception
    ) -> tuple[str, str | None]:
        """Returns (outcome, error): outcome is sent, retry, failed or cancelled."""
        try:
            if isinstance(rendered, Exception):
                raise rendered
            data = build_message(
                mail_from=self.settings.mail_from,
                to=message.recipient,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                message_id=f"{message.kind}-{message.id}@{self._domain}",
            )
            await self.transport.send(
                mail_from=self._mail_from_addr, rcpt=message.recipient, message=data
            )
        except Superseded as exc:
            return "cancelled", str(exc)
        except PermanentDeliveryError as exc:
            log.warning("email %d refused permanently: %s", message.id, exc)
            return "failed", str(exc)[:1000]
        except ValueError as exc:
            # The message cannot be built (e.g. an address the mail format cannot carry):
            # retrying cannot help.
            log.warning("email %d cannot be built: %s", message.id, exc)
            return "failed", f"cannot build message: {exc}"[:1000]
        except TemporaryDeliveryError as exc:
            log.info("email %d delayed (attempt %d): %s", message.id, message.attempts, exc)
            return "retry", str(exc)[:1000]
        except Exception as exc:
            log.exception("email %d could not be prepared", message.id)
            return "retry", f"{type(exc).__name__}: {exc}"[:1000]
        return "sent", None

    async def _render_all(
        self, conn: AsyncConnection, messages: list[Claimed]
    ) -> dict[int, RenderedEmail | Exception]:
        """Every claimed message rendered (or why not), from one query per kind."""
        out: dict[int, RenderedEmail | Exception] = {}
        by_kind: dict[str, list[Claimed]] = {}
        for message in messages:
            by_kind.setdefault(message.kind, []).append(message)
        for kind, group in by_kind.items():
            if kind == outbox_mod.INVITATION:
                await self._render_invitations(conn, group, out)
            elif kind == outbox_mod.PASSWORD_RESET:
                await self._render_password_resets(conn, group, out)
            else:
                for message in group:
                    out[message.id] = ValueError(f"unknown email kind {kind!r}")
        return out

    async def _render_invitations(
        self, conn: AsyncConnection, messages: list[Claimed], out: dict[int, Any]
    ) -> None:
        rows = await conn.execute(
            invitations_repo.with_people().where(
                invitations.c.id.in_({m.subject_id for m in messages})
            )
        )
        found = {row.id: row for row in rows}
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
                    inviter_name=invitations_repo.inviter_name(row),
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

    async def _render_password_resets(
        self, conn: AsyncConnection, messages: list[Claimed], out: dict[int, Any]
    ) -> None:
        rows = await conn.execute(
            select(users.c.id, users.c.first_name, clinics.c.name.label("clinic_name"))
            .join(clinics, clinics.c.id == users.c.clinic_id)
            .where(users.c.id.in_({m.subject_id for m in messages}))
        )
        found = {row.id: row for row in rows}
        for message in messages:
            row = found.get(message.subject_id)
            if row is None:
                out[message.id] = Superseded("the user no longer exists")
                continue
            token = derive_token(
                self.settings.resolved_secret_key,
                "password-reset",
                message.subject_id,
                str(message.payload["nonce"]),
            )
            try:
                out[message.id] = render_password_reset(
                    clinic_name=row.clinic_name,
                    first_name=row.first_name,
                    reset_url=f"{self.settings.public_url}/password-reset?token={token}",
                    expires_at=datetime.fromisoformat(str(message.payload["expiresAt"])),
                )
            except Exception as exc:
                out[message.id] = exc

    async def _record(
        self,
        conn: AsyncConnection,
        outcomes: list[tuple[Claimed, tuple[str, str | None]]],
    ) -> list[tuple[str, str]]:
        """Store each outcome; returns (kind, outcome) pairs for the metrics."""
        now = utcnow()
        recorded: list[tuple[str, str]] = []
        sent_ids: list[int] = []
        delivered: list[dict[str, Any]] = []
        announced: list[webhooks.Happened] = []
        for message, (outcome, error) in outcomes:
            if outcome == "sent":
                # The common case, written below with one statement per table.
                sent_ids.append(message.id)
            else:
                values: dict[str, Any] = {"lease_until": None, "last_error": error}
                if outcome in ("failed", "cancelled"):
                    values.update(status=outcome)
                elif now - message.created_at > self.settings.outbox_give_up_after:
                    values.update(
                        status="failed",
                        last_error=f"gave up after {message.attempts} attempts: {error}",
                    )
                    outcome = "failed"
                else:
                    values.update(next_attempt_at=now + self._backoff(message.attempts))
                await conn.execute(update(outbox).where(outbox.c.id == message.id).values(**values))
            recorded.append((message.kind, outcome))
            if message.kind == outbox_mod.INVITATION and outcome in ("sent", "failed"):
                delivered.append(
                    {
                        "b_id": message.subject_id,
                        "b_nonce": message.payload.get("nonce"),
                        "b_status": outcome,
                        "b_sent_at": now if outcome == "sent" else None,
                    }
                )
                announced.append(
                    webhooks.Happened(
                        message.clinic_id,
                        f"invitation.email_{'delivered' if outcome == 'sent' else 'failed'}",
                        "invitation",
                        message.subject_id,
                        now,
                    )
                )
        if sent_ids:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(sent_ids))
                .values(status="sent", sent_at=now, lease_until=None, last_error=None)
            )
        if delivered:
            # last_sent_at keeps its value when this email failed.
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
                delivered,
            )
        # The invitation's webhook subscribers learn whether its email went out.
        await webhooks.record(conn, announced)
        return recorded

    def _backoff(self, attempts: int) -> timedelta:
        base = min(
            2.0 ** max(attempts - 1, 0),
            self.settings.outbox_max_backoff.total_seconds(),
        )
        return timedelta(seconds=base * random.uniform(0.8, 1.2))
