"""Faults injected under the running server (issue 11, items 8b-14): a database that stops or
fills its disk answers 503 with Retry-After on a connection that stays usable, and recovers by
itself; readiness reflects writes; the audit lock cannot stall a clinic; mail is neither held
up by one slow conversation, nor doubled when outcomes cannot be recorded, nor parked by a
clock step. A PostgreSQL that is stopped is the test's own cluster (own_postgres.py)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import json
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from reliability.own_postgres import OwnPostgres
from support import Mail, Server, SmtpSink, free_port, invite_body, run_coroutine, unique_email

# --- helpers -----------------------------------------------------------------------------


def _until(check: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.1)


class _Conn:
    """One kept-alive HTTP connection: tells whether the server kept it between requests."""

    def __init__(self, srv: Server, key: str) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        self.key = key
        self.sock: Any = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
        headers = {"Authorization": f"Bearer {self.key}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        self.http.request(method, path, body=data, headers=headers)
        response = self.http.getresponse()
        raw = response.read()
        if self.sock is None:
            self.sock = self.http.sock
        assert self.http.sock is self.sock, "the server closed the kept-alive connection"
        parsed = json.loads(raw) if raw and raw[:1] in b"{[" else raw
        return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed

    def close(self) -> None:
        self.http.close()


def _assert_503(status: int, headers: dict[str, str], body: Any, code: str) -> None:
    assert status == 503, (status, body)
    assert body["code"] == code, body
    assert int(headers["retry-after"]) >= 1
    assert headers["content-type"].startswith("application/problem+json")


def _ready(srv: Server) -> httpx.Response:
    return httpx.get(srv.base_url + "/readyz", timeout=10)


def _metric(srv: Server, name: str) -> float:
    total = 0.0
    for line in httpx.get(srv.base_url + "/metrics").text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _invite_load(client: httpx.Client, n: int, prefix: str = "load") -> list[tuple[str, int]]:
    """n invites from 8 concurrent clients: (address, status) of each."""

    def one(_: int) -> tuple[str, int]:
        address = unique_email(prefix)
        return address, client.post("/v1/viewer/users", json=invite_body(email=address)).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


# --- 8b: /metrics is not public -----------------------------------------------------------


def test_metrics_served_only_to_loopback_without_proxy_or_with_the_token(
    server: Server, server_on: Any
) -> None:
    assert httpx.get(server.base_url + "/metrics").status_code == 200
    for header in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}):
        refused = httpx.get(server.base_url + "/metrics", headers=header)
        assert refused.status_code == 403, header
        assert refused.json()["code"] == "forbidden"
        assert "avara_viewer" not in refused.text
    with_token = server_on("sqlite", metrics_token="scrape-" + "x" * 20)
    with_token.start()
    proxied = {"X-Forwarded-For": "203.0.113.9"}
    url = with_token.base_url + "/metrics"
    assert httpx.get(url, headers=proxied).status_code == 403
    wrong = {**proxied, "Authorization": "Bearer scrape-" + "y" * 20}
    assert httpx.get(url, headers=wrong).status_code == 403
    right = {**proxied, "Authorization": "Bearer scrape-" + "x" * 20}
    scraped = httpx.get(url, headers=right)
    assert scraped.status_code == 200 and "avara_viewer_http_requests_total" in scraped.text


# --- 9 and 12: SQLite on a full disk -------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 4 MiB tmpfs where server_on's first server keeps its data dir."""
    mount = tmp_path / "srv0"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> None:
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={path}", "bs=4k"], capture_output=True, check=False
    )


def test_sqlite_full_disk_is_503_storage_full_not_ready_and_recovers(
    small_disk: Path, server_on: Any
) -> None:
    srv = server_on("sqlite")
    assert srv.data_dir == small_disk
    srv.start()
    clinic = srv.create_clinic()
    assert {s for _, s in _invite_load(clinic.client, 8)} == {201}
    filler = small_disk / "filler"
    _fill(filler)

    results = _invite_load(clinic.client, 16, "full")
    assert {s for _, s in results} <= {201, 503}, results
    refused = [a for a, s in results if s == 503]
    assert refused, "no write failed on a full disk"
    conn = _Conn(srv, clinic.key)
    address = unique_email("full")
    status, headers, body = conn.request("POST", "/v1/viewer/users", invite_body(email=address))
    _assert_503(status, headers, body, "storage_full")
    status, _, ready = conn.request("GET", "/readyz")  # the same connection, still open
    assert status == 503 and ready["reason"] == "storage_full", ready
    assert "full" in ready["detail"]

    filler.unlink()
    _until(lambda: _ready(srv).status_code == 200, what="ready again")
    status, _, _ = conn.request("POST", "/v1/viewer/users", invite_body(email=address))
    assert status == 201
    conn.close()
    # Nothing refused was half-written; everything acknowledged is there once.
    for a, s in results:
        count = srv.sql(f"SELECT count(*) FROM users WHERE email = '{a}'")[0][0]
        assert count == (1 if s == 201 else 0), (a, s, count)


