"""Never lost: a delivering process killed mid-batch, several workers on one PostgreSQL, and
the expiry sweeper announcing each lapsed invitation once."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path

import httpx
from support import CLI, Server, invite_body
from webhooks.receiver import FAST_RETRIES, Receiver, deliveries, subscribe, wait_until


def _invite_many(server: Server, key: str, count: int) -> list[str]:
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        ids = []
        for _ in range(count):
            response = client.post("/v1/viewer/users", json=invite_body())
            assert response.status_code == 201, response.text
            ids.append(response.json()["userId"])
        return ids


def test_sigkill_mid_batch_loses_nothing(backend: str, tmp_path: Path, receiver: Receiver) -> None:
    # Each answer takes 0.2 s, so the kill lands while deliveries are in flight.
    receiver.answer = lambda got, attempt: (200, {}, 0.2)
    server = Server(backend, tmp_path / "srv", None, **FAST_RETRIES)
    try:
        server.start()
        clinic = server.create_clinic("Killed Clinic")
        subscribe(clinic, receiver, eventTypes=["user.invited"])
        users = _invite_many(server, clinic.key, 40)
        receiver.wait_for(lambda got: len(receiver.received) >= 5)
        server.stop(signal.SIGKILL)
        server.start()
        receiver.wait_for(lambda got: {e["data"]["userId"] for e in got} >= set(users), timeout=60)
        by_id: dict[str, set[str]] = {}
        for got in receiver.received:
            by_id.setdefault(got.headers["webhook-id"], set()).add(got.event["id"])
        # Sent again after the kill perhaps, but always under the event's own webhook-id.
        assert all(ids == {webhook_id} for webhook_id, ids in by_id.items())
        assert len(by_id) == len(users)
    finally:
        server.destroy()


def test_two_workers_on_postgresql_attempt_each_delivery_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    server = Server("postgresql", tmp_path / "srv", None, **FAST_RETRIES)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        server.start("--no-email")
        clinic = server.create_clinic("Scaled Clinic")
        endpoint = subscribe(clinic, receiver, eventTypes=["user.invited"])
        workers = [
            subprocess.Popen(
                [CLI, "worker"],
                env=server.env,
                stdout=(tmp_path / f"worker{n}.log").open("ab"),
                stderr=subprocess.STDOUT,
            )
            for n in range(2)
        ]
        # Both workers are delivering before the events exist, so they compete for every one.
        wait_until(
            lambda: all(
                "webhook delivery started" in (tmp_path / f"worker{n}.log").read_text()
                for n in range(2)
            ),
            timeout=30,
            what="both workers started",
        )
        users = _invite_many(server, clinic.key, 60)
        receiver.wait_for(lambda got: {e["data"]["userId"] for e in got} >= set(users), timeout=60)
        wait_until(
            lambda: len(deliveries(clinic, endpoint["endpointId"], status="succeeded")) == 60,
            what="every delivery recorded",
        )
        received = Counter(r.headers["webhook-id"] for r in receiver.received)
        assert len(received) == 60 and max(received.values()) == 1
        assert all(d["attempts"] == 1 for d in deliveries(clinic, endpoint["endpointId"]))
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=20)
        server.destroy()


def test_each_lapsed_invitation_is_announced_once(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    server = Server(backend, tmp_path / "srv", None, invitation_ttl="1s", **FAST_RETRIES)
    try:
        server.start()
        clinic = server.create_clinic("Expiring Clinic")
        subscribe(clinic, receiver, eventTypes=["invitation.expired"])
        users = _invite_many(server, clinic.key, 3)
        events = receiver.wait_for(lambda got: len(got) >= 3)
        assert sorted(e["data"]["userId"] for e in events) == sorted(users)
        assert all(e["data"]["status"] == "sent" for e in events)
        # A later invitation lapses and is announced: the sweeps in between announced none of
        # the first three again.
        [late] = _invite_many(server, clinic.key, 1)
        events = receiver.wait_for(lambda got: len(got) >= 4)
        assert Counter(e["data"]["userId"] for e in events) == Counter([*users, late])
        assert server.sql("SELECT count(*) FROM webhook_events") == [(4,)]
    finally:
        server.destroy()
