"""The await rule of database operations (db.base) is enforced on both databases: an operation
that awaits anything but its connection fails, a well-behaved one runs (reads, writes, batches,
SAVEPOINTs and streamed rows alike). A group of batched payloads that fails as a whole leaves
nothing of its attempt: each payload then gets its own outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from avara_viewer.config import Settings
from avara_viewer.db import Database, open_database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from support import BACKENDS, PG_ADMIN_URL, _pg, run_coroutine


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path, database_url=None, check_operations=True)
        return
    name = f"avara_rule_{uuid.uuid4().hex[:10]}"
    _pg(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield Settings(data_dir=tmp_path, database_url=f"{base}/{name}", check_operations=True)
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _with_database(settings: Settings, work: Any) -> Any:
    async def main() -> Any:
        db = open_database(settings)
        await db.start()
        try:
            return await work(db)
        finally:
            await db.close()

    return run_coroutine(main)


async def _sleeps(conn: AsyncConnection) -> int:
    await conn.execute(text("SELECT 1"))
    await asyncio.sleep(0)
    return 1


async def _sleeps_in_a_savepoint(conn: AsyncConnection) -> int:
    async with conn.begin_nested():
        await conn.execute(text("SELECT 1"))
        await asyncio.sleep(0)
    return 1


class _SleepingBatcher:
    async def run(self, conn: AsyncConnection, payloads: list[int]) -> list[int | Exception]:
        await asyncio.sleep(0)
        return payloads


@pytest.mark.parametrize("op", [_sleeps, _sleeps_in_a_savepoint])
def test_an_operation_that_awaits_something_else_fails(settings: Settings, op: Any) -> None:
    async def work(db: Database) -> None:
        for path in (db.read, db.write):
            with pytest.raises(RuntimeError, match="awaited something other than the database"):
                await path(op)

    _with_database(settings, work)


def test_a_batcher_that_awaits_something_else_fails(settings: Settings) -> None:
    async def work(db: Database) -> None:
        with pytest.raises(RuntimeError, match="awaited something other than the database"):
            await db.write_batched(_SleepingBatcher(), 7)

    _with_database(settings, work)


async def _well_behaved(conn: AsyncConnection) -> list[Any]:
    await conn.execute(text("CREATE TABLE IF NOT EXISTS rule_probe (n INTEGER)"))
    async with conn.begin_nested():
        await conn.execute(text("INSERT INTO rule_probe (n) VALUES (1), (2)"))
    one = await conn.scalar(text("SELECT min(n) FROM rule_probe"))
    streamed = [row.n async for row in await conn.stream(text("SELECT n FROM rule_probe"))]
    return [one, sorted(streamed)]


class _DoublingBatcher:
    async def run(self, conn: AsyncConnection, payloads: list[int]) -> list[int | Exception]:
        factor = await conn.scalar(text("SELECT 2"))
        return [p * factor for p in payloads]


def test_an_operation_that_awaits_only_its_connection_runs(settings: Settings) -> None:
    async def work(db: Database) -> list[Any]:
        written = await db.write(_well_behaved)
        read = await db.read(lambda conn: conn.scalar(text("SELECT count(*) FROM rule_probe")))
        batched = await asyncio.gather(*(db.write_batched(_DoublingBatcher(), n) for n in (1, 2)))
        return [written, read, batched]

    assert _with_database(settings, work) == [[1, [1, 2]], 2, [2, 4]]


class _RefusingBatcher:
    """Writes a row per payload, then fails the whole group if it holds "bad"."""

    async def run(self, conn: AsyncConnection, payloads: list[str]) -> list[str | Exception]:
        for payload in payloads:
            await conn.execute(text("INSERT INTO batch_probe (p) VALUES (:p)"), {"p": payload})
        if "bad" in payloads:
            raise ValueError("bad payload")
        return payloads


def test_a_group_that_fails_as_a_whole_is_written_payload_by_payload(settings: Settings) -> None:
    async def work(db: Database) -> list[Any]:
        await db.write(lambda conn: conn.execute(text("CREATE TABLE batch_probe (p TEXT)")))
        batcher = _RefusingBatcher()  # one batcher: the three payloads make one group
        outcomes = await asyncio.gather(
            *(db.write_batched(batcher, p) for p in ("a", "bad", "c")),
            return_exceptions=True,
        )
        rows = await db.read(lambda conn: conn.execute(text("SELECT p FROM batch_probe")))
        return [[repr(o) for o in outcomes], sorted(r.p for r in rows)]

    assert _with_database(settings, work) == [
        ["'a'", "ValueError('bad payload')", "'c'"],
        ["a", "c"],
    ]