def test_sqlite_opened_on_a_full_disk_is_storage_full_not_unavailable(small_disk: Path) -> None:
    """The first connection to a WAL database after every other one closed must create its
    -shm file; on a full disk that fails as an I/O error (SQLITE_IOERR_SHMSIZE), not as
    SQLITE_FULL. The writer reconnects after a failed commit, so a full disk answered some
    invites 503 database_unavailable (seen in CI): it is storage_full."""
    from avara_viewer.db.faults import STORAGE_FULL, unavailable
    from sqlalchemy import create_engine, text

    path = small_disk / "db.sqlite"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (x)")
    setup.close()
    assert not (small_disk / "db.sqlite-shm").exists()
    _fill(small_disk / "filler")
    engine = create_engine(f"sqlite:///{path}")
    with pytest.raises(Exception) as failed, engine.connect() as conn:
        conn.execute(text("PRAGMA journal_mode=WAL"))
        conn.execute(text("SELECT * FROM t"))
    engine.dispose()
    assert "disk I/O error" in str(failed.value)
    fault = unavailable(failed.value)
    assert fault is not None and fault.code == STORAGE_FULL, fault
    assert fault.retry_after == 10


# --- 9, 10 and 12: PostgreSQL stopped and restarted -----------------------------------------


@pytest.fixture
def own_pg() -> Any:
    cluster = OwnPostgres()
    yield cluster
    cluster.destroy()


class _SlowSink(SmtpSink):
    """An SMTP sink whose DATA takes `data_delay` s, and whose RCPT of a `slow…` address
    takes `slow_rcpt` s the first time (a conversation that hangs)."""

    def __init__(self, data_delay: float = 0.0, slow_rcpt: float = 0.0) -> None:
        super().__init__()
        self.data_delay = data_delay
        self.slow_rcpt = slow_rcpt
        self.slow_now = 0  # slow RCPTs in progress
        self.slow_seen: set[str] = set()
        self.slow_ends: list[float] = []  # when each slow RCPT would answer, had we waited

    def start(self) -> None:
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, options):
                if address.startswith("slow") and address not in sink.slow_seen:
                    sink.slow_seen.add(address)
                    sink.slow_ends.append(time.time() + sink.slow_rcpt)
                    sink.slow_now += 1
                    try:
                        await asyncio.sleep(sink.slow_rcpt)
                    finally:
                        sink.slow_now -= 1
                    return "451 4.3.0 took too long"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                await asyncio.sleep(sink.data_delay)
                with sink.lock:
                    sink.mails.append(
                        Mail(envelope.mail_from, list(envelope.rcpt_tos),
                             bytes(envelope.content), time.time())
                    )
                return "250 Message accepted"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()


def _message_ids(sink: SmtpSink) -> Counter[str]:
    with sink.lock:
        return Counter(str(m.message["Message-ID"]) for m in sink.mails)


def test_postgres_stopped_is_503_on_a_kept_connection_and_recovers_without_duplicates(
    own_pg: OwnPostgres, server_on: Any
) -> None:
    sink = _SlowSink(data_delay=0.1)
    sink.start()
    try:
        srv = server_on("postgresql", sink.url, pg_admin_url=own_pg.admin_url)
        srv.start()
        clinic = srv.create_clinic()
        acked = [a for a, s in _invite_load(clinic.client, 40) if s == 201]
        assert len(acked) == 40
        _until(lambda: sink.mails, what="the first email")
        own_pg.stop()  # while the batch is being sent: its outcomes cannot be recorded

        conn = _Conn(srv, clinic.key)
        status, headers, body = conn.request("POST", "/v1/viewer/users", invite_body())
        _assert_503(status, headers, body, "database_unavailable")
        status, headers, body = conn.request("GET", "/v1/viewer/users?limit=5")
        _assert_503(status, headers, body, "database_unavailable")
        status, _, ready = conn.request("GET", "/readyz")
        assert status == 503 and ready["reason"] in ("database_unavailable", "timeout"), ready
        time.sleep(4)  # longer than the 3 s lease of the test servers
        own_pg.start()

        status = _until(
            lambda: conn.request("POST", "/v1/viewer/users", invite_body())[0] == 201,
            what="a 201 after the restart",
        )
        conn.close()
        _until(lambda: _ready(srv).status_code == 200, what="ready again")
        for address in acked:
            sink.wait_for(address, timeout=30)
        copies = _message_ids(sink)
        doubled = {k: v for k, v in copies.items() if v > 1}
        assert not doubled, f"{len(doubled)} of {len(copies)} emails sent twice"
        assert _metric(srv, "avara_viewer_email_lease_lost_total") == 0
    finally:
        sink.stop()


