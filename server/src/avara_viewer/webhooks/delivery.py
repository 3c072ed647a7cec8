"""The webhook delivery loop: claims due deliveries, POSTs them signed, records each outcome;
and the sweeper that notices lapsed invitations (invitation.expired, once each).

Claims are leases (`lease_until` + `lease_token`), as in the email outbox: on PostgreSQL the
claim skips rows another process holds (FOR UPDATE SKIP LOCKED), on SQLite it runs under the
database's write lock, so each attempt is made by one process. A process killed mid-send
leaves its lease to expire and the delivery is sent again with the same `webhook-id`.

Order: a delivery is due only when no earlier delivery of the same user to the same endpoint
is still pending, so one user's events reach an endpoint in the order they happened (a
failing event holds back that user's later ones until it succeeds or is given up).

Each claimed delivery is sent and recorded on its own, so a slow receiver holds up neither
other endpoints nor the next claim; at most `MAX_IN_FLIGHT` are in flight per process.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import random
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Integer, Select, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .. import aio
from ..clock import utcnow
from ..config import Settings
from ..db import Database
from ..invitations.models import Invitation
from ..ops.metrics import record_webhook_attempt
from ..secretbox import SecretUnreadable
from . import emails, retention, signing
from .addresses import AddressRefused, GuardedTransport
from .models import WebhookAttempt, WebhookSweep
from .record import (
    Happened,
    deliveries_t,
    endpoints_t,
    events_t,
    record,
    register_wakeup,
    unregister_wakeup,
)

log = logging.getLogger("avara_viewer.webhooks")

attempts_t = WebhookAttempt.__table__
sweeps_t = WebhookSweep.__table__
invitations_t = Invitation.__table__

# Seconds to wait after the 1st, 2nd, ... failed attempt (Standard Webhooks' schedule); the
# attempt after the last wait is the last one.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
RETRY_AFTER_MAX = 86400
MAX_IN_FLIGHT = 32
# A receiver's answer is read up to this many bytes (the rest is never read), and this much
# of it is kept with the attempt for the integrator to see.
RESPONSE_READ_LIMIT = 4096
RESPONSE_SNIPPET = 512
SWEEP_BATCH = 500
USER_AGENT = "Avara-Viewer-Webhooks/1"


@dataclass(frozen=True)
class Claimed:
    seq: int
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    order_key: str
    round_attempts: int
    lease_token: str
    url: str
    body: str
    secret_sealed: str
    previous_sealed: str | None
    previous_until: datetime | None


@dataclass(frozen=True)
class Outcome:
    """succeeded (2xx), gone (410), retry (any other failure)."""

    kind: str
    attempted_at: datetime
    seconds: float
    status: int | None = None
    error: str | None = None
    snippet: str | None = None
    retry_after: float | None = None


async def backlog(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many deliveries wait for enabled endpoints, and when the oldest was queued."""
    row = (
        await conn.execute(
            select(func.count(), func.min(deliveries_t.c.created_at))
            .select_from(
                deliveries_t.join(endpoints_t, endpoints_t.c.id == deliveries_t.c.endpoint_id)
            )
            .where(deliveries_t.c.status == "pending", endpoints_t.c.enabled.is_(True))
        )
    ).one()
    return int(row[0]), row[1]


def retry_delay(settings: Settings, round_attempts: int) -> timedelta:
    """The wait after the `round_attempts`-th failed attempt: the schedule, with jitter."""
    base = RETRY_SCHEDULE[min(round_attempts, len(RETRY_SCHEDULE)) - 1]
    return timedelta(seconds=base * settings.webhook_retry_scale * random.uniform(0.8, 1.2))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date), bounded; None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - utcnow()).total_seconds()
    return min(max(seconds, 1.0), RETRY_AFTER_MAX)


