"""SQLite: the single-writer path, and InlineConnection on which its operations run.

One writer task owns the only write connection. It takes every operation waiting in its
queue, runs them all in one transaction, each inside its own SAVEPOINT so one failure does
not undo the others (a batch that is one group alone runs without one: _lone_group), commits
once (one fsync for many requests) and only then answers the callers. The operations run on a
plain sqlite3 connection through a thin stand-in for AsyncConnection whose awaits complete at
once (hence the await rule of db.base): a batch's statements run back to back, never waiting
behind other requests on the event loop, and only BEGIN (which may wait for another process's
lock) and COMMIT (which waits for the disk) go to a thread. Payloads of one Batcher in a batch
run together: one statement per table for the group. (SQLite's one write lock makes several
writing connections slower, not faster.) Reads run on pooled connections in worker threads,
one thread hand-off per read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from sqlalchemy import Boolean, Engine, Table, create_engine, event, text
from sqlalchemy.engine import Connection

from .. import aio
from ..config import Settings
from .base import Batcher, Database, Operation, P, R, T, UTCDateTime, run_one, settle

log = logging.getLogger("avara_viewer.db")


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

    def insert_rows(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """db.base.insert_rows on SQLite: one executemany of plain SQL and tuples, each value
        through its column type's bind processor, as SQLAlchemy would send them."""
        keys = tuple(rows[0])
        plan = _insert_plan(table, keys, self.dialect)
        if plan is None or any(len(row) != len(keys) for row in rows):
            self.sync_connection.execute(table.insert(), rows)
            return
        sql, processors = plan
        # Built column by column (map and zip run in C); a processor that gives equal values
        # the same text (_SAME_TEXT) runs once per distinct value of the call, shared by the
        # columns of its type: a group's rows carry the same few instants and booleans.
        columns = []
        seen: dict[Any, dict[Any, Any]] = {}
        for key, (process, kind) in zip(keys, processors, strict=True):
            values = list(map(itemgetter(key), rows))
            if process is not None:
                if kind is None:
                    values = list(map(process, values))
                else:
                    done = seen.setdefault(kind, {})
                    for value in set(values).difference(done):
                        done[value] = process(value)
                    values = list(map(done.__getitem__, values))
            columns.append(values)
        self.sync_connection.exec_driver_sql(sql, list(zip(*columns, strict=True)))

    def begin_nested(self) -> _InlineNested:
        return _InlineNested(self.sync_connection)

    def in_transaction(self) -> bool:
        return self.sync_connection.in_transaction()


# Column types whose bind processor gives equal values the same text (so it may run once per
# distinct value): True and 1, or one instant in two time zones, are stored alike.
_SAME_TEXT = (UTCDateTime, Boolean)

_Processor = tuple[Callable[[Any], Any] | None, type | None]
_plans: dict[tuple[Table, tuple[str, ...]], tuple[str, list[_Processor]] | None] = {}


