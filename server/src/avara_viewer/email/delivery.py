"""The delivery loop: claims due outbox rows, has their kinds render them, sends them and
records the outcome (see outbox for the claims, kinds for what each kind of message does).

Delivery is at least once; these rules keep duplicates rare and bounded:
- A batch's sends end `batch_time` after its claim (the lease less a margin for recording),
  so a live process never sends under a lease that has run out; how many messages a claim
  takes follows what the previous batch could send in that time.
- When outcomes cannot be recorded (the database is down), they are held in memory and no
  new batch is claimed until they are: nothing is sent that could not be marked sent.
- Duplicates are counted (`avara_viewer_email_lease_lost_total`): a message another claim
  had already recorded as sent when this one records its send (the lease ran out: the
  process was paused, or recording came too late), counted by the second sender only; and a
  send cut off after its lease had run out, which the mail server may have taken.
- A process killed mid-send leaves its lease to expire and the message is sent again with
  the same Message-ID.

One slow mail conversation holds one connection, not the loop: once half a batch is done
the rest get a short grace (see _wait_most), then go on in the background while the next
batch is claimed for the free connections; at the batch's deadline a message still waiting
for a connection goes back to the queue, and one in a conversation has its lease renewed
and goes on (up to MAX_SEND_SECONDS), so even a uniformly slow server gets its mail.

A local transport (the Maildir, when no SMTP server is configured) has no conversations:
a claimed batch is built and handed to it whole (send_many), and its outcomes recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncConnection

from .. import aio
from ..clock import utcnow
from ..config import Settings
from ..db import Database
from ..db.faults import unavailable
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


# Longest one SMTP conversation may go on, its lease renewed, before it is cut off.
MAX_SEND_SECONDS = 300.0

# Told how many messages went out (or may have) twice after a lease ran out.
LeaseLostObserver = Callable[[int], None]

# A local transport's batch delivery (MaildirTransport.send_many): each message's error or None.
LocalBatchSend = Callable[..., Awaitable[list[Exception | None]]]


class DeliveryLoop:
    """Claims a batch, sends it on up to `smtp_max_connections` connections at once and
    records the outcomes (see the module docstring for the rules that bound duplicates)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        kinds: EmailKinds,
        wakeup: asyncio.Event | None = None,
        observe: OutcomeObserver | None = None,
        observe_lease_lost: LeaseLostObserver | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.kinds = kinds
        self.observe = observe
        self.observe_lease_lost = observe_lease_lost
        self.wakeup = wakeup or asyncio.Event()
        self.transport = transport_from_settings(settings.smtp_url, settings.data_dir)
        self.connections = max(1, settings.smtp_max_connections)
        self.batch_size = max(16, self.connections * 16)
        lease = self.lease_seconds = max(settings.outbox_lease.total_seconds(), 1.0)
        # Sends of a batch end this long after its claim; the rest of the lease is left for
        # recording the outcomes, so a live process never sends under an expired lease.
        self.batch_time = lease - min(5.0, lease / 4)
        # How many to claim next: what the last batches managed within batch_time.
        self._claim_limit = self.batch_size
        # Outcomes sent but not yet recorded (the database failed): no new claims until they
        # are, else every pass would send again what it cannot mark sent.
        self._unrecorded: list[tuple[Claimed, tuple[str, str | None]]] = []
        # Slow sends of earlier batches still running (they end by their batch's deadline).
        # Messages whose send was cut off after their lease had run out (the process was
        # paused): the mail server may have taken them, and another claim may send them again.
        self._overran: set[int] = set()
        self._late: set[asyncio.Task[None]] = set()
        # Messages in an SMTP conversation now (holding one of `connections` slots), and the
        # leases renewed for those that outlive their batch.
        self._slots: asyncio.Semaphore | None = None
        self._talking: set[int] = set()
        self._lease_of: dict[int, datetime] = {}
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
                except Exception as exc:
                    fault = unavailable(exc)
                    if fault is not None:
                        log.warning("email delivery paused: %s (%s)", fault.reason, fault.code)
                    else:
                        log.exception("email delivery pass failed; retrying shortly")
                    handled = 0
                if handled < self.batch_size:
                    if handled == 0:
                        await aio.wait_event(self.wakeup, self.settings.outbox_poll_interval)
                    # Let the emails of the next few invites join this pass: each pass costs
                    # two commits, which would otherwise be paid for nearly every invite.
                    await asyncio.sleep(self.settings.outbox_gather_delay)
                    self.wakeup.clear()
        finally:
            for task in list(self._late):
                await aio.stop(task, grace=2.0)
            await self.transport.aclose()

    async def run_once(self) -> int:
        """Claim one batch and deliver it; returns how many messages were handled."""
        if self._unrecorded:
            held, self._unrecorded = self._unrecorded, []
            await self._record_or_hold(held)
            if self._unrecorded:
                return 0
        free = self.connections - len(self._talking)
        if free <= 0:  # every connection is busy with slow sends of earlier batches
            return 0
        limit = max(free, min(self._claim_limit, self.batch_size * free // self.connections))
        claimed = await self.db.write(lambda conn: self._claim(conn, limit))
        if not claimed:
            return 0
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.batch_time
        rendered = await self.db.read(lambda conn: self._render_all(conn, claimed))
        send_many: LocalBatchSend | None = getattr(self.transport, "send_many", None)
        if send_many is not None:
            await self._record_or_hold(await self._deliver_locally(claimed, rendered, send_many))
            return len(claimed)
        tasks = {
            m.id: asyncio.create_task(
                self._deliver_by(m, rendered[m.id], deadline, started + self.lease_seconds)
            )
            for m in claimed
        }
        await _wait_most(list(tasks.values()), deadline)
        done = [m for m in claimed if tasks[m.id].done()]
        late = [m for m in claimed if not tasks[m.id].done()]
        # Size the next claim to what this batch could send in its time.
        elapsed = max(loop.time() - started, 1e-3)
        rate = len(done) / elapsed
        fits = int(rate * self.batch_time * 0.8)
        self._claim_limit = max(self.connections, min(self.batch_size, fits))
        if late:
            task = asyncio.create_task(self._finish_late(late, [tasks[m.id] for m in late]))
            self._late.add(task)
            task.add_done_callback(self._late.discard)
        await self._record_or_hold([(m, tasks[m.id].result()) for m in done])
        return len(claimed)

    async def _finish_late(
        self, messages: list[Claimed], tasks: list[asyncio.Task[tuple[str, str | None]]]
    ) -> None:
        results = await asyncio.gather(*tasks)
        await self._record_or_hold(list(zip(messages, results, strict=True)))

    async def _record_or_hold(self, outcomes: list[tuple[Claimed, tuple[str, str | None]]]) -> None:
        if not outcomes:
            return
        try:
            recorded, lost = await self.db.write(lambda conn: self._record(conn, outcomes))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            fault = unavailable(exc)
            log.warning(
                "outcomes of %d emails not recorded (%s); holding them, claiming nothing "
                "until they are",
                len(outcomes),
                fault.reason if fault is not None else f"{type(exc).__name__}: {exc}",
            )
            self._unrecorded.extend(outcomes)
            return
        for m, _ in outcomes:
            self._lease_of.pop(m.id, None)
        overran = [m.id for m, _ in outcomes if m.id in self._overran]
        self._overran.difference_update(overran)
        lost = sorted({*lost, *overran})
        if lost:
            log.warning(
                "%d emails were (or may have been) sent twice after a lease ran out: %s",
                len(lost),
                lost,
            )
            if self.observe_lease_lost is not None:
                self.observe_lease_lost(len(lost))
        if self.observe is not None:
            self.observe(recorded)

    async def _claim(self, conn: AsyncConnection, limit: int) -> list[Claimed]:
        now = utcnow()
        lease = timedelta(seconds=self.lease_seconds)
        return await outbox.claim(
            conn,
            now,
            limit=limit,
            lease_until=now + lease,
            skip_locked=not self.db.is_sqlite,
            horizon=max(self.settings.outbox_max_backoff, lease) * 1.2 + timedelta(seconds=1),
        )

    async def _deliver_by(
        self,
        message: Claimed,
        rendered: RenderedEmail | Exception,
        deadline: float,
        lease_end: float,
    ) -> tuple[str, str | None]:
        """_deliver within the lease: at the batch's deadline a message still waiting for a
        connection is put back (retry); one in a conversation has its lease renewed and goes
        on, a batch's time at a time, up to MAX_SEND_SECONDS. A send still running when its
        lease has run out (the process was paused) is cut off and counted."""
        loop = asyncio.get_running_loop()
        hard_end = loop.time() + max(MAX_SEND_SECONDS, self.batch_time)
        lease_until = message.lease_until
        task = asyncio.ensure_future(self._deliver(message, rendered))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=max(deadline - loop.time(), 0.0))
                if done:
                    return task.result()
                now = loop.time()
                if now >= lease_end:
                    self._overran.add(message.id)
                    why = "its lease ran out (the process was paused)"
                elif message.id not in self._talking:
                    why = "no connection was free within the batch's time"
                elif now >= hard_end:
                    why = f"the conversation took over {MAX_SEND_SECONDS} s"
                else:
                    renewed = utcnow() + timedelta(seconds=self.lease_seconds)
                    kept: bool | None
                    try:
                        kept = await self.db.write(
                            lambda conn, held=lease_until, new=renewed: outbox.renew_lease(
                                conn, message.id, held, new
                            )
                        )
                    except Exception as exc:
                        log.info("lease of email %d not renewed: %s", message.id, exc)
                        kept = None
                    if kept:
                        lease_until = self._lease_of[message.id] = renewed
                        lease_end = loop.time() + self.lease_seconds
                        deadline = loop.time() + self.batch_time
                        continue
                    if kept is None:
                        why = "its lease could not be renewed"
                    else:
                        # Another claim holds it now (this process was paused past its
                        # lease): the conversation being cut off may already have been
                        # taken by the mail server, so it counts as a possible duplicate.
                        self._overran.add(message.id)
                        why = "its lease was taken over (the process was paused)"
                log.info("email %d not sent: %s", message.id, why)
                return "retry", f"not sent: {why}"
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _build(self, message: Claimed, rendered: RenderedEmail | Exception) -> bytes:
        """The message's bytes; raises why it cannot be sent (see _outcome_of)."""
        if isinstance(rendered, Exception):
            raise rendered
        return build_message(
            mail_from=self.settings.mail_from,
            to=message.recipient,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=f"{message.kind}-{message.id}@{self._domain}",
        )

    def _outcome_of(self, message: Claimed, exc: Exception) -> tuple[str, str | None]:
        """(outcome, error) for a message that was not sent: cancelled, failed or retry."""
        if isinstance(exc, Superseded):
            return "cancelled", str(exc)
        if isinstance(exc, PermanentDeliveryError):
            log.warning("email %d refused permanently: %s", message.id, exc)
            return "failed", str(exc)[:1000]
        if isinstance(exc, ValueError):
            # The message cannot be built (e.g. an address the mail format cannot carry):
            # retrying cannot help.
            log.warning("email %d cannot be built: %s", message.id, exc)
            return "failed", f"cannot build message: {exc}"[:1000]
        if isinstance(exc, TemporaryDeliveryError):
            log.info("email %d delayed (attempt %d): %s", message.id, message.attempts, exc)
            return "retry", str(exc)[:1000]
        log.error("email %d could not be prepared", message.id, exc_info=exc)
        return "retry", f"{type(exc).__name__}: {exc}"[:1000]

    async def _deliver(
        self, message: Claimed, rendered: RenderedEmail | Exception
    ) -> tuple[str, str | None]:
        """Returns (outcome, error): outcome is sent, retry, failed or cancelled."""
        try:
            data = self._build(message, rendered)
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.connections)
            async with self._slots:
                self._talking.add(message.id)
                try:
                    await self.transport.send(
                        mail_from=self._mail_from_addr, rcpt=message.recipient, message=data
                    )
                finally:
                    self._talking.discard(message.id)
        except Exception as exc:
            return self._outcome_of(message, exc)
        return "sent", None

    async def _deliver_locally(
        self,
        messages: list[Claimed],
        rendered: dict[int, RenderedEmail | Exception],
        send_many: LocalBatchSend,
    ) -> list[tuple[Claimed, tuple[str, str | None]]]:
        """A batch handed to a local transport (the Maildir) at once: one thread hop and one
        directory fsync for the batch instead of one per message. No conversation can be
        slow here, so none of the per-message deadlines of _deliver_by apply."""
        outcomes: dict[int, tuple[str, str | None]] = {}
        ready: list[tuple[Claimed, bytes]] = []
        for message in messages:
            try:
                ready.append((message, self._build(message, rendered[message.id])))
            except Exception as exc:
                outcomes[message.id] = self._outcome_of(message, exc)
        if ready:
            errors = await send_many(
                mail_from=self._mail_from_addr,
                messages=[(message.recipient, data) for message, data in ready],
            )
            for (message, _), error in zip(ready, errors, strict=True):
                outcomes[message.id] = (
                    ("sent", None) if error is None else self._outcome_of(message, error)
                )
        return [(message, outcomes[message.id]) for message in messages]

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
    ) -> tuple[list[tuple[str, str]], list[int]]:
        """Store each outcome and tell its kind; returns (kind, outcome) pairs for metrics and
        the ids another claim had already sent (duplicates)."""
        now = utcnow()
        lost = await outbox.sent_by_another(
            conn, [m for m, (outcome, _) in outcomes if outcome == "sent"]
        )
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
                    lease_until=self._lease_of.get(message.id, message.lease_until),
                )
            recorded.append((message.kind, outcome))
            if outcome in ("sent", "failed"):
                final.setdefault(message.kind, []).append((message, outcome))
        await outbox.mark_sent(conn, sent_ids, now)
        for name, group in final.items():
            kind = self.kinds.get(name)
            if kind is not None:
                await kind.delivered(conn, group, now)
        return recorded, lost

    def _backoff(self, attempts: int) -> timedelta:
        # Never beyond outbox_max_backoff (+20 % jitter): outbox.claim's clock-step rule
        # relies on it.
        base = min(
            2.0 ** max(attempts - 1, 0),
            self.settings.outbox_max_backoff.total_seconds(),
        )
        return timedelta(seconds=base * random.uniform(0.8, 1.2))


async def _wait_most(tasks: list[asyncio.Task[Any]], deadline: float) -> None:
    """Wait for the tasks until the deadline, but once half of them are done give the rest
    only a grace of four times what that took (at least a second): one slow conversation
    then holds its own connection, not the next batch."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    pending = set(tasks)
    half_at: float | None = None
    while pending:
        now = loop.time()
        limit = deadline
        if len(pending) <= len(tasks) // 2:
            if half_at is None:
                half_at = now
            limit = min(deadline, half_at + max(1.0, 4 * (half_at - started)))
        if now >= limit:
            return
        _, pending = await asyncio.wait(
            pending, timeout=limit - now, return_when=asyncio.FIRST_COMPLETED
        )
