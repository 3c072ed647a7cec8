"""Receivers that fail: down for a while, 500 then 200, 410, hanging, 429 with Retry-After,
failing for good. Every event still arrives (or is visibly given up), with the same
webhook-id on every attempt; every attempt is visible through the deliveries API."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from support import Clinic, Server, invite_body
from webhooks.receiver import FAST_RETRIES, Receiver, deliveries, subscribe, wait_until


def _invite(clinic: Clinic) -> dict:
    response = clinic.client.post("/v1/viewer/users", json=invite_body())
    assert response.status_code == 201, response.text
    return response.json()


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_a_receiver_down_for_a_while_gets_everything_once_it_is_up(
    hooks_clinic: Clinic, receiver: Receiver
) -> None:
    endpoint = subscribe(hooks_clinic, receiver, eventTypes=["user.invited"])
    receiver.stop()
    users = [_invite(hooks_clinic) for _ in range(3)]
    # Refused connections are failed attempts, retried on the (shrunk) schedule.
    failing = wait_until(
        lambda: [d for d in deliveries(hooks_clinic, endpoint["endpointId"]) if d["attempts"] >= 2],
        what="second attempts",
    )
    assert failing[0]["status"] == "pending" and failing[0]["nextAttemptAt"] is not None
    assert failing[0]["attemptLog"][0]["responseStatus"] is None
    assert "Connect" in failing[0]["attemptLog"][0]["error"]
    receiver.start()
    events = receiver.wait_for(lambda got: len(got) >= 3)
    assert sorted(e["data"]["userId"] for e in events) == sorted(u["userId"] for u in users)
    wait_until(
        lambda: (
            [d["status"] for d in deliveries(hooks_clinic, endpoint["endpointId"])]
            == ["succeeded"] * 3
        ),
        what="three succeeded deliveries",
    )


def test_500_then_200_is_retried_with_the_same_webhook_id(
    hooks_clinic: Clinic, receiver: Receiver
) -> None:
    receiver.answer = lambda got, attempt: (500, {}, 0.0) if attempt == 1 else (200, {}, 0.0)
    endpoint = subscribe(hooks_clinic, receiver, eventTypes=["user.invited"])
    user = _invite(hooks_clinic)
    [event] = receiver.wait_for(lambda got: len(got) >= 1)
    assert event["data"]["userId"] == user["userId"]
    assert [r.headers["webhook-id"] for r in receiver.received] == [event["id"], event["id"]]
    [delivery] = wait_until(
        lambda: [
            d
            for d in deliveries(hooks_clinic, endpoint["endpointId"])
            if d["status"] == "succeeded"
        ],
        what="the delivery recorded",
    )
    assert delivery["attempts"] == 2 and delivery["eventId"] == event["id"]
    assert [a["responseStatus"] for a in delivery["attemptLog"]] == [200, 500]
    assert delivery["attemptLog"][1]["error"] == "HTTP 500"
    assert all(a["latencyMs"] >= 0 for a in delivery["attemptLog"])


def test_410_disables_the_endpoint_until_it_is_enabled_again(
    hooks_clinic: Clinic, receiver: Receiver
) -> None:
    receiver.answer = lambda got, attempt: (410, {}, 0.0)
    endpoint = subscribe(hooks_clinic, receiver, eventTypes=["user.invited"])
    path = f"/v1/viewer/webhook-endpoints/{endpoint['endpointId']}"
    first = _invite(hooks_clinic)
    disabled = wait_until(
        lambda: (e := hooks_clinic.client.get(path).json())["enabled"] is False and e,
        what="the endpoint disabled",
    )
    assert "410" in disabled["disabledReason"]
    assert len(receiver.received) == 1
    _invite(hooks_clinic)  # while disabled: not queued for this endpoint
    assert len(deliveries(hooks_clinic, endpoint["endpointId"])) == 1
    receiver.answer = lambda got, attempt: (200, {}, 0.0)
    enabled = hooks_clinic.client.patch(path, json={"enabled": True})
    assert enabled.status_code == 200 and enabled.json()["disabledReason"] is None
    [event] = receiver.wait_for(lambda got: len(got) >= 1)
    assert event["data"]["userId"] == first["userId"]


def test_a_hanging_receiver_times_out_and_is_retried(
    hooks_clinic: Clinic, receiver: Receiver
) -> None:
    # The test server's timeout is 1 s; the first attempt hangs for 3 s.
    receiver.answer = lambda got, attempt: (200, {}, 3.0) if attempt == 1 else (200, {}, 0.0)
    endpoint = subscribe(hooks_clinic, receiver, eventTypes=["user.invited"])
    _invite(hooks_clinic)
    [delivery] = wait_until(
        lambda: [
            d
            for d in deliveries(hooks_clinic, endpoint["endpointId"])
            if d["status"] == "succeeded"
        ],
        what="the delivery after the timeout",
    )
    assert delivery["attempts"] == 2
    assert delivery["attemptLog"][1]["error"] == "timed out after 1 s"
    assert delivery["attemptLog"][1]["latencyMs"] < 3000


def test_429_with_retry_after_is_obeyed(hooks_clinic: Clinic, receiver: Receiver) -> None:
    receiver.answer = lambda got, attempt: (
        (429, {"Retry-After": "2"}, 0.0) if attempt == 1 else (200, {}, 0.0)
    )
    endpoint = subscribe(hooks_clinic, receiver, eventTypes=["user.invited"])
    _invite(hooks_clinic)
    [pending] = wait_until(
        lambda: [
            d
            for d in deliveries(hooks_clinic, endpoint["endpointId"])
            if d["responseStatus"] == 429
        ],
        what="the 429 recorded",
    )
    # The shrunk schedule would retry within a millisecond; Retry-After asks for 2 s.
    wait = _when(pending["nextAttemptAt"]) - _when(pending["lastAttemptAt"])
    assert wait.total_seconds() >= 1.9
    receiver.wait_for(lambda got: len(got) >= 1)


def test_a_redirect_is_not_followed(hooks_clinic: Clinic, receiver: Receiver) -> None:
    elsewhere = Receiver().start()
    try:
        receiver.answer = lambda got, attempt: (
            (307, {"Location": elsewhere.url}, 0.0) if attempt == 1 else (200, {}, 0.0)
        )
        endpoint = subscribe(hooks_clinic, receiver, eventTypes=["user.invited"])
        _invite(hooks_clinic)
        [delivery] = wait_until(
            lambda: [
                d
                for d in deliveries(hooks_clinic, endpoint["endpointId"])
                if d["status"] == "succeeded"
            ],
            what="the delivery",
        )
        assert delivery["attemptLog"][1]["error"] == "HTTP 307 (redirects are not followed)"
        assert elsewhere.received == []
    finally:
        elsewhere.stop()


def test_failing_for_good_gives_up_and_disables_the_endpoint(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    # A hundred-thousandth of the schedule: ten attempts within 3.3 s; "days" are 10 s here,
    # so that the ten attempts end before the endpoint is disabled even on a loaded machine.
    server = Server(
        backend,
        tmp_path / "srv",
        None,
        **{**FAST_RETRIES, "webhook_retry_scale": "0.00001", "webhook_disable_after": "10s"},
    )
    try:
        server.start()
        clinic = server.create_clinic("Failing Receiver Clinic")
        receiver.answer = lambda got, attempt: (500, {}, 0.0)
        endpoint = subscribe(clinic, receiver, eventTypes=["user.invited"])
        path = f"/v1/viewer/webhook-endpoints/{endpoint['endpointId']}"
        _invite(clinic)
        [failed] = wait_until(
            lambda: [
                d for d in deliveries(clinic, endpoint["endpointId"]) if d["status"] == "failed"
            ],
            what="the delivery given up",
        )
        assert failed["attempts"] == 10 and failed["nextAttemptAt"] is None
        assert failed["lastError"] == "gave up after 10 attempts: HTTP 500"
        assert len(receiver.received) == 10
        # Failing past the 10 s limit disables the endpoint: new events, one a second, keep
        # its attempts failing until the limit is crossed.
        last_invite = [0.0]

        def disabled_yet() -> Any:
            endpoint_now = clinic.client.get(path).json()
            if not endpoint_now["enabled"]:
                return endpoint_now
            if time.monotonic() - last_invite[0] >= 1.0:
                _invite(clinic)
                last_invite[0] = time.monotonic()
            return None

        disabled = wait_until(disabled_yet, timeout=40, what="the endpoint disabled")
        assert "failed for 10 seconds" in disabled["disabledReason"]
        # A hand-made retry of a given-up delivery needs the endpoint enabled again.
        retry = f"{path}/deliveries/{failed['deliveryId']}/retry"
        assert clinic.client.post(retry).status_code == 409
        receiver.answer = lambda got, attempt: (200, {}, 0.0)
        assert clinic.client.patch(path, json={"enabled": True}).status_code == 200
        again = clinic.client.post(retry)
        assert again.status_code == 200 and again.json()["status"] == "pending"
        replayed = wait_until(
            lambda: [
                d
                for d in deliveries(clinic, endpoint["endpointId"])
                if d["deliveryId"] == failed["deliveryId"] and d["status"] == "succeeded"
            ],
            what="the retried delivery succeeding",
        )
        assert replayed[0]["attempts"] == 11
        assert failed["eventId"] in {
            r.headers["webhook-id"] for r in receiver.received if r.answered == 200
        }
    finally:
        server.destroy()
