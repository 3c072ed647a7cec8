"""Time helpers: every timestamp is UTC and rendered RFC 3339 with a Z suffix.

FOR TESTS ONLY: when AVARA_VIEWER_TEST_CLOCK_OFFSET_FILE names a file, `utcnow()` adds the
number of seconds written in it (re-read at most every 50 ms), so a test can step the
server's wall clock forwards and back while it runs. Never set it in production.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

_OFFSET_FILE = os.environ.get("AVARA_VIEWER_TEST_CLOCK_OFFSET_FILE") or None
_offset = (0.0, timedelta(0))  # (monotonic time read, offset)


def _test_offset(path: str) -> timedelta:
    global _offset
    read_at, offset = _offset
    now = time.monotonic()
    if now - read_at >= 0.05:
        try:
            with open(path) as f:
                offset = timedelta(seconds=float(f.read().strip() or 0))
        except (OSError, ValueError):
            offset = timedelta(0)
        _offset = (now, offset)
    return offset


def utcnow() -> datetime:
    if _OFFSET_FILE is not None:
        return datetime.now(UTC) + _test_offset(_OFFSET_FILE)
    return datetime.now(UTC)


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