def test_postgres_out_of_connection_slots_is_503_and_recovers(
    own_pg: OwnPostgres, server_on: Any
) -> None:
    import asyncpg  # type: ignore[import-untyped]

    srv = server_on("postgresql", pg_admin_url=own_pg.admin_url)
    srv.start()
    clinic = srv.create_clinic()
    assert clinic.client.post("/v1/viewer/users", json=invite_body()).status_code == 201
    hog: list[Any] = []
    stop = threading.Event()
    full = threading.Event()

    async def take_every_slot() -> None:
        # Every connection slot taken, and the server's own connections ended, until the
        # server holds none (it reconnects in between, so round after round).
        count = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
        end = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1"
        try:
            while True:
                while True:
                    try:
                        hog.append(await asyncpg.connect(own_pg.admin_url))
                    except asyncpg.TooManyConnectionsError:
                        break
                if not await hog[0].fetchval(count, srv.database):
                    # A connection still starting up holds its slot but is not listed yet:
                    # only a second look, once it would have finished, finds it.
                    await asyncio.sleep(0.5)
                    if not await hog[0].fetchval(count, srv.database):
                        break
                await hog[0].execute(end, srv.database)
            full.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
        finally:
            for conn in hog:
                await conn.close()

    holder = threading.Thread(target=lambda: run_coroutine(take_every_slot))
    holder.start()
    try:
        assert full.wait(30)
        conn = _Conn(srv, clinic.key)
        address = unique_email("slots")
        status, headers, body = conn.request("POST", "/v1/viewer/users", invite_body(email=address))
        _assert_503(status, headers, body, "database_unavailable")
        status, _, ready = conn.request("GET", "/readyz")
        assert status == 503 and ready["reason"] == "database_unavailable", ready
        conn.close()
    finally:
        stop.set()
        holder.join(30)
    _until(
        lambda: clinic.client.post(
            "/v1/viewer/users", json=invite_body(email=address)
        ).status_code == 201,
        what="a 201 once slots are free",
    )
    assert srv.sql(f"SELECT count(*) FROM users WHERE email = '{address}'")[0][0] == 1


# --- 13: one stalled transaction cannot block a clinic's writes ----------------------------


def test_audit_lock_held_elsewhere_gives_503_after_lock_timeout_then_recovers(
    server_on: Any,
) -> None:
    import asyncpg  # type: ignore[import-untyped]
    from avara_viewer.audit.service import _lock_key

    srv = server_on("postgresql", pg_lock_timeout="1s")
    srv.start()
    clinic = srv.create_clinic()
    url = srv.pg_admin_url.rsplit("/", 1)[0] + "/" + str(srv.database)
    held = threading.Event()
    release = threading.Event()

    async def hold() -> None:
        # A stalled process: a transaction holding the clinic's audit lock, doing nothing.
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(clinic.id))
                held.set()
                while not release.is_set():
                    await asyncio.sleep(0.05)
        finally:
            await conn.close()

    holder = threading.Thread(target=lambda: run_coroutine(hold))
    holder.start()
    try:
        assert held.wait(10)
        conn = _Conn(srv, clinic.key)
        address = unique_email("locked")
        status, headers, body = conn.request("POST", "/v1/viewer/users", invite_body(email=address))
        _assert_503(status, headers, body, "database_unavailable")
        status, _, _ = conn.request("GET", "/healthz")  # the connection stays usable
        assert status == 200
        conn.close()
        assert srv.sql(f"SELECT count(*) FROM users WHERE email = '{address}'")[0][0] == 0
        # Another clinic is not held up at all.
        other = srv.create_clinic("Other Clinic")
        assert other.client.post("/v1/viewer/users", json=invite_body()).status_code == 201
    finally:
        release.set()
        holder.join(10)
    retried = clinic.client.post("/v1/viewer/users", json=invite_body(email=address))
    assert retried.status_code == 201


# --- 11: one slow mail conversation does not stop the rest ----------------------------------


def test_a_hanging_smtp_conversation_does_not_hold_other_mail(fresh_server: Any) -> None:
    sink = _SlowSink(slow_rcpt=10.0)
    sink.start()
    try:
        srv = fresh_server(sink.url)
        srv.start()
        clinic = srv.create_clinic()
        slow = [f"slow{i}.{unique_email()}" for i in range(2)]
        for address in slow:
            assert clinic.client.post(
                "/v1/viewer/users", json=invite_body(email=address)
            ).status_code == 201
        _until(lambda: len(sink.slow_seen) == 2, what="both slow conversations started")
        normal = [a for a, s in _invite_load(clinic.client, 20, "normal") if s == 201]
        assert len(normal) == 20
        for address in normal:
            sink.wait_for(address, timeout=30)
        # Every other email went out before the slow conversations would have answered.
        last = max(m.received_at for address in normal for m in sink.to(address))
        assert last < min(sink.slow_ends), (last, sink.slow_ends)
        for address in slow:  # retried on a fresh conversation, which answers at once
            sink.wait_for(address, timeout=30)
        assert max(_message_ids(sink).values()) == 1
    finally:
        sink.stop()


