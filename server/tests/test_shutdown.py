"""Background loops end when stopped, even when stopped at the moment they are woken.

A server under SIGTERM cancels its email and webhook loops and waits for them. On Python
3.11 a loop that waited for its wakeup with asyncio.wait_for lost that cancellation when a
commit set the wakeup in the same instant, kept looping, and the server hung at "Waiting
for application shutdown" (seen in the webhook fault tests after a burst of deliveries).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest
from avara_viewer import aio


async def _stopped_as_woken(wait: object) -> bool:
    """Runs a wakeup loop, sets its event and cancels it in one instant: did it end?"""
    wakeup = asyncio.Event()

    async def loop() -> None:
        while True:
            wakeup.clear()
            await wait(wakeup)  # type: ignore[operator]

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    wakeup.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1.0)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    return bool(done)


async def test_a_loop_cancelled_as_its_wakeup_is_set_ends() -> None:
    async def wait(event: asyncio.Event) -> None:
        await aio.wait_event(event, 10)

    assert await _stopped_as_woken(wait)


async def test_wait_for_loses_that_cancellation_on_this_python() -> None:
    """Why aio exists: the same loop written with asyncio.wait_for does not end (3.11)."""
    import sys

    if sys.version_info >= (3, 12):
        pytest.skip("asyncio.wait_for keeps the cancellation from Python 3.12 on")

    async def wait(event: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), 10)

    assert not await _stopped_as_woken(wait)


async def test_wait_event_reports_a_set_event_and_a_timeout() -> None:
    event = asyncio.Event()
    started = time.monotonic()
    assert await aio.wait_event(event, 0.05) is False
    assert time.monotonic() - started >= 0.05
    event.set()
    assert await aio.wait_event(event, 10) is True


async def test_within_times_out_and_passes_results_through() -> None:
    assert await aio.within(asyncio.sleep(0, result="done"), 1) == "done"
    with pytest.raises(TimeoutError):
        await aio.within(asyncio.sleep(10), 0.05)


async def test_stop_ends_a_task_that_swallows_one_cancellation() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 1:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0.01)
    await aio.stop(task, grace=5)
    assert task.cancelled()
    assert swallowed == 2


async def test_stop_gives_up_after_its_grace_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def deaf() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)

    task = asyncio.create_task(deaf(), name="deaf-task")
    await asyncio.sleep(0.01)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="avara_viewer"):
        await aio.stop(task, grace=0.3)
    assert 0.3 <= time.monotonic() - started < 2
    assert "deaf-task did not stop within 0.3 s" in caplog.text
    release.set()
    task.cancel()
    await asyncio.wait({task}, timeout=1)
