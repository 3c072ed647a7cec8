"""What every database path shares: table metadata (Base, naming, UTCDateTime), the operation
and batcher protocols, and the Database interface.

THE AWAIT RULE. An operation is `async def op(conn) -> T` written against SQLAlchemy's
AsyncConnection API; it never commits, and every `await` inside it must be a database call on
the connection it is given (`conn.execute`, `conn.scalar`, `conn.stream` and its rows,
`conn.begin_nested`, ...) — no `asyncio.sleep`, no HTTP, no file or queue waits, no other
connection. On SQLite the writer drives operations inline, on one thread, without the event
loop: an operation that suspends on anything else cannot be resumed and fails with
RuntimeError. PostgreSQL would run it, so with `check_operations` on (the tests' servers) the
PostgreSQL path enforces the same rule. Do the waiting before or after the operation.

`Database.write(op)` runs op in a transaction and returns after the commit is durable;
`Database.read(op)` runs it on a read connection; `Database.write_batched(batcher, payload)`
groups concurrent payloads of one Batcher into one transaction.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import DateTime, MetaData
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

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

    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # SQLite stores the text SQLAlchemy's DATETIME writes ("YYYY-MM-DD HH:MM:SS.ffffff"),
        # which is the naive datetime's isoformat: one C call instead of this type's and
        # DATETIME's processors chained (~9 % of the invite path's event-loop CPU).
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            zone = value.tzinfo
            if zone is not None:
                if zone is not UTC:
                    value = value.astimezone(UTC)
                value = value.replace(tzinfo=None)
            return value.isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Batcher(Protocol[P, R]):
    """Runs many requests of one kind together: one statement per table for the whole group
    (executemany) instead of one per request. Returns one outcome per payload, in order: a
    value, or an exception for that payload alone (a business error such as a conflict). If
    `run` raises, the group is retried one payload at a time, each alone (a SAVEPOINT on
    SQLite, a transaction on PostgreSQL).
    `run` is an operation: the await rule applies."""

    async def run(self, conn: AsyncConnection, payloads: list[P]) -> list[R | Exception]: ...


class Database(ABC):
    """The read and write paths of one database (see the module docstring); `open_database`
    in this package picks the implementation for the configured URL."""

    # Most payloads one batch takes from its queue.
    max_batch = 512
    is_sqlite: bool

    @abstractmethod
    async def start(self) -> None:
        """Ready the database for use (before serving requests)."""

    @abstractmethod
    async def close(self) -> None:
        """Answer what is queued, stop the writer tasks and dispose of the engine."""

    @abstractmethod
    async def read(self, op: Operation[T]) -> T: ...

    @abstractmethod
    async def write(self, op: Operation[T]) -> T:
        """Run op in a transaction; return only after its commit is durable."""

    @abstractmethod
    async def probe_write(self) -> None:
        """A small write through the write path that must reach the disk or the server's
        log (readiness: "writes work"); raises what a real write would."""

    @abstractmethod
    async def write_batched(self, batcher: Batcher[P, R], payload: P) -> R:
        """Queue payload for batcher; return its outcome once the group's commit is durable."""


async def insert_rows(conn: AsyncConnection, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT rows (dicts with the same keys) into table in one executemany. On SQLite's
    writer, plain SQL with each value through its column type's bind processor (what
    SQLAlchemy sends, without its per-row parameter building: sqlite.InlineConnection);
    elsewhere through SQLAlchemy."""
    if not rows:
        return
    fast = getattr(conn, "insert_rows", None)
    if fast is not None:
        fast(table, rows)
        return
    await conn.execute(table.insert(), rows)


async def run_one(batcher: Batcher[P, R], conn: AsyncConnection, payload: P) -> R:
    """One payload through a batcher, its business error raised."""
    [outcome] = await batcher.run(conn, [payload])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def settle(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """Answer each waiting caller with its value or exception (unless it gave up)."""
    for future, ok, value in outcomes:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


async def retry_on_integrity_error(write: Callable[[], Awaitable[T]]) -> T:
    """Run a write once more when it lost a race on a unique value (PostgreSQL: a concurrent
    transaction committed the same address first); the second run's checks see the winner and
    answer as they should (a Conflict, a replay)."""
    try:
        return await write()
    except IntegrityError:
        return await write()
