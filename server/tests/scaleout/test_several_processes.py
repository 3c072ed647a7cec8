"""Two API processes and two email workers on one PostgreSQL: nothing sent twice, nothing lost."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from support import CLI, Server, SmtpSink, free_port, invite_body


def _start_serve(server: Server, port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [CLI, "serve", "--no-email", "--host", "127.0.0.1", "--port", str(port)],
        env=server.env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(log.read_text())


async def _invite_everywhere(
    ports: list[int], key: str, bodies: list[dict], retries: list[dict]
) -> list[httpx.Response]:
    clients = [
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{p}", headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        for p in ports
    ]
    try:
        calls = [clients[i % 2].post("/v1/viewer/users", json=b) for i, b in enumerate(bodies)]
        # The same Idempotency-Key and body sent to both processes at once: one user.
        for body in retries:
            key_header = {"Idempotency-Key": str(uuid.uuid4())}
            calls += [c.post("/v1/viewer/users", json=body, headers=key_header) for c in clients]
        return await asyncio.gather(*calls)
    finally:
        for c in clients:
            await c.aclose()


def test_two_servers_and_two_workers_send_each_email_once(tmp_path: Path) -> None:
    sink = SmtpSink(port=free_port())
    sink.start()
    server = Server("postgresql", tmp_path / "data", sink.url, outbox_poll_interval="0.1")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        clinic = server.create_clinic("Scale-out Clinic")
        ports = [free_port(), free_port()]
        procs += [_start_serve(server, port, tmp_path / f"serve{port}.log") for port in ports]
        procs += [
            subprocess.Popen(
                [CLI, "worker"], env=server.env,
                stdout=(tmp_path / f"worker{n}.log").open("ab"), stderr=subprocess.STDOUT,
            )
            for n in range(2)
        ]
        bodies = [invite_body() for _ in range(300)]
        retries = [invite_body() for _ in range(20)]
        responses = asyncio.run(_invite_everywhere(ports, clinic.key, bodies, retries))
        assert [r.status_code for r in responses] == [201] * len(responses)
        pairs = responses[len(bodies):]
        for a, b in zip(pairs[::2], pairs[1::2], strict=True):
            assert a.json()["userId"] == b.json()["userId"]
        expected = [b["email"] for b in bodies + retries]
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and len({a for m in sink.mails for a in m.rcpt}) < len(expected)
        ):
            time.sleep(0.2)
        time.sleep(1.0)  # anything sent twice would arrive by now
        received = Counter(a for m in sink.mails for a in m.rcpt)
        assert set(received) == set(expected)
        assert max(received.values()) == 1, [a for a, n in received.items() if n > 1]
        message_ids = Counter(m.message["Message-ID"] for m in sink.mails)
        assert max(message_ids.values()) == 1
        # Every row sent. Under load a claimed message may be put back unsent when no SMTP
        # connection frees up within its batch's time ("not sent: no connection was free"),
        # and is claimed again: `attempts` counts claims, the sink above counts sends.
        rows = server.sql("SELECT status, count(*) FROM email_outbox GROUP BY 1")
        assert rows == [("sent", len(expected))]
        users = server.sql(f"SELECT count(*) FROM users WHERE clinic_id = '{clinic.id}'")
        assert users == [(len(expected),)]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(20)
        server.destroy()
        sink.stop()
