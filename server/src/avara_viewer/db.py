"""Database engine, table metadata and the write path shared by every domain.

Writes go through `Database.write(op)`. On SQLite a single writer task runs all writes on one
connection and groups the operations that arrive together into one transaction (one fsync for
many requests), each operation inside its own SAVEPOINT so one failure does not undo the
others; every caller is answered only after the commit. On PostgreSQL each operation runs in
its own transaction from the pool, and the server's own group commit does the grouping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from .config import Settings

log = logging.getLogger("avara_viewer.db")

T = TypeVar("T")
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


def make_engine(settings: Settings) -> AsyncEngine:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.ensure_data_dir()
        engine = create_async_engine(url, pool_size=8, max_overflow=8)
        synchronous = settings.sqlite_synchronous

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy emit BEGIN itself so SAVEPOINTs work (pysqlite's own
            # transaction handling breaks them).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers take the write lock up front; readers never reach a write.
            mode = "IMMEDIATE" if conn.info.get("writer") else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_async_engine(url, pool_size=16, max_overflow=16, pool_pre_ping=True)


class _Pending:
    __slots__ = ("future", "op")

    def __init__(self, op: Operation[Any], future: asyncio.Future[Any]) -> None:
        self.op = op
        self.future = future


class Database:
    """The engine plus the write path (see the module docstring)."""

    max_batch = 256

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self.is_sqlite = settings.is_sqlite
        self._queue: asyncio.Queue[_Pending] | None = None
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.is_sqlite and self._writer is None:
            self._queue = asyncio.Queue()
            self._writer = asyncio.create_task(self._write_loop(), name="avara-viewer-writer")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        await self.engine.dispose()

    async def read(self, op: Operation[T]) -> T:
        async with self.engine.connect() as conn:
            result = await op(conn)
            await conn.rollback()
            return result

    async def write(self, op: Operation[T]) -> T:
        """Run op in a transaction; return only after its commit is durable."""
        if self._queue is None:
            async with self.engine.begin() as conn:
                return await op(conn)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(op, future))
        return await future

    async def _write_loop(self) -> None:
        assert self._queue is not None
        queue = self._queue
        conn: AsyncConnection | None = None
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                if conn is None:
                    conn = await self.engine.connect()
                    conn.sync_connection.info["writer"] = True  # type: ignore[union-attr]
                await self._run_batch(conn, batch)
            except asyncio.CancelledError:
                for item in batch:
                    if not item.future.done():
                        item.future.cancel()
                if conn is not None:
                    await conn.close()
                raise
            except Exception as exc:  # commit failed: nobody in the batch is acknowledged
                log.exception("write batch of %d failed", len(batch))
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                if conn is not None:
                    try:
                        await conn.close()
                    finally:
                        conn = None

    async def _run_batch(self, conn: AsyncConnection, batch: list[_Pending]) -> None:
        outcomes: list[tuple[_Pending, bool, Any]] = []
        async with conn.begin():
            for item in batch:
                if item.future.cancelled():
                    continue
                try:
                    async with conn.begin_nested():
                        value = await item.op(conn)
                    outcomes.append((item, True, value))
                except Exception as exc:
                    outcomes.append((item, False, exc))
        for item, ok, value in outcomes:
            if item.future.done():
                continue
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)
