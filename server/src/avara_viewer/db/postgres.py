"""PostgreSQL: pooled asyncpg connections, one transaction per operation, and the batch loops
of write_batched; with `check_operations`, every operation is run under the await rule.

The await rule (db.base) matters only to SQLite's writer, so breaking it would pass here
unnoticed. When checked, an operation gets a proxy of its connection that marks when a
database call is in progress, and is driven by a wrapper that raises RuntimeError the moment
the operation suspends outside one.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Generator
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .. import aio
from ..config import Settings
from .base import Batcher, Database, Operation, P, R, T, run_one, settle
from .faults import lost_to_another

log = logging.getLogger("avara_viewer.db")

# Runs of a write that PostgreSQL aborted for a deadlock or serialization failure.
CONFLICT_ATTEMPTS = 3


def _ms(value: timedelta) -> str:
    return str(int(value.total_seconds() * 1000))


def make_async_engine(settings: Settings, *, session_limits: bool = True) -> AsyncEngine:
    """Pooled asyncpg connections with the session limits of the settings (see config), and a
    bounded wait for a connection: a database that is down answers 503 in seconds. Migrations
    go without the limits: a schema change may rightly run long."""
    limits = {
        "statement_timeout": _ms(settings.pg_statement_timeout),
        "lock_timeout": _ms(settings.pg_lock_timeout),
        "idle_in_transaction_session_timeout": _ms(settings.pg_idle_in_transaction_timeout),
    }
    return create_async_engine(
        settings.resolved_database_url,
        pool_size=16,
        max_overflow=16,
        pool_pre_ping=True,
        pool_timeout=settings.pg_connect_timeout.total_seconds(),
        connect_args={
            "timeout": settings.pg_connect_timeout.total_seconds(),
            "server_settings": limits if session_limits else {},
        },
    )


class PostgresDatabase(Database):
    """Each operation on a pooled connection in its own transaction; concurrent payloads of a
    Batcher are grouped by a few loops per batcher (see write_batched)."""

    is_sqlite = False
    # Batches in flight at once per batcher, so one batch's commit overlaps the next.
    batch_writers = 2

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_async_engine(settings)
        self._check = settings.check_operations
        self._queues: dict[Any, asyncio.Queue[Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Nothing to do: the pool connects on first use, batch loops start with their batcher."""

    async def close(self) -> None:
        for task in self._tasks:
            await aio.stop(task, grace=5.0)
        self._tasks.clear()
        await self.engine.dispose()

    async def _run(self, op: Operation[T], conn: AsyncConnection) -> T:
        if self._check:
            return await run_checked(op, conn)
        return await op(conn)

    async def read(self, op: Operation[T]) -> T:
        async with self.engine.connect() as conn:
            result = await self._run(op, conn)
            await conn.rollback()
            return result

    async def write(self, op: Operation[T]) -> T:
        """A transaction PostgreSQL aborted for a deadlock or a serialization failure with a
        concurrent one (nothing of it kept) runs again, up to CONFLICT_ATTEMPTS times in all;
        an operation is a function of its connection, so a second run starts afresh."""
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                async with self.engine.begin() as conn:
                    return await self._run(op, conn)
            except DBAPIError as exc:
                if attempt == CONFLICT_ATTEMPTS or not lost_to_another(exc):
                    raise
                log.info("transaction lost to a concurrent one (%s); running it again", exc.orig)
                await asyncio.sleep(random.uniform(0.01, 0.05) * attempt)
        raise AssertionError("unreachable")

    async def probe_write(self) -> None:
        # Assigning a transaction id makes the commit write a WAL record.
        await self.write(lambda conn: conn.execute(text("SELECT txid_current()")))

    async def write_batched(self, batcher: Batcher[P, R], payload: P) -> R:
        queue = self._queues.get(batcher)
        if queue is None:
            queue = self._queues[batcher] = asyncio.Queue()
            for n in range(self.batch_writers):
                self._tasks.append(
                    asyncio.create_task(self._batch_loop(batcher, queue), name=f"batch-{n}")
                )
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        queue.put_nowait((payload, future))
        return await future

    async def _batch_loop(self, batcher: Batcher[Any, Any], pending: asyncio.Queue[Any]) -> None:
        engine = self.engine
        while True:
            group = [await pending.get()]
            while len(group) < self.max_batch and not pending.empty():
                group.append(pending.get_nowait())
            group = [(p, f) for p, f in group if not f.cancelled()]
            if not group:
                continue
            outcomes: list[tuple[bool, Any]]
            payloads = [p for p, _ in group]
            try:
                async with engine.begin() as conn:
                    values = await self._run(lambda c, p=payloads: batcher.run(c, p), conn)
                outcomes = [(not isinstance(v, Exception), v) for v in values]
            except Exception as exc:
                log.info("batch of %d failed as a whole (%s); one by one", len(group), exc)
                outcomes = []
                for payload in payloads:
                    try:
                        async with engine.begin() as conn:
                            value = await self._run(
                                lambda c, p=payload: run_one(batcher, c, p), conn
                            )
                        outcomes.append((True, value))
                    except Exception as one_exc:
                        outcomes.append((False, one_exc))
            settle([(f, ok, v) for (_, f), (ok, v) in zip(group, outcomes, strict=True)])


