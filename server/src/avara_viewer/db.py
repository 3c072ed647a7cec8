"""Database engines, table metadata and the read/write paths shared by every domain.

An operation is `async def op(conn) -> T` written against SQLAlchemy's AsyncConnection API;
it never commits. `Database.write(op)` runs it in a transaction and returns after the commit;
`Database.read(op)` runs it on a read connection.

PostgreSQL: each operation runs on a pooled asyncpg connection in its own transaction.

SQLite: one writer task owns the only write connection. It takes every operation waiting in
its queue, runs them all in one transaction, each inside its own SAVEPOINT so one failure
does not undo the others, commits once (one fsync for many requests) and only then answers
the callers. The operations run on a plain sqlite3 connection through a thin stand-in for
AsyncConnection whose awaits complete at once: a batch's statements run back to back, never
waiting behind other requests on the event loop, and only BEGIN (which may wait for another
process's lock) and COMMIT (which waits for the disk) go to a thread. Invites of concurrent
requests are grouped further (`write_batched`): one statement per table for the group.
(SQLite's one write lock makes several writing connections slower, not faster.) Reads run
on pooled connections in worker threads, one thread hand-off per read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from .config import Settings

log = logging.getLogger("avara_viewer.db")

T = TypeVar("T")
P = TypeVar("P")
R = TypeVar("R")
Operation = Callable[[AsyncConnection], Awaitable[T]]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A UTC instant stored without zone (same on SQLite and PostgreSQL), read back aware."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def _sqlite_path(settings: Settings) -> str:
    url = settings.resolved_database_url
    return url.split(":///", 1)[1]


def make_sqlite_engine(settings: Settings) -> Engine:
    """A synchronous engine on the SQLite file: WAL, the configured durability, and
    transactions begun by SQLAlchemy (IMMEDIATE for the writer) so SAVEPOINTs work."""
    settings.ensure_data_dir()
    engine = create_engine(
        f"sqlite:///{_sqlite_path(settings)}", pool_size=8, max_overflow=8, pool_pre_ping=False
    )
    synchronous = settings.sqlite_synchronous

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.info.get("writer") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def make_async_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.resolved_database_url, pool_size=16, max_overflow=16, pool_pre_ping=True
    )


class _InlineResult:
    """What `await conn.stream(...)` gives, over a result that is already at hand."""

    def __init__(self, result: Any) -> None:
        self._result = result
        self._rows: Any = None

    def mappings(self) -> _InlineResult:
        return _InlineResult(self._result.mappings())

    def scalars(self) -> _InlineResult:
        return _InlineResult(self._result.scalars())

    def __aiter__(self) -> _InlineResult:
        return self

    async def __anext__(self) -> Any:
        if self._rows is None:
            self._rows = iter(self._result)
        try:
            return next(self._rows)
        except StopIteration:
            raise StopAsyncIteration from None

    async def all(self) -> list[Any]:
        return list(self._result.all())


class _InlineNested:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._tx: Any = None

    async def __aenter__(self) -> _InlineNested:
        self._tx = self._conn.begin_nested()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self._tx.commit()
        else:
            self._tx.rollback()


class InlineConnection:
    """Stands in for AsyncConnection over a synchronous connection in the current thread:
    every coroutine it returns finishes without suspending."""

    def __init__(self, sync_connection: Connection) -> None:
        self.sync_connection = sync_connection
        self.dialect = sync_connection.dialect
        self.info = sync_connection.info

    async def execute(self, statement: Any, parameters: Any = None, **kw: Any) -> Any:
        return self.sync_connection.execute(statement, parameters, **kw)

    async def exec_driver_sql(self, statement: str, parameters: Any = None, **kw: Any) -> Any:
        return self.sync_connection.exec_driver_sql(statement, parameters, **kw)

    async def scalar(self, statement: Any, parameters: Any = None, **kw: Any) -> Any:
        return self.sync_connection.scalar(statement, parameters, **kw)

    async def scalars(self, statement: Any, parameters: Any = None, **kw: Any) -> Any:
        return self.sync_connection.scalars(statement, parameters, **kw)

    async def stream(self, statement: Any, parameters: Any = None, **kw: Any) -> _InlineResult:
        return _InlineResult(self.sync_connection.execute(statement, parameters, **kw))

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return fn(self.sync_connection, *args, **kw)

    def begin_nested(self) -> _InlineNested:
        return _InlineNested(self.sync_connection)

    def in_transaction(self) -> bool:
        return self.sync_connection.in_transaction()


def run_inline(op: Operation[T], conn: Connection) -> T:
    """Drive op to completion in this thread; its awaits must all be database calls."""
    coro = op(InlineConnection(conn))  # type: ignore[arg-type]
    try:
        coro.send(None)  # type: ignore[attr-defined]
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()  # type: ignore[attr-defined]
    raise RuntimeError("a database operation awaited something other than the database")


class Batcher(Protocol[P, R]):
    """Runs many requests of one kind together: one statement per table for the whole group
    (executemany) instead of one per request. Returns one outcome per payload, in order: a
    value, or an exception for that payload alone (a business error such as a conflict). If
    `run` raises, the group is retried one payload at a time, each in its own SAVEPOINT."""

    async def run(self, conn: AsyncConnection, payloads: list[P]) -> list[R | Exception]: ...


async def _run_one(batcher: Batcher[P, R], conn: AsyncConnection, payload: P) -> R:
    [outcome] = await batcher.run(conn, [payload])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


class _Pending:
    __slots__ = ("batcher", "future", "op", "payload")

    def __init__(
        self,
        op: Operation[Any] | None,
        future: asyncio.Future[Any],
        batcher: Batcher[Any, Any] | None = None,
        payload: Any = None,
    ) -> None:
        self.op = op
        self.future = future
        self.batcher = batcher
        self.payload = payload


def _settle(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class Database:
    """The read and write paths (see the module docstring)."""

    max_batch = 512
    # PostgreSQL: batches in flight at once per kind, so one batch's commit overlaps the next.
    pg_batch_writers = 2

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.is_sqlite = settings.is_sqlite
        self.sync_engine: Engine | None = None
        self.engine: AsyncEngine | None = None
        if self.is_sqlite:
            self.sync_engine = make_sqlite_engine(settings)
        else:
            self.engine = make_async_engine(settings)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._busy = False
        self._pg_queues: dict[Any, asyncio.Queue[Any]] = {}
        self._pg_tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Nothing to do: the SQLite writer task starts with the first write."""

    async def close(self) -> None:
        for task in self._pg_tasks:
            task.cancel()
        for task in self._pg_tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pg_tasks.clear()
        if self._writer is not None:
            # Let queued and running batches commit: their callers are owed an answer.
            while (self._busy or not self._queue.empty()) and not self._writer.done():
                await asyncio.sleep(0.005)
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        if self.sync_engine is not None:
            self.sync_engine.dispose()
        if self.engine is not None:
            await self.engine.dispose()

    async def read(self, op: Operation[T]) -> T:
        if self.engine is not None:
            async with self.engine.connect() as conn:
                result = await op(conn)
                await conn.rollback()
                return result
        return await asyncio.to_thread(self._read_inline, op)

    def _read_inline(self, op: Operation[T]) -> T:
        assert self.sync_engine is not None
        with self.sync_engine.connect() as conn:
            try:
                return run_inline(op, conn)
            finally:
                conn.rollback()

    async def write(self, op: Operation[T]) -> T:
        """Run op in a transaction; return only after its commit is durable."""
        if self.engine is not None:
            async with self.engine.begin() as conn:
                return await op(conn)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._writer_queue().put_nowait(_Pending(op, future))
        return await future

    def _writer_queue(self) -> asyncio.Queue[_Pending]:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="avara-viewer-writer")
        return self._queue

    async def _write_loop(self) -> None:
        assert self.sync_engine is not None
        engine = self.sync_engine
        queue = self._queue
        conn: Connection | None = None
        while True:
            batch = [await queue.get()]
            self._busy = True
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                if conn is None:
                    conn = await asyncio.to_thread(engine.connect)
                    conn.info["writer"] = True
                # BEGIN IMMEDIATE may wait for another process's write lock, and COMMIT waits
                # for the disk: both run in a thread so the event loop keeps serving. The
                # operations in between are CPU work and run right here, without locks to
                # wait for and without handing the GIL back and forth with another thread.
                transaction = await asyncio.to_thread(conn.begin)
                try:
                    outcomes = self._run_batch(conn, batch)
                except BaseException:
                    await asyncio.to_thread(transaction.rollback)
                    raise
                await asyncio.to_thread(transaction.commit)
            except asyncio.CancelledError:
                for item in batch:
                    if not item.future.done():
                        item.future.cancel()
                if conn is not None:
                    conn.close()
                raise
            except Exception as exc:  # the commit failed: nobody in the batch is acknowledged
                log.exception("write batch of %d failed", len(batch))
                outcomes = [(item.future, False, exc) for item in batch]
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                    conn = None
            _settle(outcomes)
            self._busy = False

    def _run_batch(
        self, conn: Connection, batch: list[_Pending]
    ) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        results: dict[int, tuple[bool, Any]] = {}
        groups: dict[Any, list[int]] = {}
        for i, item in enumerate(batch):
            if item.future.cancelled():
                results[i] = (False, asyncio.CancelledError())
            elif item.batcher is not None:
                groups.setdefault(item.batcher, []).append(i)
            else:
                assert item.op is not None
                results[i] = _in_savepoint(conn, item.op)
        for batcher, indexes in groups.items():
            payloads = [batch[i].payload for i in indexes]
            ok, value = _in_savepoint(conn, lambda c, b=batcher, p=payloads: b.run(c, p))
            if ok:
                for i, outcome in zip(indexes, value, strict=True):
                    results[i] = (not isinstance(outcome, Exception), outcome)
                continue
            log.info("batch of %d failed as a whole (%s); one by one", len(indexes), value)
            for i in indexes:
                results[i] = _in_savepoint(
                    conn, lambda c, b=batcher, p=batch[i].payload: _run_one(b, c, p)
                )
        return [(item.future, *results[i]) for i, item in enumerate(batch)]

    async def write_batched(self, batcher: Batcher[P, R], payload: P) -> R:
        """Queue payload for batcher; return its outcome once the group's commit is durable."""
        if self.engine is None:
            future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            self._writer_queue().put_nowait(_Pending(None, future, batcher, payload))
            return await future
        queue_for = self._pg_queues.get(batcher)
        if queue_for is None:
            queue_for = self._pg_queues[batcher] = asyncio.Queue()
            for n in range(self.pg_batch_writers):
                self._pg_tasks.append(
                    asyncio.create_task(self._pg_batch_loop(batcher, queue_for), name=f"batch-{n}")
                )
        pg_future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        queue_for.put_nowait((payload, pg_future))
        return await pg_future

    async def _pg_batch_loop(self, batcher: Batcher[Any, Any], pending: asyncio.Queue[Any]) -> None:
        assert self.engine is not None
        engine = self.engine
        while True:
            group = [await pending.get()]
            while len(group) < self.max_batch and not pending.empty():
                group.append(pending.get_nowait())
            group = [(p, f) for p, f in group if not f.cancelled()]
            if not group:
                continue
            outcomes: list[tuple[bool, Any]]
            try:
                async with engine.begin() as conn:
                    values = await batcher.run(conn, [p for p, _ in group])
                outcomes = [(not isinstance(v, Exception), v) for v in values]
            except Exception as exc:
                log.info("batch of %d failed as a whole (%s); one by one", len(group), exc)
                outcomes = []
                for payload, _ in group:
                    try:
                        async with engine.begin() as conn:
                            outcomes.append((True, await _run_one(batcher, conn, payload)))
                    except Exception as one_exc:
                        outcomes.append((False, one_exc))
            _settle([(f, ok, v) for (_, f), (ok, v) in zip(group, outcomes, strict=True)])


def _in_savepoint(conn: Connection, op: Operation[Any]) -> tuple[bool, Any]:
    savepoint = conn.begin_nested()
    try:
        value = run_inline(op, conn)
    except Exception as exc:
        savepoint.rollback()
        return False, exc
    savepoint.commit()
    return True, value
