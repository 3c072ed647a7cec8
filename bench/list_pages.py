"""List pagination: page 1 against page 10,000 of a clinic with 1,000,000 users.

    .venv/bin/python bench/list_pages.py [--users 1000000] [--backends sqlite,postgresql]
        [--requests 300]

For each database: migrate a fresh one, create a clinic and an API key with the CLI, bulk
load the users straight into the table (executemany in 50,000-row batches on SQLite, COPY on
PostgreSQL), ANALYZE, start `avara-viewer serve`, and time GET /v1/viewer/users with the
default limit (20) for page 1 and for page 10,000 (rows 199,981-200,000). The page 10,000
cursor is made for the row that ends page 9,999, signed with the server's secret exactly as
the server does — following 9,999 cursors would measure the same thing, slower. The query
plan of the page query is printed too. PostgreSQL is reached at AVARA_TEST_PG_URL (default
postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from avara_viewer.pagination import Position, encode_cursor

CLI = str(Path(sys.executable).parent / "avara-viewer")
PG_ADMIN_URL = os.environ.get("AVARA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PAGE = 20
DEEP_PAGE = 10_000
BATCH = 50_000
COLUMNS = (
    "id", "clinic_id", "email", "email_lower", "first_name", "middle_name", "last_name",
    "suffix1", "suffix2", "phone_number", "clinic_role", "level", "can_manage_studies",
    "has_dashboard_access", "invited_source", "inviter_id", "status", "password_hash",
    "session_version", "created_at", "updated_at", "last_login_at",
)  # fmt: skip


def user_rows(clinic_id: str, count: int) -> Iterator[tuple]:
    start = datetime(2025, 1, 1)
    for i in range(count):
        created = start + timedelta(milliseconds=i * 10)
        email = f"user{i}@bench.example"
        yield (
            "usr_" + secrets.token_hex(16), clinic_id, email, email, f"First{i}", None,
            f"Last{i}", None, None, None, "Radiologist", "member", True, True, "api", None,
            "invited", None, 0, created, created, None,
        )  # fmt: skip


def batches(rows: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_sqlite(path: Path, clinic_id: str, count: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    marks = ",".join("?" * len(COLUMNS))
    sql = f"INSERT INTO users ({','.join(COLUMNS)}) VALUES ({marks})"
    for batch in batches(user_rows(clinic_id, count), BATCH):
        conn.executemany(
            sql,
            [
                r[:19] + tuple(d.isoformat(" ", "microseconds") for d in r[19:21]) + r[21:]
                for r in batch
            ],
        )
        conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()


async def load_postgresql(database: str, clinic_id: str, count: int) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database)
    try:
        for batch in batches(user_rows(clinic_id, count), BATCH * 4):
            await conn.copy_records_to_table("users", records=batch, columns=list(COLUMNS))
        await conn.execute("ANALYZE users")
    finally:
        await conn.close()


def pg(statement: str, database: str = "test") -> list:
    import asyncpg

    async def run() -> list:
        conn = await asyncpg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database)
        try:
            return list(await conn.fetch(statement))
        finally:
            await conn.close()

    return asyncio.run(run())


def sql(backend: str, data_dir: Path, database: str | None, statement: str) -> list:
    if backend == "sqlite":
        with sqlite3.connect(data_dir / "avara-viewer.db") as conn:
            return list(conn.execute(statement))
    assert database is not None
    return [tuple(r) for r in pg(statement, database)]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(client: httpx.Client, params: dict, requests: int) -> tuple[float, float]:
    for _ in range(10):  # warm-up: connection, caches, prepared statements
        client.get("/v1/viewer/users", params=params).raise_for_status()
    samples = []
    for _ in range(requests):
        began = time.perf_counter()
        response = client.get("/v1/viewer/users", params=params)
        samples.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
        assert len(response.json()["users"]) == PAGE
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def run(backend: str, count: int, requests: int) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"avara-bench-{backend}-"))
    secret = "bench-" + secrets.token_hex(16)
    env = dict(os.environ, AVARA_VIEWER_DATA_DIR=str(data_dir), AVARA_VIEWER_SECRET_KEY=secret)
    env["AVARA_VIEWER_RATE_LIMIT_PER_MINUTE"] = "1000000"  # measure the query, not the limiter
    env.pop("AVARA_VIEWER_SMTP_URL", None)
    database = None
    if backend == "postgresql":
        database = f"avara_bench_{uuid.uuid4().hex[:8]}"
        pg(f'CREATE DATABASE "{database}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        env["AVARA_VIEWER_DATABASE_URL"] = f"{base}/{database}"
    server = None
    try:

        def cli(*args: str) -> str:
            done = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, check=True)
            lines = done.stdout.strip().splitlines()
            return lines[-1] if lines else ""

        cli("migrate")
        clinic_id = cli("clinics", "create", "--name", "Bench Clinic")
        key = cli("api-keys", "create", "--clinic", clinic_id, "--description", "bench")
        began = time.perf_counter()
        if backend == "sqlite":
            load_sqlite(data_dir / "avara-viewer.db", clinic_id, count)
        else:
            assert database is not None
            asyncio.run(load_postgresql(database, clinic_id, count))
        load_seconds = time.perf_counter() - began

        deep_page_number = min(DEEP_PAGE, count // PAGE)
        offset = (deep_page_number - 1) * PAGE - 1  # the last row of the page before it
        [(created, row_id)] = sql(
            backend, data_dir, database,
            "SELECT created_at, id FROM users ORDER BY created_at DESC, id DESC"
            f" LIMIT 1 OFFSET {offset}",
        )  # fmt: skip
        if isinstance(created, str):
            created = datetime.fromisoformat(created)
        cursor = encode_cursor(
            secret.encode(), "users", Position(created.replace(tzinfo=UTC), row_id)
        )

        t = created.isoformat(" ", "microseconds")
        page_query = (
            f"SELECT * FROM users WHERE clinic_id = '{clinic_id}' AND created_at <= '{t}'"
            f" AND (created_at < '{t}' OR id < '{row_id}')"
            f" ORDER BY created_at DESC, id DESC LIMIT {PAGE + 1}"
        )
        if backend == "sqlite":
            plan = " / ".join(
                r[-1] for r in sql(backend, data_dir, None, "EXPLAIN QUERY PLAN " + page_query)
            )
        else:
            plan = " / ".join(
                r[0].strip() for r in sql(backend, data_dir, database, "EXPLAIN " + page_query)
            )

        port = free_port()
        # The child gets its own copy of the descriptor, so ours can close as soon as it is spawned.
        with open(data_dir / "server.log", "wb") as log:
            server = subprocess.Popen(
                [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-email"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as client:
            deep = client.get("/v1/viewer/users", params={"cursor": cursor}).json()["users"]
            expected = sql(
                backend, data_dir, database,
                f"SELECT id FROM users ORDER BY created_at DESC, id DESC LIMIT {PAGE}"
                f" OFFSET {offset + 1}",
            )  # fmt: skip
            assert [u["userId"] for u in deep] == [r[0] for r in expected], "wrong deep page"
            first = timed(client, {}, requests)
            deep_page = timed(client, {"cursor": cursor}, requests)
        return {
            "backend": backend,
            "users": count,
            "load_s": load_seconds,
            "page1": first,
            "page10000": deep_page,
            "deep_page_number": deep_page_number,
            "plan": plan,
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        if database:
            pg(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    print(f"GET /v1/viewer/users, limit {PAGE}, {args.requests} sequential requests each")
    print("| database | users | load | page 1 median / p95 | page 10,000 median / p95 |")
    print("|---|---:|---:|---:|---:|")
    plans = []
    for backend in args.backends.split(","):
        r = run(backend, args.users, args.requests)
        p1, p2 = r["page1"], r["page10000"]
        print(
            f"| {backend} | {r['users']:,} | {r['load_s']:.0f} s | {p1[0]:.2f} / {p1[1]:.2f} ms "  # type: ignore[index]
            f"| {p2[0]:.2f} / {p2[1]:.2f} ms (page {r['deep_page_number']:,}) |",  # type: ignore[index]
            flush=True,
        )
        plans.append(f"{backend}: {r['plan']}")
    print()
    print("Plan of the page query:")
    for plan in plans:
        print("  " + plan)


if __name__ == "__main__":
    main()