def _insert_plan(
    table: Table, keys: tuple[str, ...], dialect: Any
) -> tuple[str, list[_Processor]] | None:
    """The INSERT of these columns and, per column, its bind processor and the _SAME_TEXT type
    it belongs to; None when a column left out has a default SQLAlchemy would fill in (that
    insert goes through SQLAlchemy)."""
    key = (table, keys)
    if key in _plans:
        return _plans[key]
    plan: tuple[str, list[_Processor]] | None = None
    columns = [table.c[k] for k in keys]
    left_out = [c for c in table.columns if c.key not in keys]
    if all(c.default is None and c.onupdate is None for c in left_out):
        prepare = dialect.identifier_preparer
        sql = (
            f"INSERT INTO {prepare.format_table(table)} "
            f"({', '.join(prepare.quote(c.name) for c in columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        processors: list[_Processor] = []
        for c in columns:
            kind = next((t for t in _SAME_TEXT if type(c.type) is t), None)
            processors.append((c.type._cached_bind_processor(dialect), kind))
        plan = (sql, processors)
    _plans[key] = plan
    return plan


def run_inline(op: Operation[T], conn: Connection) -> T:
    """Drive op to completion in this thread; its awaits must all be database calls (the
    await rule of db.base): anything else would suspend it, and it fails."""
    coro = op(InlineConnection(conn))  # type: ignore[arg-type]
    try:
        coro.send(None)  # type: ignore[attr-defined]
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()  # type: ignore[attr-defined]
    raise RuntimeError(
        "a database operation awaited something other than the database (see db.base)"
    )


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


class SqliteDatabase(Database):
    """One writer task for every write of this process (see the module docstring)."""

    is_sqlite = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sync_engine = make_sqlite_engine(settings)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._busy = False

    async def start(self) -> None:
        """Nothing to do: the writer task starts with the first write."""

    async def close(self) -> None:
        if self._writer is not None:
            # Let queued and running batches commit: their callers are owed an answer.
            while (self._busy or not self._queue.empty()) and not self._writer.done():
                await asyncio.sleep(0.005)
            await aio.stop(self._writer, grace=5.0)
            self._writer = None
        self.sync_engine.dispose()

    async def read(self, op: Operation[T]) -> T:
        return await asyncio.to_thread(self._read_inline, op)

    def _read_inline(self, op: Operation[T]) -> T:
        with self.sync_engine.connect() as conn:
            try:
                return run_inline(op, conn)
            finally:
                conn.rollback()

    async def write(self, op: Operation[T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._writer_queue().put_nowait(_Pending(op, future))
        return await future

    async def probe_write(self) -> None:
        # Rewriting the header's user_version with its own value dirties page 1: the commit
        # appends a WAL frame, which fails like any write when the disk is full.
        await self.write(_rewrite_user_version)

    async def write_batched(self, batcher: Batcher[P, R], payload: P) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._writer_queue().put_nowait(_Pending(None, future, batcher, payload))
        return await future

    def _writer_queue(self) -> asyncio.Queue[_Pending]:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="avara-viewer-writer")
        return self._queue

    async def _write_loop(self) -> None:
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
                    conn = await asyncio.to_thread(_writer_connection, engine)
                # BEGIN IMMEDIATE may wait for another process's write lock, and COMMIT waits
                # for the disk: both run in a thread so the event loop keeps serving. The
                # operations in between are CPU work and run right here, without locks to
                # wait for and without handing the GIL back and forth with another thread.
                transaction = await asyncio.to_thread(conn.begin)
                try:
                    outcomes = _lone_group(conn, batch)
                    if outcomes is _UNDONE:
                        await asyncio.to_thread(transaction.rollback)
                        transaction = await asyncio.to_thread(conn.begin)
                        outcomes = None
                    if outcomes is None:
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
            settle(outcomes)
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
                    conn, lambda c, b=batcher, p=batch[i].payload: run_one(b, c, p)
                )
        return [(item.future, *results[i]) for i, item in enumerate(batch)]


_UNDONE: Any = object()


def _lone_group(conn: Connection, batch: list[_Pending]) -> Any:
    """The outcomes of a batch that is one group of one batcher (what a busy API sends), run
    without the SAVEPOINT _run_batch puts around a group: SQLite copies into a sub-journal every
    page changed inside one, 10 of the 80 µs an invite's share of its group's write costs. None
    for any other batch; _UNDONE when the group's run raised, the caller then rolls the
    transaction (this group alone) back and runs the batch through _run_batch, which runs the
    group again in a SAVEPOINT and, failing, each payload alone."""
    batcher = batch[0].batcher
    if batcher is None or any(i.batcher is not batcher or i.future.cancelled() for i in batch):
        return None
    payloads = [item.payload for item in batch]
    try:
        value = run_inline(lambda c: batcher.run(c, payloads), conn)
    except Exception:
        return _UNDONE
    return [
        (item.future, not isinstance(outcome, Exception), outcome)
        for item, outcome in zip(batch, value, strict=True)
    ]


def _writer_connection(engine: Engine) -> Connection:
    """The writer's connection: its transactions begin IMMEDIATE (make_sqlite_engine), and its
    temporary files are kept in memory. Operations and groups sharing a batch each run inside
    a SAVEPOINT, for which SQLite copies every page they change into a sub-journal; past
    64 KiB, a temporary file: created, written page by page and deleted again for nearly every
    batch (a third of the process's writes in strace). Temporary tables and sorts of this
    connection are small writes, never a reader's large sort. Detached from the pool, so the
    setting never reaches a reader's connection."""
    conn = engine.connect()
    conn.connection.dbapi_connection.execute("PRAGMA temp_store=MEMORY")  # type: ignore[union-attr]
    conn.connection.detach()
    conn.info["writer"] = True
    return conn


async def _rewrite_user_version(conn: Any) -> None:
    version = int(await conn.scalar(text("PRAGMA user_version")))
    await conn.execute(text(f"PRAGMA user_version = {version}"))


def _in_savepoint(conn: Connection, op: Operation[Any]) -> tuple[bool, Any]:
    savepoint = conn.begin_nested()
    try:
        value = run_inline(op, conn)
    except Exception as exc:
        savepoint.rollback()
        return False, exc
    savepoint.commit()
    return True, value
