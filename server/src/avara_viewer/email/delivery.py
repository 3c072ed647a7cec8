"""The delivery loop: claims due outbox rows, has their kinds render them, sends them and
records the outcome (see outbox for the claims, kinds for what each kind of message does).

A process killed mid-send leaves its lease to expire and the message is sent again with the
same Message-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable
from datetime import timedelta
from email.utils import parseaddr
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncConnection

from ..clock import utcnow
from ..config import Settings
from ..db import Database
from . import outbox
from .kinds import EmailKinds, Superseded
from .message import build_message
from .outbox import Claimed
from .render import RenderedEmail
from .transport import (
    PermanentDeliveryError,
    TemporaryDeliveryError,
    transport_from_settings,
)

log = logging.getLogger("avara_viewer.email")

# Told the (kind, outcome) pairs of each committed batch (the metrics, in the server).
OutcomeObserver = Callable[[Iterable[tuple[str, str]]], None]


class DeliveryLoop:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        kinds: EmailKinds,
        wakeup: asyncio.Event | None = None,
        observe: OutcomeObserver | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.kinds = kinds
        self.observe = observe
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
        if self.observe is not None:
            self.observe(recorded)
        return len(claimed)

    async def _claim(self, conn: AsyncConnection) -> list[Claimed]:
        now = utcnow()
        return await outbox.claim(
            conn,
            now,
            limit=self.batch_size,
            lease_until=now + self.settings.outbox_lease,
            skip_locked=not self.db.is_sqlite,
        )

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
        """Every claimed message rendered (or why not), each kind its group at once."""
        out: dict[int, RenderedEmail | Exception] = {}
        by_kind: dict[str, list[Claimed]] = {}
        for message in messages:
            by_kind.setdefault(message.kind, []).append(message)
        for name, group in by_kind.items():
            kind = self.kinds.get(name)
            if kind is None:
                for message in group:
                    out[message.id] = ValueError(f"unknown email kind {name!r}")
                continue
            try:
                out.update(await kind.render(conn, group))
            except Exception as exc:
                for message in group:
                    out[message.id] = exc
        return out

    async def _record(
        self,
        conn: AsyncConnection,
        outcomes: list[tuple[Claimed, tuple[str, str | None]]],
    ) -> list[tuple[str, str]]:
        """Store each outcome and tell its kind; returns (kind, outcome) pairs for metrics."""
        now = utcnow()
        recorded: list[tuple[str, str]] = []
        sent_ids: list[int] = []
        final: dict[str, list[tuple[Claimed, str]]] = {}
        for message, (outcome, error) in outcomes:
            if outcome == "sent":
                # The common case, written below with one statement for the batch.
                sent_ids.append(message.id)
            elif outcome in ("failed", "cancelled"):
                await outbox.mark_unsent(conn, message.id, error=error, status=outcome)
            elif now - message.created_at > self.settings.outbox_give_up_after:
                error = f"gave up after {message.attempts} attempts: {error}"
                await outbox.mark_unsent(conn, message.id, error=error, status="failed")
                outcome = "failed"
            else:
                await outbox.mark_unsent(
                    conn,
                    message.id,
                    error=error,
                    next_attempt_at=now + self._backoff(message.attempts),
                )
            recorded.append((message.kind, outcome))
            if outcome in ("sent", "failed"):
                final.setdefault(message.kind, []).append((message, outcome))
        await outbox.mark_sent(conn, sent_ids, now)
        for name, group in final.items():
            kind = self.kinds.get(name)
            if kind is not None:
                await kind.delivered(conn, group, now)
        return recorded

    def _backoff(self, attempts: int) -> timedelta:
        base = min(
            2.0 ** max(attempts - 1, 0),
            self.settings.outbox_max_backoff.total_seconds(),
        )
        return timedelta(seconds=base * random.uniform(0.8, 1.2))
