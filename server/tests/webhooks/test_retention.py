"""Webhook records are not kept for ever: finished deliveries, their attempts and events go
after AVARA_VIEWER_WEBHOOK_RETENTION, while a delivery still owed to an endpoint stays; and an
erased person's delivered events go at once."""

from __future__ import annotations

from pathlib import Path

from scim.scim_support import scim_clinic
from support import Clinic, Server, SmtpSink, invite_body, unique_email
from webhooks.receiver import FAST_RETRIES, Receiver, deliveries, subscribe, wait_until


def _invite(clinic: Clinic, email: str) -> str:
    response = clinic.client.post("/v1/viewer/users", json=invite_body(email=email))
    assert response.status_code == 201, response.text
    return str(response.json()["userId"])


def test_finished_deliveries_go_after_the_retention_and_owed_ones_stay(
    backend: str, smtp_sink: SmtpSink, tmp_path: Path, receiver: Receiver
) -> None:
    # The real retry schedule (next attempt after 5 s, then minutes) keeps the delivery to the
    # endpoint that refuses connections pending for the whole test.
    settings = {**FAST_RETRIES, "webhook_retry_scale": "1", "webhook_retention": "2s"}
    server = Server(backend, tmp_path / "srv", smtp_sink.url, **settings)
    server.start()
    try:
        clinic = server.create_clinic("Retention Clinic")
        answering = subscribe(clinic, receiver, eventTypes=["user.invited"])
        refused = clinic.client.post(
            "/v1/viewer/webhook-endpoints",
            json={"url": "http://127.0.0.1:9/hooks", "eventTypes": ["user.invited"]},
        ).json()
        email = unique_email("kept")
        user_id = _invite(clinic, email)
        receiver.wait_for_types("user.invited")
        [event] = receiver.events("user.invited")
        assert event["data"]["userId"] == user_id
        wait_until(
            lambda: [d["status"] for d in deliveries(clinic, answering["endpointId"])]
            == ["succeeded"],
            what="the delivery recorded as succeeded",
        )

        # Older than the retention: the delivered one goes (the sweep runs every 0.3 s here).
        wait_until(
            lambda: deliveries(clinic, answering["endpointId"]) == [],
            what="the finished delivery deleted",
        )
        owed = deliveries(clinic, refused["endpointId"])
        assert [(d["status"], d["eventId"]) for d in owed] == [("pending", event["id"])]
        # The event stays for the delivery still owed; the delivered one's attempts are gone.
        assert server.sql(f"SELECT count(*) FROM webhook_events WHERE id = '{event['id']}'") == [
            (1,)
        ]
        assert server.sql(
            "SELECT count(*) FROM webhook_attempts a JOIN webhook_deliveries d "
            f"ON d.seq = a.delivery_seq WHERE d.endpoint_id = '{answering['endpointId']}'"
        ) == [(0,)]
    finally:
        server.destroy()


def test_an_erased_persons_delivered_events_go_with_them(
    hooks_server: Server, receiver: Receiver
) -> None:
    scim = scim_clinic(hooks_server, "Erasure Webhook Clinic")
    endpoint = subscribe(scim.clinic, receiver)
    email = unique_email("erased")
    user_id = _invite(scim.clinic, email)
    receiver.wait_for_types("user.invited", "invitation.email_delivered")
    assert hooks_server.sql(f"SELECT count(*) FROM webhook_events WHERE body LIKE '%{email}%'") != [
        (0,)
    ]

    assert scim.client.delete(f"/Users/{user_id}").status_code == 204
    receiver.wait_for_types("user.deleted")
    [deleted] = receiver.events("user.deleted")
    assert email not in str(deleted)
    # Nothing stored for webhooks names them any more; the endpoint's log keeps user.deleted.
    assert hooks_server.sql(f"SELECT count(*) FROM webhook_events WHERE body LIKE '%{email}%'") == [
        (0,)
    ]
    kept = deliveries(scim.clinic, endpoint["endpointId"])
    assert [d["eventType"] for d in kept] == ["user.deleted"]
