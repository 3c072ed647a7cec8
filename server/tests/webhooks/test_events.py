"""Every change an integrator cares about reaches a subscribed endpoint, signed, with `data`
exactly as the API returns the object; one user's events arrive in order."""

from __future__ import annotations

import re

import httpx
from dashboard.browser_support import csrf_of, link_in
from support import Clinic, Server, SmtpSink, invite_body, unique_email
from webhooks.receiver import Receiver, deliveries, subscribe, wait_until

EVENT_ID = re.compile(r"^whe_[0-9a-f]{32}$")


def _invite(clinic: Clinic, **fields: object) -> dict:
    response = clinic.client.post("/v1/viewer/users", json=invite_body(**fields))
    assert response.status_code == 201, response.text
    return response.json()


def _invitation_of(clinic: Clinic, user_id: str) -> dict:
    found = clinic.client.get("/v1/viewer/users/invitations", params={"userId": user_id}).json()
    return found["invitations"][0]


def _but_delivery(invitation: dict) -> dict:
    return {k: v for k, v in invitation.items() if k != "deliveryStatus"}


def test_user_changes_arrive_signed_with_the_api_objects(
    hooks_server: Server, hooks_clinic: Clinic, receiver: Receiver
) -> None:
    endpoint = subscribe(hooks_clinic, receiver)
    clinic = hooks_clinic
    user = _invite(clinic)
    updated = clinic.client.patch(f"/v1/viewer/users/{user['userId']}", json={"firstName": "Sam"})
    assert updated.status_code == 200
    revoke = clinic.client.post("/v1/viewer/users/revoke-access", json={"userId": user["userId"]})
    assert revoke.status_code == 200
    revoked_user = clinic.client.get(f"/v1/viewer/users/{user['userId']}").json()
    back = clinic.client.post("/v1/viewer/users/reactivate", json={"userId": user["userId"]})
    assert back.status_code == 200
    reactivated_user = clinic.client.get(f"/v1/viewer/users/{user['userId']}").json()

    events = receiver.wait_for_types(
        "user.invited", "user.updated", "user.access_revoked", "user.reactivated"
    )
    by_type = {e["type"]: e for e in events if e["type"].startswith("user.")}
    assert by_type["user.invited"]["data"] == user
    assert by_type["user.updated"]["data"] == updated.json()
    assert by_type["user.access_revoked"]["data"] == revoked_user
    assert by_type["user.reactivated"]["data"] == reactivated_user
    for event in events:
        assert EVENT_ID.match(event["id"]) and set(event) == {"id", "type", "createdAt", "data"}
    # Every request was verified by the receiver with both libraries (see the fixture).
    assert len(receiver.received) >= 4 and all(
        r.headers["webhook-signature"].startswith("v1,") for r in receiver.received
    )
    wanted = {e["id"] for e in events}
    wait_until(
        lambda: (
            {d["eventId"] for d in deliveries(clinic, endpoint["endpointId"])} >= wanted
            and all(d["status"] == "succeeded" for d in deliveries(clinic, endpoint["endpointId"]))
        ),
        what="the deliveries recorded as succeeded",
    )


def test_invitation_changes_and_email_outcomes_arrive(
    hooks_server: Server, hooks_clinic: Clinic, receiver: Receiver, smtp_sink: SmtpSink
) -> None:
    subscribe(hooks_clinic, receiver)
    clinic = hooks_clinic
    resent_user = _invite(clinic)
    invitation = _invitation_of(clinic, resent_user["userId"])
    resent = clinic.client.post(f"/v1/viewer/users/invitations/{invitation['invitationId']}/resend")
    assert resent.status_code == 200, resent.text
    revoked = clinic.client.post(
        "/v1/viewer/users/invitations/revoke", json={"invitationId": invitation["invitationId"]}
    )
    assert revoked.status_code == 200
    refused = _invite(clinic, email=f"reject550.{unique_email()}")
    accepted_user = _invite(clinic, hasDashboardAccess=False)
    declined_user = _invite(clinic, hasDashboardAccess=False)
    for person, action in ((accepted_user, "accept"), (declined_user, "decline")):
        link = link_in(smtp_sink.wait_for(person["email"])[0], hooks_server, "/invitations/accept")
        with httpx.Client() as browser:
            form = browser.get(link)
            data = {"token": link.rsplit("=", 1)[1], "csrf_token": csrf_of(form)}
            answer = browser.post(hooks_server.base_url + f"/invitations/{action}", data=data)
            assert answer.status_code == 200, answer.text

    receiver.wait_for_types(
        "invitation.resent",
        "invitation.revoked",
        "invitation.accepted",
        "invitation.declined",
        "invitation.email_failed",
        "invitation.email_delivered",
    )
    invitations = {
        e["type"]: e["data"] for e in receiver.events() if e["type"].startswith("invitation.")
    }
    assert invitations["invitation.resent"]["invitationId"] == invitation["invitationId"]
    # deliveryStatus may move on after the event (an email already sending when it happened).
    now_revoked = _invitation_of(clinic, resent_user["userId"])
    assert _but_delivery(invitations["invitation.revoked"]) == _but_delivery(now_revoked)
    assert invitations["invitation.revoked"]["status"] == "revoked"
    now_accepted = _invitation_of(clinic, accepted_user["userId"])
    assert _but_delivery(invitations["invitation.accepted"]) == _but_delivery(now_accepted)
    assert invitations["invitation.accepted"]["status"] == "accepted"
    assert invitations["invitation.declined"]["status"] == "rejected"
    assert invitations["invitation.declined"]["userId"] == declined_user["userId"]
    assert invitations["invitation.email_failed"]["userId"] == refused["userId"]
    assert invitations["invitation.email_failed"]["deliveryStatus"] == "failed"