def _due_query(skip_locked: bool) -> Select[tuple[int]]:
    """Due deliveries (bound: now, limit), oldest first, one per (endpoint, order key) in
    order. Built once: building it costs more than running it (the alias's columns)."""
    d = deliveries_t
    earlier = deliveries_t.alias("earlier")
    now = bindparam("now")
    earlier_pending = (
        select(earlier.c.seq)
        .where(
            earlier.c.endpoint_id == d.c.endpoint_id,
            earlier.c.order_key == d.c.order_key,
            earlier.c.seq < d.c.seq,
            earlier.c.status == "pending",
        )
        .exists()
    )
    endpoint_enabled = (
        select(endpoints_t.c.id)
        .where(endpoints_t.c.id == d.c.endpoint_id, endpoints_t.c.enabled.is_(True))
        .exists()
    )
    due = (
        select(d.c.seq)
        .where(
            d.c.status == "pending",
            d.c.next_attempt_at <= now,
            or_(d.c.lease_until.is_(None), d.c.lease_until < now),
            endpoint_enabled,
            ~earlier_pending,
        )
        .order_by(d.c.next_attempt_at, d.c.seq)
        .limit(bindparam("limit", type_=Integer))
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True, of=d)
    return due


_due = _due_query(skip_locked=False)
_due_skip_locked = _due_query(skip_locked=True)


