"""/v1/viewer/webhook-endpoints: the same conventions as the rest of the API (camelCase,
problem errors naming fields, Idempotency-Key, cursor pages, tenancy, audit), the secret
shown once and never at rest in the clear, rotation, test events and replays."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from support import Clinic, Server, invite_body
from webhooks.receiver import FAST_RETRIES, Receiver, deliveries, subscribe, wait_until

BASE = "/v1/viewer/webhook-endpoints"
SECRET = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")


def test_create_retrieve_list_update_delete(hooks_server: Server, hooks_clinic: Clinic) -> None:
    client = hooks_clinic.client
    created = client.post(BASE, json={"url": "http://127.0.0.1:9/a", "description": "PACS"})
    assert created.status_code == 201
    endpoint = created.json()
    assert re.match(r"^whep_[0-9a-f]{32}$", endpoint["endpointId"])
    assert SECRET.match(endpoint["secret"])
    assert endpoint["eventTypes"] is None and endpoint["enabled"] is True
    path = f"{BASE}/{endpoint['endpointId']}"
    shown = client.get(path).json()
    assert "secret" not in shown
    assert shown == {k: v for k, v in endpoint.items() if k != "secret"}

    second = client.post(BASE, json={"url": "http://127.0.0.1:9/b"}).json()
    page = client.get(BASE, params={"limit": 1}).json()
    assert page["hasMore"] is True and page["endpoints"][0]["endpointId"] == second["endpointId"]
    rest = client.get(BASE, params={"limit": 1, "cursor": page["cursor"]}).json()
    assert [e["endpointId"] for e in rest["endpoints"]] == [endpoint["endpointId"]]
    assert rest["hasMore"] is False and rest["cursor"] is None

    changed = client.patch(
        path, json={"eventTypes": ["user.invited", "invitation.declined"], "description": None}
    )
    assert changed.status_code == 200
    assert changed.json()["eventTypes"] == ["invitation.declined", "user.invited"]
    assert changed.json()["description"] is None
    assert client.patch(path, json={"enabled": False}).json()["disabledReason"]

    deleted = client.delete(path)
    assert deleted.status_code == 200 and deleted.json()["success"] is True
    assert client.get(path).status_code == 404
    actions = hooks_server.sql(
        "SELECT action FROM audit_log WHERE target_id = '"
        + endpoint["endpointId"]
        + "' ORDER BY seq"
    )
    assert [a for (a,) in actions] == [
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.updated",
        "webhook_endpoint.deleted",
    ]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "url", "required"),
        ({"url": "ftp://example.org/x"}, "url", "http or https"),
        ({"url": "http://user:pw@127.0.0.1/x"}, "url", "credentials"),
        ({"url": "not a url"}, "url", "http or https"),
        ({"url": 42}, "url", "string"),
        ({"url": "http://127.0.0.1/x", "eventTypes": ["user.exploded"]}, "eventTypes", "unknown"),
        ({"url": "http://127.0.0.1/x", "eventTypes": []}, "eventTypes", "at least one"),
        ({"url": "http://127.0.0.1/x", "eventTypes": [{}]}, "eventTypes.0", "string"),
        ({"url": "http://127.0.0.1/x", "eventTypes": "user.invited"}, "eventTypes", "list"),
        ({"url": "http://127.0.0.1/x", "enabled": "yes"}, "enabled", "boolean"),
        ({"url": "http://127.0.0.1/x", "secret": "whsec_mine"}, "secret", "not a known field"),
        ({"url": "http://127.0.0.1/x", "description": "x" * 501}, "description", "500"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    hooks_clinic: Clinic, body: dict, field: str, message: str
) -> None:
    response = hooks_clinic.client.post(BASE, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert any(e["field"] == field and message in e["message"] for e in errors), errors


def test_update_refuses_nulls_and_unknown_ids(hooks_clinic: Clinic) -> None:
    endpoint = hooks_clinic.client.post(BASE, json={"url": "http://127.0.0.1:9/a"}).json()
    path = f"{BASE}/{endpoint['endpointId']}"
    response = hooks_clinic.client.patch(path, json={"url": None, "enabled": None})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"url", "enabled"}
    for bad in ("whep_" + "0" * 32, "nonsense", "whep_'; DROP TABLE x"):
        assert hooks_clinic.client.get(f"{BASE}/{bad}").status_code == 404
        assert hooks_clinic.client.delete(f"{BASE}/{bad}").status_code == 404
        assert hooks_clinic.client.post(f"{BASE}/{bad}/test").status_code == 404
    unknown = hooks_clinic.client.post(f"{path}/deliveries/whd_{'0' * 32}/retry")
    assert unknown.status_code == 404
    assert hooks_clinic.client.get(f"{BASE}", params={"cursor": "forged"}).status_code == 422


def test_a_clinic_has_at_most_twenty_endpoints(hooks_clinic: Clinic) -> None:
    for n in range(20):
        response = hooks_clinic.client.post(BASE, json={"url": f"http://127.0.0.1:9/{n}"})
        assert response.status_code == 201, response.text
    refused = hooks_clinic.client.post(BASE, json={"url": "http://127.0.0.1:9/more"})
    assert refused.status_code == 409
    assert refused.json()["code"] == "too_many_webhook_endpoints"


def test_another_clinic_cannot_see_or_touch_an_endpoint(
    hooks_server: Server, hooks_clinic: Clinic
) -> None:
    endpoint = hooks_clinic.client.post(BASE, json={"url": "http://127.0.0.1:9/a"}).json()
    other = hooks_server.create_clinic("Other Clinic")
    path = f"{BASE}/{endpoint['endpointId']}"
    assert other.client.get(path).status_code == 404
    assert other.client.patch(path, json={"enabled": False}).status_code == 404
    assert other.client.delete(path).status_code == 404
    assert other.client.post(f"{path}/rotate-secret").status_code == 404
    assert other.client.get(f"{path}/deliveries").status_code == 404
    assert other.client.get(BASE).json()["endpoints"] == []
    assert hooks_clinic.client.get(path).json()["enabled"] is True


def test_idempotency_key_replays_the_create_with_its_secret_and_never_stores_it(
    hooks_server: Server, hooks_clinic: Clinic
) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"url": "http://127.0.0.1:9/idem"}
    first = hooks_clinic.client.post(BASE, json=body, headers=key)
    again = hooks_clinic.client.post(BASE, json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = hooks_clinic.client.post(BASE, json={"url": "http://127.0.0.1:9/x"}, headers=key)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    secret = first.json()["secret"]
    rotated = hooks_clinic.client.post(f"{BASE}/{first.json()['endpointId']}/rotate-secret")
    assert rotated.status_code == 200 and SECRET.match(rotated.json()["secret"])
    # Neither secret is anywhere in the database in the clear.
    for table in ("webhook_endpoints", "idempotency_keys", "audit_log"):
        dump = str(hooks_server.sql(f"SELECT * FROM {table}"))
        assert secret[6:] not in dump and rotated.json()["secret"][6:] not in dump, table
    assert secret not in (hooks_server.data_dir / "server.log").read_text()


def test_rotation_signs_with_both_secrets(hooks_clinic: Clinic, receiver: Receiver) -> None:
    endpoint = subscribe(hooks_clinic, receiver, eventTypes=["user.invited"])
    old = endpoint["secret"]
    rotated = hooks_clinic.client.post(f"{BASE}/{endpoint['endpointId']}/rotate-secret").json()
    new = rotated["secret"]
    assert new != old
    # The receiver checks every delivery under each secret on its own.
    receiver.secrets = [old, new]
    hooks_clinic.client.post("/v1/viewer/users", json=invite_body())
    receiver.wait_for(lambda got: len(got) >= 1)
    signatures = receiver.received[0].headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)


def test_test_event_then_replay_with_the_same_webhook_id(
    hooks_clinic: Clinic, receiver: Receiver
) -> None:
    endpoint = subscribe(hooks_clinic, receiver, eventTypes=["user.invited"])
    path = f"{BASE}/{endpoint['endpointId']}"
    sent = hooks_clinic.client.post(f"{path}/test")
    assert sent.status_code == 200 and sent.json()["eventType"] == "webhook.test"
    [event] = receiver.wait_for(lambda got: len(got) >= 1)
    assert event["type"] == "webhook.test"
    assert event["data"]["endpointId"] == endpoint["endpointId"]
    delivery_id = sent.json()["deliveryId"]
    wait_until(
        lambda: deliveries(hooks_clinic, endpoint["endpointId"], status="succeeded"),
        what="the test delivery recorded",
    )
    replay = hooks_clinic.client.post(f"{path}/deliveries/{delivery_id}/retry")
    assert replay.status_code == 200 and replay.json()["status"] == "pending"
    receiver.wait_for(lambda got: len(got) >= 2)
    assert {r.headers["webhook-id"] for r in receiver.received} == {event["id"]}
    [done] = wait_until(
        lambda: deliveries(hooks_clinic, endpoint["endpointId"], status="succeeded"),
        what="the replay recorded",
    )
    assert done["attempts"] == 2 and len(done["attemptLog"]) == 2


def test_private_addresses_and_plain_http_are_refused_by_default(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    server = Server(backend, tmp_path / "srv", None)
    try:
        server.start()
        clinic = server.create_clinic("Strict Clinic")
        for url, why in [
            (receiver.url, "https"),
            ("https://127.0.0.1/hooks", "public addresses"),
            ("https://localhost:8443/hooks", "public addresses"),
            ("https://[::1]/hooks", "public addresses"),
            ("https://[::ffff:127.0.0.1]/hooks", "public addresses"),
            ("https://10.1.2.3/hooks", "public addresses"),
            ("https://169.254.169.254/latest/meta-data", "public addresses"),
            ("https://100.64.0.1/hooks", "public addresses"),
            ("https://0.0.0.0/hooks", "public addresses"),
            ("https://no-such-host.invalid/hooks", "does not resolve"),
        ]:
            response = clinic.client.post(BASE, json={"url": url})
            assert response.status_code == 422, (url, response.text)
            [error] = response.json()["errors"]
            assert error["field"] == "url" and why in error["message"], (url, error)
        assert server.sql("SELECT count(*) FROM webhook_endpoints") == [(0,)]
    finally:
        server.destroy()


def test_addresses_are_checked_again_when_delivering(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    """An endpoint saved while private addresses were allowed is not called once they are not
    (the same check guards a name that starts resolving to a private address)."""
    server = Server(backend, tmp_path / "srv", None, **FAST_RETRIES)
    try:
        server.start()
        clinic = server.create_clinic("Changing Clinic")
        endpoint = subscribe(clinic, receiver, eventTypes=["user.invited"])
        server.stop()
        server.env["AVARA_VIEWER_WEBHOOK_ALLOW_PRIVATE"] = "false"
        server.start()
        clinic.client.post("/v1/viewer/users", json=invite_body())
        [delivery] = wait_until(
            lambda: [d for d in deliveries(clinic, endpoint["endpointId"]) if d["attempts"] >= 2],
            what="refused attempts",
        )
        assert "not a public address" in delivery["attemptLog"][0]["error"]
        assert receiver.received == []
    finally:
        server.destroy()