# --- 14: a clock step does not park mail ------------------------------------------------------


def test_a_backward_clock_step_does_not_park_queued_mail(
    fresh_server: Any, tmp_path: Path
) -> None:
    clock = tmp_path / "clock-offset"
    clock.write_text("3600")  # the server's wall clock runs an hour ahead...
    smtp_port = free_port()  # ...and the mail server is down
    srv = fresh_server(
        f"smtp://127.0.0.1:{smtp_port}",
        test_clock_offset_file=str(clock),
        outbox_max_backoff="2s",
    )
    srv.start()
    clinic = srv.create_clinic()
    addresses = [a for a, s in _invite_load(clinic.client, 6, "clock") if s == 201]
    assert len(addresses) == 6
    _until(
        lambda: srv.sql("SELECT min(attempts) FROM email_outbox WHERE status = 'pending'")[0][0]
        or 0,
        what="a failed attempt of each email",
    )
    clock.write_text("0")  # the clock is stepped back an hour
    time.sleep(0.3)
    ready = _ready(srv).json()
    assert ready["outbox"]["pending"] >= 6
    assert ready["outbox"]["oldestPendingAgeSeconds"] >= 0
    sink = SmtpSink(port=smtp_port)
    sink.start()
    try:
        for address in addresses:
            sink.wait_for(address, timeout=30)
    finally:
        sink.stop()
    _until(lambda: _ready(srv).json()["outbox"]["pending"] == 0, what="an empty outbox")


# --- 10: a paused sender's possible duplicates are counted ----------------------------------


class _HeldDataSink(SmtpSink):
    """DATA of the first message is held `hold` s (while the test pauses its sender)."""

    def __init__(self, hold: float) -> None:
        super().__init__()
        self.hold = hold
        self.data_started = threading.Event()

    def start(self) -> None:
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                first = not sink.data_started.is_set()
                sink.data_started.set()
                if first:
                    await asyncio.sleep(sink.hold)
                with sink.lock:
                    sink.mails.append(
                        Mail(envelope.mail_from, list(envelope.rcpt_tos),
                             bytes(envelope.content), time.time())
                    )
                return "250 Message accepted"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()


def test_a_paused_sender_whose_lease_was_taken_over_counts_the_duplicate_once(
    fresh_server: Any, tmp_path: Path
) -> None:
    sink = _HeldDataSink(hold=6.0)
    sink.start()
    a = fresh_server(sink.url)
    a.start()
    database_url = a.env.get("AVARA_VIEWER_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{a.data_dir / 'avara-viewer.db'}"
    )
    b: Server | None = None
    try:
        clinic = a.create_clinic()
        address = unique_email("paused")
        assert clinic.client.post(
            "/v1/viewer/users", json=invite_body(email=address)
        ).status_code == 201
        assert sink.data_started.wait(15)
        a.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
        try:
            # Another process on the same database takes the message over once the 3 s
            # lease has run out, and sends it.
            b = Server(
                a.backend, tmp_path / "b", sink.url,
                database_url=database_url, secret_key=a.env["AVARA_VIEWER_SECRET_KEY"],
            )
            b.start()
            sink.wait_for(address, timeout=20)
        finally:
            a.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        # The paused conversation, on waking, either completes (a second copy) or is cut off
        # before its end of data because its lease ran out; either way the possible duplicate
        # is counted once, by whichever of the two recorded second.
        name = "avara_viewer_email_lease_lost_total"
        try:
            _until(lambda: _metric(a, name) + _metric(b, name) >= 1, what="the duplicate counted")
        except AssertionError as exc:
            logs = [s.log_path.read_text()[-3000:] for s in (a, b) if s is not None]
            raise AssertionError(f"{exc}\n--- a ---\n{logs[0]}\n--- b ---\n{logs[-1]}") from None
        time.sleep(1)  # both have recorded by now; the count must not go on to 2
        assert _metric(a, name) + _metric(b, name) == 1
        copies = _message_ids(sink)
        assert [len(copies), *copies.values()] in ([1, 1], [1, 2])  # copies share one id
        assert a.sql("SELECT status FROM email_outbox") == [("sent",)]
    finally:
        if b is not None:
            b.destroy()
        sink.stop()
