"""Test support: a real SMTP server on loopback, and the real server process on a database.

Every test that takes `server` runs once on SQLite and once on PostgreSQL (set
AVARA_TEST_BACKENDS=sqlite to run one). The server is the `avara-viewer serve` command in a
subprocess, so the tests see exactly what an integrator sees over HTTP.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email
import email.policy
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

BACKENDS = [b for b in os.environ.get("AVARA_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def on_one_database(preferred: str) -> pytest.MarkDecorator:
    """For a module of browser tests: run it on one database, `preferred` when it is among
    AVARA_TEST_BACKENDS. A browser drives the same HTTP handlers whose every query the API
    tests run on both databases; twice through chromium would double the suite's slowest
    part and test nothing more. The modules are spread over both databases."""
    chosen = preferred if preferred in BACKENDS else BACKENDS[0]
    return pytest.mark.parametrize("backend", [chosen], indirect=True, scope="session")


PG_ADMIN_URL = os.environ.get("AVARA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BIN = Path(sys.executable).parent
CLI = str(BIN / "avara-viewer")

SEED = {
    "canManageStudies": True,
    "clinicRole": "Radiologist",
    "email": "dr.johnson@hospital.org",
    "firstName": "Sarah",
    "hasDashboardAccess": True,
    "lastName": "Johnson",
    "level": "member",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:12]}@hospital.example"


def invite_body(**overrides: Any) -> dict[str, Any]:
    body = dict(SEED, email=unique_email())
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not _DROP}


_DROP = object()
DROP: Any = _DROP  # invite_body(field=DROP) leaves the field out


# --- SMTP ---------------------------------------------------------------------------------


@dataclass
class Mail:
    mail_from: str
    rcpt: list[str]
    raw: bytes
    received_at: float

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[return-value]

    def part(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"no text/{subtype} part"
        return str(part.get_content())


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.split("@", 1)[0].startswith("reject550"):
            return "550 5.1.1 Mailbox does not exist"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.sink.lock:
            self.sink.mails.append(
                Mail(
                    envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content),
                    time.time(),
                )
            )
        return "250 Message accepted"


@dataclass
class SmtpSink:
    port: int = field(default_factory=free_port)
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [m for m in self.mails if address in m.rcpt]

    def wait_for(self, address: str, count: int = 1, timeout: float = 15) -> list[Mail]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} email(s) to {address}, got {len(self.to(address))}")


# --- the server ---------------------------------------------------------------------------


def run_coroutine(make: Callable[[], Any]) -> Any:
    """asyncio.run in a thread of its own: works while sync Playwright owns this thread's loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def _pg(sql: str, dbname: str = "test", admin_url: str = PG_ADMIN_URL) -> None:
    import asyncpg  # type: ignore[import-untyped]

    async def run() -> None:
        conn = await asyncpg.connect(admin_url.rsplit("/", 1)[0] + "/" + dbname)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_coroutine(run)


@dataclass
class Clinic:
    id: str
    key: str
    client: httpx.Client


class Server:
    """One database and data dir, with `avara-viewer serve` started on it."""

    def __init__(
        self,
        backend: str,
        data_dir: Path,
        smtp_url: str | None,
        pg_admin_url: str = PG_ADMIN_URL,
        **settings: str,
    ) -> None:
        """`pg_admin_url`: the cluster to make the database on (a test's own cluster, which it
        may stop; never the shared one's)."""
        self.backend = backend
        self.pg_admin_url = pg_admin_url
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.database = None
        env = dict(os.environ)
        env.update(
            AVARA_VIEWER_DATA_DIR=str(data_dir),
            AVARA_VIEWER_PUBLIC_URL="http://viewer.test",
            AVARA_VIEWER_OUTBOX_POLL_INTERVAL="0.2",
            AVARA_VIEWER_OUTBOX_LEASE="3s",
            AVARA_VIEWER_SECRET_KEY="test-secret-" + secrets.token_hex(8),
            # Many tests share one key; the rate limit's own tests pass a small limit.
            AVARA_VIEWER_RATE_LIMIT_PER_MINUTE="1000000",
            # Owners sign in with a password alone in the tests of other features; the MFA
            # tests (server/tests/sso) run servers that enforce the clinics' MFA policies.
            AVARA_VIEWER_MFA_ENFORCED="false",
            # Operations that break the await rule (db.base) fail on PostgreSQL too, as on SQLite.
            AVARA_VIEWER_CHECK_OPERATIONS="true",
            # One pass over 8 MiB per password hash (~10 ms, not ~200): the suite signs in
            # hundreds of times. Production keeps argon2's defaults.
            AVARA_VIEWER_ARGON2_TIME_COST="1",
            AVARA_VIEWER_ARGON2_MEMORY_KIB="8192",
        )
        env.pop("AVARA_VIEWER_SMTP_URL", None)
        if smtp_url:
            env["AVARA_VIEWER_SMTP_URL"] = smtp_url
        if backend == "postgresql":
            self.database = f"avara_test_{uuid.uuid4().hex[:10]}"
            _pg(f'CREATE DATABASE "{self.database}"', admin_url=pg_admin_url)
            base = pg_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
            env["AVARA_VIEWER_DATABASE_URL"] = f"{base}/{self.database}"
        env.update({f"AVARA_VIEWER_{k.upper()}": v for k, v in settings.items()})
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"
        self.cli("migrate")

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [CLI, *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(f"avara-viewer {' '.join(args)} failed:\n{result.stderr}")
        return result

    def start(self, *extra: str) -> None:
        # The child gets its own copy of the descriptor, so ours can close as soon as it is spawned.
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port), *extra],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited:\n{self.log_path.read_text()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not start:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None:
            self.process.send_signal(sig)
            self.process.wait(timeout=20)
            self.process = None

    def destroy(self) -> None:
        self.stop()
        if self.database:
            _pg(
                f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)',
                admin_url=self.pg_admin_url,
            )

    def create_clinic(self, name: str = "St Mary Imaging") -> Clinic:
        clinic_id = self.cli("clinics", "create", "--name", name).stdout.strip().splitlines()[-1]
        key = self.cli("api-keys", "create", "--clinic", clinic_id, "--description", "tests")
        secret = key.stdout.strip().splitlines()[-1]
        client = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=30
        )
        return Clinic(clinic_id, secret, client)

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        """Read the database directly, to check what was stored (never to arrange state)."""
        if self.backend == "sqlite":
            import sqlite3

            with sqlite3.connect(self.data_dir / "avara-viewer.db") as conn:
                return list(conn.execute(query))
        import asyncpg

        async def run() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(
                self.pg_admin_url.rsplit("/", 1)[0] + "/" + str(self.database)
            )
            try:
                return [tuple(r) for r in await conn.fetch(query)]
            finally:
                await conn.close()

        return run_coroutine(run)  # type: ignore[no-any-return]


