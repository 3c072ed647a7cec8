"""PostgreSQL aborts one of two transactions that deadlock; the server's write runs the loser
again, so both callers see their write succeed, each applied once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from avara_viewer.config import Settings
from avara_viewer.db import open_database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from support import BACKENDS, PG_ADMIN_URL, _pg, run_coroutine

pytestmark = pytest.mark.skipif(
    "postgresql" not in BACKENDS, reason="AVARA_TEST_BACKENDS leaves PostgreSQL out"
)


def test_a_deadlocked_write_runs_again_and_both_succeed_once(tmp_path: Any) -> None:
    name = f"avara_conflict_{uuid.uuid4().hex[:10]}"
    _pg(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    # Not check_operations: the two operations wait for each other on purpose.
    settings = Settings(data_dir=tmp_path, database_url=f"{base}/{name}")
    runs: list[str] = []

    async def main() -> tuple[Any, Any, list[tuple[int, int]]]:
        db = open_database(settings)
        await db.start()
        first_locked, second_locked = asyncio.Event(), asyncio.Event()

        def crossing(me: str, mine: int, theirs: int, locked: Any, other: Any) -> Any:
            async def op(conn: AsyncConnection) -> str:
                runs.append(me)
                await conn.execute(text(f"UPDATE t SET v = v + 1 WHERE id = {mine}"))
                locked.set()
                await other.wait()
                await conn.execute(text(f"UPDATE t SET v = v + 1 WHERE id = {theirs}"))
                return me

            return op

        try:
            create = "CREATE TABLE t (id int PRIMARY KEY, v int)"
            await db.write(lambda conn: conn.execute(text(create)))
            await db.write(lambda conn: conn.execute(text("INSERT INTO t VALUES (1, 0), (2, 0)")))
            a, b = await asyncio.gather(
                db.write(crossing("a", 1, 2, first_locked, second_locked)),
                db.write(crossing("b", 2, 1, second_locked, first_locked)),
            )
            rows = await db.read(lambda conn: conn.execute(text("SELECT id, v FROM t ORDER BY id")))
            return a, b, [tuple(r) for r in rows]
        finally:
            await db.close()

    try:
        a, b, rows = run_coroutine(main)
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert (a, b) == ("a", "b")
    assert rows == [(1, 2), (2, 2)]  # each write applied exactly once
    assert sorted(runs) in (["a", "a", "b"], ["a", "b", "b"])  # the loser ran twice