class WebhookLoop:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.wakeup = asyncio.Event()
        # A lease outlives the longest attempt (and its recording), so no other process
        # starts the same one.
        self.lease = max(settings.webhook_lease, timedelta(seconds=2 * settings.webhook_timeout))
        self._in_flight: set[asyncio.Task[None]] = set()
        # Finished attempts waiting to be recorded (by _record_outcomes, several per commit).
        self._outcomes: list[tuple[Claimed, Outcome]] = []
        self._outcomes_ready = asyncio.Event()
        self._client: httpx.AsyncClient | None = None

    def _make_client(self) -> httpx.AsyncClient:
        # httpx logs every request at INFO: a line per delivery, with the endpoint's URL.
        # Our own log names each failed attempt; successes are counted in the metrics.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        return httpx.AsyncClient(
            transport=GuardedTransport(
                allow_private=self.settings.webhook_allow_private, max_connections=MAX_IN_FLIGHT
            ),
            timeout=httpx.Timeout(self.settings.webhook_timeout),
            follow_redirects=False,
            trust_env=False,
        )

    async def run(self) -> None:
        log.info("webhook delivery started")
        register_wakeup(self.wakeup)
        self._client = self._make_client()
        recorder = asyncio.create_task(self._record_outcomes(), name="webhook-outcomes")
        next_sweep = 0.0
        try:
            while True:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.settings.webhook_sweep_interval
                    await self._sweep()
                self.wakeup.clear()
                claimed = await self._claim_some()
                if claimed and len(self._in_flight) < MAX_IN_FLIGHT:
                    continue  # there may be more due
                await aio.wait_event(
                    self.wakeup,
                    min(
                        self.settings.webhook_poll_interval,
                        max(next_sweep - time.monotonic(), 0.0),
                    ),
                )
                if not claimed:
                    # Woken by a commit: its rows may become visible a moment later
                    # (PostgreSQL), and the next few changes can join the same claim.
                    await asyncio.sleep(self.settings.outbox_gather_delay)
        finally:
            unregister_wakeup(self.wakeup)
            for task in [*self._in_flight, recorder]:
                await aio.stop(task, grace=2.0)
            await self._client.aclose()

    async def _sweep(self) -> None:
        try:
            while await self.db.write(self._sweep_expired) == SWEEP_BATCH:
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("invitation expiry sweep failed; retrying at the next sweep")
        older_than = utcnow() - self.settings.webhook_retention
        try:
            while (
                await self.db.write(lambda conn: retention.prune(conn, older_than, SWEEP_BATCH))
                == SWEEP_BATCH
            ):
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deleting old webhook deliveries failed; retrying at the next sweep")

    async def _claim_some(self) -> list[Claimed]:
        room = MAX_IN_FLIGHT - len(self._in_flight)
        if room <= 0:
            return []
        try:
            claimed = await self.db.write(lambda conn: self._claim(conn, room))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("claiming webhook deliveries failed; retrying shortly")
            return []
        for delivery in claimed:
            task = asyncio.create_task(self._attempt(delivery), name=f"webhook-{delivery.id}")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return claimed

    async def _claim(self, conn: AsyncConnection, limit: int) -> list[Claimed]:
        now = utcnow()
        d = deliveries_t
        due = _due_skip_locked if not self.db.is_sqlite else _due
        seqs = list((await conn.execute(due, {"now": now, "limit": limit})).scalars())
        if not seqs:
            return []
        token = secrets.token_hex(16)
        await conn.execute(
            update(d)
            .where(d.c.seq.in_(seqs))
            .values(
                lease_until=now + self.lease,
                lease_token=token,
                attempts=d.c.attempts + 1,
                round_attempts=d.c.round_attempts + 1,
            )
        )
        rows = await conn.execute(
            select(
                d.c.seq,
                d.c.id,
                d.c.endpoint_id,
                d.c.event_id,
                d.c.event_type,
                d.c.order_key,
                d.c.round_attempts,
                endpoints_t.c.url,
                events_t.c.body,
                endpoints_t.c.secret_sealed,
                endpoints_t.c.previous_secret_sealed,
                endpoints_t.c.previous_secret_until,
            )
            .join(endpoints_t, endpoints_t.c.id == d.c.endpoint_id)
            .join(events_t, events_t.c.id == d.c.event_id)
            .where(d.c.seq.in_(seqs))
            .order_by(d.c.seq)
        )
        return [
            Claimed(
                seq=r.seq,
                id=r.id,
                endpoint_id=r.endpoint_id,
                event_id=r.event_id,
                event_type=r.event_type,
                order_key=r.order_key,
                round_attempts=r.round_attempts,
                lease_token=token,
                url=r.url,
                body=r.body,
                secret_sealed=r.secret_sealed,
                previous_sealed=r.previous_secret_sealed,
                previous_until=r.previous_secret_until,
            )
            for r in rows
        ]

    def _secrets(self, delivery: Claimed, now: datetime) -> list[str]:
        key = self.settings.resolved_secret_key
        found = [signing.unseal(key, delivery.endpoint_id, delivery.secret_sealed)]
        if delivery.previous_sealed and delivery.previous_until and delivery.previous_until > now:
            found.append(signing.unseal(key, delivery.endpoint_id, delivery.previous_sealed))
        return found

    async def _post(self, delivery: Claimed, started: datetime) -> tuple[int, str, str | None]:
        assert self._client is not None
        body = delivery.body.encode()
        headers = signing.headers(
            self._secrets(delivery, started), delivery.event_id, int(started.timestamp()), body
        )
        headers.update(
            {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                # Read as sent: a compressed answer could expand far beyond what we read.
                "accept-encoding": "identity",
            }
        )
        async with self._client.stream("POST", delivery.url, content=body, headers=headers) as r:
            received = bytearray()
            async for chunk in r.aiter_raw():
                received += chunk
                if len(received) >= RESPONSE_READ_LIMIT:
                    break
        snippet = bytes(received[:RESPONSE_SNIPPET]).decode("utf-8", "replace")
        return r.status_code, snippet, r.headers.get("retry-after")

    async def _attempt(self, delivery: Claimed) -> None:
        started = utcnow()
        clock = time.monotonic()
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange.
            status, snippet, retry_after = await aio.within(
                self._post(delivery, started), self.settings.webhook_timeout
            )
        except TimeoutError:
            limit = self.settings.webhook_timeout
            outcome = self._failed(started, clock, f"timed out after {limit:g} s")
        except AddressRefused as exc:
            outcome = self._failed(started, clock, f"address refused: {exc}")
        except SecretUnreadable:
            outcome = self._failed(
                started, clock, "the signing secret does not open with this server's secret key"
            )
        except httpx.HTTPError as exc:
            outcome = self._failed(started, clock, f"{type(exc).__name__}: {exc}"[:500])
        else:
            seconds = time.monotonic() - clock
            if 200 <= status < 300:
                outcome = Outcome("succeeded", started, seconds, status, snippet=snippet)
            elif status == 410:
                error = "410 Gone: the endpoint was disabled"
                outcome = Outcome("gone", started, seconds, status, error, snippet)
            else:
                error = f"HTTP {status}"
                if 300 <= status < 400:
                    error += " (redirects are not followed)"
                wait = parse_retry_after(retry_after) if status in (429, 503) else None
                outcome = Outcome("retry", started, seconds, status, error, snippet, wait)
        self._outcomes.append((delivery, outcome))
        self._outcomes_ready.set()
        self.wakeup.set()  # room for another claim

    async def _record_outcomes(self) -> None:
        """Store the outcomes of finished attempts, as many as are ready in one transaction."""
        while True:
            await self._outcomes_ready.wait()
            self._outcomes_ready.clear()
            batch, self._outcomes = self._outcomes, []
            try:
                kinds = await self.db.write(functools.partial(self._record_all, batch=batch))
            except asyncio.CancelledError:
                raise
            except Exception:
                # The leases lapse and these deliveries are attempted again.
                log.exception("recording %d webhook outcomes failed", len(batch))
                continue
            for (delivery, outcome), kind in zip(batch, kinds, strict=True):
                record_webhook_attempt(kind, outcome.seconds)
                if kind != "succeeded":
                    log.info(
                        "webhook %s to endpoint %s: %s (%s)",
                        delivery.id,
                        delivery.endpoint_id,
                        kind,
                        outcome.error,
                    )
            # These users' next events to their endpoints may be due now.
            self.wakeup.set()

    async def _record_all(
        self, conn: AsyncConnection, batch: list[tuple[Claimed, Outcome]]
    ) -> list[str]:
        return [await self._record(conn, delivery, outcome) for delivery, outcome in batch]

    @staticmethod
    def _failed(started: datetime, clock: float, error: str) -> Outcome:
        return Outcome("retry", started, time.monotonic() - clock, error=error)

    async def _record(self, conn: AsyncConnection, delivery: Claimed, outcome: Outcome) -> str:
        """Store the attempt and what follows from it; returns the outcome for the metrics."""
        now = utcnow()
        d = deliveries_t
        e = endpoints_t
        values: dict[str, Any] = {
            "lease_until": None,
            "lease_token": None,
            "response_status": outcome.status,
            "last_error": outcome.error,
            "last_attempt_at": outcome.attempted_at,
        }
        kind = outcome.kind
        if kind == "succeeded":
            values.update(status="succeeded", delivered_at=now)
        elif kind == "gone":
            # Kept pending: if the endpoint is enabled again, the delivery goes out then.
            values.update(next_attempt_at=now)
        elif delivery.round_attempts >= MAX_ATTEMPTS:
            kind = "failed"
            values.update(
                status="failed",
                last_error=f"gave up after {delivery.round_attempts} attempts: {outcome.error}",
            )
        else:
            wait = retry_delay(self.settings, delivery.round_attempts)
            if outcome.retry_after is not None:
                wait = timedelta(seconds=outcome.retry_after)
            values.update(next_attempt_at=now + wait)
        await conn.execute(
            attempts_t.insert().values(
                delivery_seq=delivery.seq,
                attempted_at=outcome.attempted_at,
                response_status=outcome.status,
                latency_ms=round(outcome.seconds * 1000),
                error=outcome.error,
                response_snippet=outcome.snippet,
            )
        )
        await conn.execute(
            update(d)
            .where(d.c.seq == delivery.seq, d.c.lease_token == delivery.lease_token)
            .values(**values)
        )
        # The same user's later deliveries to this endpoint wait behind this one. Keep them
        # from being due before it is (so a claim never scans a backlog it cannot take), and
        # release them once it is done.
        followers = update(d).where(
            d.c.endpoint_id == delivery.endpoint_id,
            d.c.order_key == delivery.order_key,
            d.c.seq > delivery.seq,
            d.c.status == "pending",
        )
        if kind in ("succeeded", "failed"):
            await conn.execute(
                followers.where(d.c.next_attempt_at > now).values(next_attempt_at=now)
            )
        elif kind == "retry":
            later = values["next_attempt_at"]
            await conn.execute(
                followers.where(d.c.next_attempt_at < later).values(next_attempt_at=later)
            )
        if kind == "succeeded":
            await conn.execute(
                update(e)
                .where(e.c.id == delivery.endpoint_id, e.c.failing_since.is_not(None))
                .values(failing_since=None)
            )
        elif kind == "gone":
            reason = "The endpoint answered 410 Gone."
            gone = await conn.execute(
                update(e)
                .where(e.c.id == delivery.endpoint_id, e.c.enabled.is_(True))
                .values(enabled=False, disabled_reason=reason, updated_at=now)
            )
            if gone.rowcount:
                await _tell_admins(conn, delivery.endpoint_id, reason, now)
            log.warning("webhook endpoint %s answered 410: disabled", delivery.endpoint_id)
        else:
            await self._note_failure(conn, delivery.endpoint_id, outcome.attempted_at, now)
        return kind

    async def _note_failure(
        self, conn: AsyncConnection, endpoint_id: str, attempted_at: datetime, now: datetime
    ) -> None:
        """Start the endpoint's failing clock; disable it once it has failed for too long."""
        e = endpoints_t
        await conn.execute(
            update(e)
            .where(e.c.id == endpoint_id, e.c.failing_since.is_(None))
            .values(failing_since=attempted_at)
        )
        limit = self.settings.webhook_disable_after
        reason = (
            f"Every delivery failed for {_describe(limit)}; the endpoint was disabled. "
            "Enable it again to resume delivery."
        )
        disabled = await conn.execute(
            update(e)
            .where(e.c.id == endpoint_id, e.c.enabled.is_(True), e.c.failing_since <= now - limit)
            .values(enabled=False, disabled_reason=reason, updated_at=now)
        )
        if disabled.rowcount:
            await _tell_admins(conn, endpoint_id, reason, now)
            log.warning("webhook endpoint %s failed for %s: disabled", endpoint_id, limit)

    async def _sweep_expired(self, conn: AsyncConnection) -> int:
        """Announce invitations that lapsed since the last sweep; returns how many."""
        now = utcnow()
        mark_query = select(sweeps_t.c.watermark_at, sweeps_t.c.watermark_id).where(
            sweeps_t.c.name == "invitation_expiry"
        )
        if not self.db.is_sqlite:
            # Another process is sweeping right now: leave it to them.
            mark_query = mark_query.with_for_update(skip_locked=True)
        mark = (await conn.execute(mark_query)).first()
        if mark is None:
            return 0
        i = invitations_t
        lapsed = (
            await conn.execute(
                select(i.c.id, i.c.clinic_id, i.c.expiry)
                .where(
                    i.c.status == "sent",
                    i.c.expiry <= now,
                    or_(
                        i.c.expiry > mark.watermark_at,
                        and_(i.c.expiry == mark.watermark_at, i.c.id > mark.watermark_id),
                    ),
                )
                .order_by(i.c.expiry, i.c.id)
                .limit(SWEEP_BATCH)
            )
        ).all()
        if not lapsed:
            return 0
        await record(
            conn,
            [Happened(r.clinic_id, "invitation.expired", "invitation", r.id, now) for r in lapsed],
        )
        last = lapsed[-1]
        await conn.execute(
            update(sweeps_t)
            .where(sweeps_t.c.name == "invitation_expiry")
            .values(watermark_at=last.expiry, watermark_id=last.id)
        )
        return len(lapsed)


async def _tell_admins(conn: AsyncConnection, endpoint_id: str, reason: str, now: datetime) -> None:
    """Queue the email to the clinic's admins about an endpoint just disabled automatically."""
    row = (
        await conn.execute(
            select(endpoints_t.c.clinic_id, endpoints_t.c.url).where(
                endpoints_t.c.id == endpoint_id
            )
        )
    ).first()
    if row is not None:
        await emails.notify_admins(conn, row.clinic_id, endpoint_id, row.url, reason, now)


def _describe(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    return f"{seconds} seconds"