def test_event_types_filter_what_an_endpoint_gets(hooks_clinic: Clinic, receiver: Receiver) -> None:
    subscribe(hooks_clinic, receiver, eventTypes=["user.updated"])
    user = _invite(hooks_clinic)
    hooks_clinic.client.patch(f"/v1/viewer/users/{user['userId']}", json={"lastName": "Lee"})
    receiver.wait_for_types("user.updated")
    assert [e["type"] for e in receiver.events()] == ["user.updated"]


def test_one_users_events_arrive_in_order_despite_failures(
    hooks_clinic: Clinic, receiver: Receiver
) -> None:
    # Every other event fails on its first attempt: later ones must wait for it.
    receiver.answer = lambda got, attempt: (
        (500, {}, 0.0)
        if attempt == 1 and int(got.event["data"]["lastName"][1:]) % 2
        else (200, {}, 0.0)
    )
    subscribe(hooks_clinic, receiver, eventTypes=["user.updated"])
    users = [_invite(hooks_clinic) for _ in range(3)]
    for n in range(1, 9):
        for user in users:
            response = hooks_clinic.client.patch(
                f"/v1/viewer/users/{user['userId']}", json={"lastName": f"v{n}"}
            )
            assert response.status_code == 200
    receiver.wait_for(lambda events: len(events) >= 24)
    for user in users:
        seen = [
            e["data"]["lastName"]
            for e in receiver.events()
            if e["data"]["userId"] == user["userId"]
        ]
        assert seen == [f"v{n}" for n in range(1, 9)]
    retried = [r for r in receiver.received if r.event["data"]["lastName"] in ("v1", "v3")]
    assert len(retried) == 2 * 2 * len(users)  # failed once, then delivered


def test_nothing_is_recorded_for_a_clinic_without_endpoints(hooks_server: Server) -> None:
    clinic = hooks_server.create_clinic("No Webhooks Clinic")
    _invite(clinic)
    rows = hooks_server.sql(f"SELECT count(*) FROM webhook_events WHERE clinic_id = '{clinic.id}'")
    assert rows == [(0,)]


def test_an_edited_invitation_is_a_user_update_and_metrics_count_attempts(
    hooks_server: Server, hooks_clinic: Clinic, receiver: Receiver
) -> None:
    subscribe(hooks_clinic, receiver, eventTypes=["user.updated"])
    user = _invite(hooks_clinic)
    invitation = _invitation_of(hooks_clinic, user["userId"])
    edited = hooks_clinic.client.patch(
        f"/v1/viewer/users/invitations/{invitation['invitationId']}", json={"firstName": "Ada"}
    )
    assert edited.status_code == 200, edited.text
    [event] = receiver.wait_for_types("user.updated")
    assert event["data"] == hooks_clinic.client.get(f"/v1/viewer/users/{user['userId']}").json()
    assert event["data"]["firstName"] == "Ada"
    metrics = wait_until(
        lambda: (
            (text := httpx.get(hooks_server.base_url + "/metrics").text)
            and 'avara_viewer_webhook_attempts_total{outcome="succeeded"}' in text
            and text
        ),
        what="the attempt counted",
    )
    assert "avara_viewer_webhook_pending " in metrics
    assert "avara_viewer_webhook_oldest_pending_age_seconds " in metrics
