"""Bounded crash and mail-flapping runs (bench/reliability/crash.py and outage.py run the long
ones): every invite answered 201 survives SIGKILLs exactly once and its email arrives."""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
from collections import Counter

import httpx
from support import Server, SmtpSink, free_port, invite_body, run_coroutine

KILLS = 3
CLIENTS = 8


async def _invite_until_killed(server: Server, key: str, run: int) -> tuple[list[str], int]:
    acked: list[str] = []
    server_errors = 0
    serial = iter(range(10**9))

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal server_errors
        while True:
            email = f"kill.{run}.{next(serial)}.{random.getrandbits(24):06x}@hospital.example"
            try:
                response = await client.post("/v1/viewer/users", json=invite_body(email=email))
            except httpx.HTTPError:
                return
            if response.status_code == 201:
                acked.append(email)
            else:
                server_errors += response.status_code >= 500

    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as client:
        tasks = [asyncio.create_task(client_loop(client)) for _ in range(CLIENTS)]
        await asyncio.sleep(random.uniform(0.3, 0.9))
        server.stop(signal.SIGKILL)
        await asyncio.gather(*tasks)
    return acked, server_errors


def _drain(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.sql("SELECT count(*) FROM email_outbox WHERE status = 'pending'") == [(0,)]:
            return
        time.sleep(0.2)
    raise AssertionError("the outbox did not drain")


def _message_ids(sink: SmtpSink) -> dict[str, list[str]]:
    with sink.lock:
        mails = list(sink.mails)
    ids: dict[str, list[str]] = {}
    for mail in mails:
        for rcpt in mail.rcpt:
            ids.setdefault(rcpt, []).append(str(mail.message["Message-ID"]))
    return ids


def test_sigkills_under_invite_load_lose_and_double_nothing_acknowledged(fresh_server) -> None:
    sink = SmtpSink(port=free_port())
    sink.start()
    try:
        server = fresh_server(sink.url)
        server.start()
        clinic = server.create_clinic("Kill Clinic")
        acked: list[str] = []
        for run in range(KILLS):
            if server.process is None:
                server.start()
            got, server_errors = run_coroutine(
                lambda run=run: _invite_until_killed(server, clinic.key, run)
            )
            assert server_errors == 0
            acked += got
        server.start()
        _drain(server)
        assert len(acked) > 10
        users = Counter(e for (e,) in server.sql("SELECT email FROM users"))
        invited = Counter(
            e
            for (e,) in server.sql(
                "SELECT u.email FROM invitations i JOIN users u ON u.id = i.user_id"
            )
        )
        assert [e for e in acked if users[e] != 1 or invited[e] != 1] == []
        assert all(n == 1 for n in users.values())  # nothing in flight was made twice
        time.sleep(0.5)
        ids = _message_ids(sink)
        assert [e for e in acked if not ids.get(e)] == []
        assert [e for e, m in ids.items() if len(set(m)) > 1] == []  # copies share a Message-ID
    finally:
        sink.stop()


def test_a_flapping_mail_server_gets_every_email_in_the_end(fresh_server) -> None:
    sink = SmtpSink(port=free_port())
    server = fresh_server(sink.url, outbox_max_backoff="1s")
    server.start()
    clinic = server.create_clinic("Flap Clinic")
    stop = threading.Event()

    def flap() -> None:
        while not stop.is_set():
            sink.start()
            time.sleep(0.7)
            sink.stop()
            time.sleep(0.7)

    flapper = threading.Thread(target=flap)
    flapper.start()
    emails = []
    try:
        for _ in range(30):
            response = clinic.client.post("/v1/viewer/users", json=invite_body())
            assert response.status_code == 201
            emails.append(response.json()["email"])
            time.sleep(0.2)
    finally:
        stop.set()
        flapper.join()
    sink.start()
    try:
        _drain(server)
        ids = _message_ids(sink)
        assert [e for e in emails if not ids.get(e)] == []
        assert [e for e, m in ids.items() if len(set(m)) > 1] == []
        [(retried,)] = server.sql("SELECT count(*) FROM email_outbox WHERE attempts > 1")
        assert retried > 0  # the outage was real: some emails needed another attempt
        assert server.sql("SELECT DISTINCT status FROM email_outbox") == [("sent",)]
    finally:
        sink.stop()