# --- the await rule, checked ------------------------------------------------------------------


class _Calls:
    """How many database calls of one operation are in progress (0 or 1 in practice)."""

    __slots__ = ("depth",)

    def __init__(self) -> None:
        self.depth = 0

    async def marked(self, awaitable: Awaitable[T]) -> T:
        self.depth += 1
        try:
            return await awaitable
        finally:
            self.depth -= 1


class _CheckedAwaitables:
    """A proxy whose coroutine methods run as marked database calls (a connection, a streamed
    result); what they return is proxied the same way when it can be awaited further."""

    def __init__(self, target: Any, calls: _Calls) -> None:
        self._target = target
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        calls = self._calls

        async def call(*args: Any, **kw: Any) -> Any:
            return _checked(await calls.marked(attr(*args, **kw)), calls)

        return call


class _CheckedResult(_CheckedAwaitables):
    """A streamed result (`await conn.stream(...)`): fetching its rows is a database call."""

    def mappings(self) -> _CheckedResult:
        return _CheckedResult(self._target.mappings(), self._calls)

    def scalars(self, index: int = 0) -> _CheckedResult:
        return _CheckedResult(self._target.scalars(index), self._calls)

    def __aiter__(self) -> _CheckedResult:
        return self

    async def __anext__(self) -> Any:
        return await self._calls.marked(self._target.__anext__())


class _CheckedStartable:
    """What `conn.stream(...)` and `conn.begin_nested()` give: awaited, or used with
    `async with`; either way a database call, and a streamed result is proxied too."""

    def __init__(self, target: Any, calls: _Calls) -> None:
        self._target = target
        self._calls = calls

    def __await__(self) -> Generator[Any, None, Any]:
        return self._start().__await__()

    async def _start(self) -> Any:
        return _checked(await self._calls.marked(self._target), self._calls)

    async def __aenter__(self) -> Any:
        return _checked(await self._calls.marked(self._target.__aenter__()), self._calls)

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._calls.marked(self._target.__aexit__(*exc))


class _CheckedConnection(_CheckedAwaitables):
    def stream(self, *args: Any, **kw: Any) -> _CheckedStartable:
        return _CheckedStartable(self._target.stream(*args, **kw), self._calls)

    def stream_scalars(self, *args: Any, **kw: Any) -> _CheckedStartable:
        return _CheckedStartable(self._target.stream_scalars(*args, **kw), self._calls)

    def begin_nested(self) -> _CheckedStartable:
        return _CheckedStartable(self._target.begin_nested(), self._calls)


def _checked(value: Any, calls: _Calls) -> Any:
    # Results of execute() are buffered (plain objects); only streamed ones await again.
    if hasattr(value, "__anext__") and not isinstance(value, _CheckedResult):
        return _CheckedResult(value, calls)
    return value


class _Driven:
    """Awaits an operation's coroutine step by step, like `await coro`, but refuses each
    suspension that happens outside a database call: RuntimeError is thrown into the operation
    there, so its cleanup (a SAVEPOINT's rollback, say) still runs on the connection, and the
    operation fails with it whatever it does with the error."""

    def __init__(self, coro: Coroutine[Any, Any, T], calls: _Calls) -> None:
        self._coro = coro
        self._calls = calls

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, calls = self._coro, self._calls
        sent: Any = None
        thrown: BaseException | None = None
        broken: RuntimeError | None = None
        while True:
            try:
                yielded = coro.throw(thrown) if thrown is not None else coro.send(sent)
            except StopIteration as stop:
                if broken is not None:
                    raise broken from None
                return stop.value
            if calls.depth == 0:
                if broken is not None:  # suspended outside the database again: give up on it
                    coro.close()
                    raise broken
                broken = RuntimeError(
                    "a database operation awaited something other than the database "
                    "(see the await rule in db.base)"
                )
                sent, thrown = None, broken
                continue
            try:
                sent, thrown = (yield yielded), None
            except BaseException as exc:  # cancellation, delivered to the operation
                sent, thrown = None, exc


async def run_checked(op: Callable[[Any], Awaitable[T]], conn: AsyncConnection) -> T:
    """Run op on conn under the await rule: RuntimeError if it suspends on anything else."""
    calls = _Calls()
    coro = cast(Coroutine[Any, Any, T], op(_CheckedConnection(conn, calls)))
    result: T = await _Driven(coro, calls)
    return result
