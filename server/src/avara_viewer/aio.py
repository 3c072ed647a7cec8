"""Waiting and stopping that never loses a cancellation.

On Python 3.11, `asyncio.wait_for` returns the awaited result when the waiting task is
cancelled at the moment the awaited thing finishes (CPython gh-86296): the cancellation is
dropped. A background loop that waits for its wakeup event that way and is stopped while a
commit sets the event goes on looping, and the server never finishes shutting down. Every
timed wait in this package goes through `within` (asyncio.timeout, which counts
cancellations and re-raises one that came from outside), and every background task is
stopped with `stop`, which is bounded even if a task swallows a cancellation anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("avara_viewer")


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """The awaitable's result; TimeoutError after `seconds` (None: no limit)."""
    async with asyncio.timeout(seconds):
        return await awaitable


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Waits until the event is set (True) or `seconds` pass (False)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
            return True
    return False


async def stop(task: asyncio.Task[object], *, grace: float = 10.0) -> None:
    """Cancels the task and waits for it to end, cancelling it again every half second.

    Gives up after `grace` seconds with an error in the log, so that a shutdown ends.
    """
    deadline = time.monotonic() + grace
    while not task.done():
        task.cancel()
        left = deadline - time.monotonic()
        if left <= 0:
            log.error("task %s did not stop within %g s; leaving it", task.get_name(), grace)
            return
        await asyncio.wait({task}, timeout=min(0.5, left))
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s ended with an error", task.get_name(), exc_info=task.exception())
