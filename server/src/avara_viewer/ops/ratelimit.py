"""Per-API-key rate limit: a fixed one-minute window, counted across every server process.

The request path never touches the database. Each process counts the requests it admits in
memory (`unsynced`); every `SYNC_SECONDS` one write adds those counts to the shared
`rate_limits` row of each key (an upsert) and reads back the global counts. A request is
admitted while the last global count it knows plus its own unsynced count is under the limit.

Bounded overshoot: one process alone enforces the limit exactly. With P processes, each may
admit requests the others have not yet heard of for at most one sync interval (plus the
write's latency), so a key can exceed the limit by at most what P-1 processes admit for it in
that time, and only in a window where it actually reaches the limit; e.g. at 600/min and
~250 ms it is a handful of requests, not another window's worth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from .. import aio
from ..db import Database
from ..errors import TooManyRequests
from .metrics import rate_limited_total
from .models import RateLimitWindow

log = logging.getLogger("avara_viewer.ratelimit")

table = RateLimitWindow.__table__

WINDOW_SECONDS = 60
SYNC_SECONDS = 0.25
_CHUNK = 500  # keys per statement, well under every backend's bound-parameter limit


class RateLimiter:
    def __init__(self, limit_per_minute: int, db: Database) -> None:
        self.limit = limit_per_minute
        self.db = db
        self._window = 0
        # Per key, in the current window: the global count as of the last sync, and what this
        # process admitted since then.
        self._known: dict[str, int] = {}
        self._unsynced: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_cleanup = 0.0

    def check(self, key_id: str) -> None:
        """Admit one request of key_id, or raise TooManyRequests (429 with Retry-After)."""
        if self.limit <= 0:
            return
        now = time.time()
        window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        if window != self._window:
            self._window = window
            self._known = {}
            self._unsynced = {}
        unsynced = self._unsynced.get(key_id, 0)
        if self._known.get(key_id, 0) + unsynced >= self.limit:
            rate_limited_total.inc()
            raise TooManyRequests(
                f"This API key is limited to {self.limit} requests a minute; "
                "retry after the number of seconds in Retry-After.",
                retry_after=math.ceil(window + WINDOW_SECONDS - now),
            )
        self._unsynced[key_id] = unsynced + 1
        self._known.setdefault(key_id, 0)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="avara-viewer-rate-limit-sync"
            )

    async def close(self) -> None:
        if self._task is not None:
            await aio.stop(self._task, grace=2.0)
            self._task = None
            with contextlib.suppress(Exception):
                await self.sync()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The counts stay unsynced and go with the next attempt.
                log.warning("rate limit sync failed", exc_info=True)

    async def sync(self) -> None:
        window = self._window
        keys = sorted(self._known)
        if not keys:
            return
        deltas = {k: n for k, n in self._unsynced.items() if n}
        now = time.monotonic()
        cleanup = now - self._last_cleanup > WINDOW_SECONDS
        counts = await self.db.write(_sync_op(window, keys, deltas, cleanup))
        if cleanup:
            self._last_cleanup = now
        if self._window != window:  # a new window began meanwhile; these counts are stale
            return
        for key, n in deltas.items():
            self._unsynced[key] -= n
        self._known.update(counts)


def _sync_op(window: int, keys: list[str], deltas: dict[str, int], cleanup: bool) -> Any:
    async def op(conn: AsyncConnection) -> dict[str, int]:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        items = sorted(deltas.items())  # one lock order for every process
        for i in range(0, len(items), _CHUNK):
            stmt = dialect.insert(table).values(
                [
                    {"key_id": key, "window_start": window, "count": n}
                    for key, n in items[i : i + _CHUNK]
                ]
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.key_id, table.c.window_start],
                set_={"count": table.c.count + stmt.excluded.count},
            )
            await conn.execute(stmt)
        counts: dict[str, int] = {}
        for i in range(0, len(keys), _CHUNK):
            rows = await conn.execute(
                select(table.c.key_id, table.c.count).where(
                    table.c.window_start == window, table.c.key_id.in_(keys[i : i + _CHUNK])
                )
            )
            counts.update({key: count for key, count in rows})
        if cleanup:
            await conn.execute(delete(table).where(table.c.window_start < window - WINDOW_SECONDS))
        return counts

    return op
