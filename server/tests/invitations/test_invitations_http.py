"""/v1/viewer/users/invitations: list and filters, retrieve, update, revoke and resend."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from support import Clinic, Server, SmtpSink, invite_body
from users.rawsql import accept_invitation, expire_invitation

INVITATIONS = "/v1/viewer/users/invitations"


def _invite(clinic: Clinic, **fields: object) -> tuple[dict, dict]:
    """Invite someone; returns (user, invitation)."""
    user = clinic.client.post("/v1/viewer/users", json=invite_body(**fields)).json()
    page = clinic.client.get(INVITATIONS, params={"userId": user["userId"]}).json()
    [invitation] = page["invitations"]
    return user, invitation


def _token(mail_text: str) -> str:
    return mail_text.split("token=", 1)[1].split()[0].strip(">\"'")


def test_the_invitation_object(server: Server, clinic: Clinic) -> None:
    user, invitation = _invite(clinic, middleName="Q", level="admin")
    assert invitation["invitationId"].startswith("inv_") and len(invitation["invitationId"]) == 36
    for name in (
        "userId",
        "email",
        "firstName",
        "middleName",
        "lastName",
        "suffix1",
        "suffix2",
        "phoneNumber",
        "clinicRole",
        "level",
        "canManageStudies",
        "hasDashboardAccess",
        "invitedSource",
    ):
        assert invitation[name] == user[name], name
    assert invitation["clinicId"] == clinic.id
    assert invitation["inviterId"] is None
    [(key_id,)] = server.sql(f"SELECT id FROM api_keys WHERE clinic_id = '{clinic.id}'")
    assert invitation["invitedByApiKeyId"] == key_id
    assert invitation["status"] == "sent"
    assert invitation["deliveryStatus"] in {"queued", "sent"}
    expiry = datetime.fromisoformat(invitation["expiry"].replace("Z", "+00:00"))
    created = datetime.fromisoformat(invitation["createdAt"].replace("Z", "+00:00"))
    assert expiry - created == timedelta(days=7)
    assert invitation["updatedAt"] == invitation["createdAt"] == user["createdAt"]
    retrieved = clinic.client.get(f"{INVITATIONS}/{invitation['invitationId']}")
    assert retrieved.status_code == 200
    assert retrieved.json()["invitationId"] == invitation["invitationId"]


def test_the_invitations_path_is_not_taken_for_a_user_id(clinic: Clinic) -> None:
    response = clinic.client.get(INVITATIONS)
    assert response.status_code == 200
    assert set(response.json()) == {"invitations", "cursor", "hasMore"}


@pytest.mark.parametrize("invitation_id", ["inv_" + "0" * 32, "usr_" + "0" * 32, "x"])
def test_unknown_invitations_are_404(clinic: Clinic, invitation_id: str) -> None:
    assert clinic.client.get(f"{INVITATIONS}/{invitation_id}").status_code == 404
    assert clinic.client.patch(f"{INVITATIONS}/{invitation_id}", json={}).status_code == 404
    assert clinic.client.post(f"{INVITATIONS}/{invitation_id}/resend").status_code == 404
    response = clinic.client.post(f"{INVITATIONS}/revoke", json={"invitationId": invitation_id})
    assert response.status_code == 404


def test_list_filters(server: Server) -> None:
    clinic = server.create_clinic("Invitation Filters")
    _, accepted = _invite(clinic, firstName="Acc")
    accept_invitation(server, accepted["userId"])
    _, revoked = _invite(clinic, firstName="Rev")
    clinic.client.post(f"{INVITATIONS}/revoke", json={"invitationId": revoked["invitationId"]})
    _, lapsed = _invite(clinic, firstName="Lap")
    expire_invitation(server, lapsed["invitationId"])
    _, pending = _invite(clinic, firstName="Pen")

    def names(**params: str) -> list[str]:
        response = clinic.client.get(INVITATIONS, params=params)
        assert response.status_code == 200, response.text
        return [i["firstName"] for i in response.json()["invitations"]]

    assert names() == ["Pen", "Lap", "Rev", "Acc"]
    assert names(status="sent") == ["Pen", "Lap"]
    assert names(status="accepted,revoked") == ["Rev", "Acc"]
    assert names(status="rejected") == []
    assert names(expired="expired") == ["Lap"]
    assert names(expired="not-expired") == ["Pen", "Rev", "Acc"]
    assert names(expired="all", status="sent") == ["Pen", "Lap"]
    assert names(userId=pending["userId"]) == ["Pen"]
    today = datetime.now(UTC).date()
    assert names(startDate=str(today), endDate=str(today)) == ["Pen", "Lap", "Rev", "Acc"]
    assert names(endDate=str(today - timedelta(days=1))) == []
    assert names(startDate=str(today + timedelta(days=1))) == []
    page = clinic.client.get(INVITATIONS, params={"limit": 3}).json()
    assert page["hasMore"] is True
    rest = clinic.client.get(INVITATIONS, params={"limit": 3, "cursor": page["cursor"]}).json()
    assert [i["firstName"] for i in rest["invitations"]] == ["Acc"] and rest["hasMore"] is False


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "sent,lost"}, "status"),
        ({"status": ""}, "status"),
        ({"expired": "yes"}, "expired"),
        ({"startDate": "2026-13-01"}, "startDate"),
        ({"endDate": "yesterday"}, "endDate"),
        ({"startDate": "2026-02-02", "endDate": "2026-02-01"}, "endDate"),
        ({"limit": "500"}, "limit"),
        ({"cursor": "abc.def"}, "cursor"),
    ],
)
def test_bad_list_queries_are_422(clinic: Clinic, params: dict, field: str) -> None:
    response = clinic.client.get(INVITATIONS, params=params)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_update_edits_the_pending_user(clinic: Clinic) -> None:
    user, invitation = _invite(clinic, phoneNumber="5551234567")
    response = clinic.client.patch(
        f"{INVITATIONS}/{invitation['invitationId']}",
        json={"lastName": "Smith-Jones", "phoneNumber": None, "canManageStudies": False},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["lastName"], body["phoneNumber"], body["canManageStudies"]) == (
        "Smith-Jones",
        None,
        False,
    )
    assert body["updatedAt"] >= invitation["updatedAt"]
    again = clinic.client.get(f"/v1/viewer/users/{user['userId']}").json()
    assert (again["lastName"], again["phoneNumber"]) == ("Smith-Jones", None)
    bad = clinic.client.patch(
        f"{INVITATIONS}/{invitation['invitationId']}", json={"email": "a@b.org"}
    )
    assert bad.status_code == 422


def test_only_sent_invitations_can_be_edited_revoked_or_resent(
    server: Server, clinic: Clinic
) -> None:
    _, invitation = _invite(clinic)
    accept_invitation(server, invitation["userId"])
    path = f"{INVITATIONS}/{invitation['invitationId']}"
    for response in (
        clinic.client.patch(path, json={"firstName": "X"}),
        clinic.client.post(f"{path}/resend"),
        clinic.client.post(
            f"{INVITATIONS}/revoke", json={"invitationId": invitation["invitationId"]}
        ),
    ):
        assert response.status_code == 409, response.text
        assert response.headers["x-should-retry"] == "false"
        assert response.json()["code"] == "invitation_accepted"


@pytest.mark.parametrize(
    "body", [{}, {"invitationId": "inv_" + "0" * 32, "userId": "usr_" + "0" * 32}]
)
def test_revoke_takes_exactly_one_name(clinic: Clinic, body: dict) -> None:
    response = clinic.client.post(f"{INVITATIONS}/revoke", json=body)
    assert response.status_code == 422


def test_revoke_kills_the_link_at_once(server: Server, clinic: Clinic, smtp_sink: SmtpSink) -> None:
    user, invitation = _invite(clinic)
    [mail] = smtp_sink.wait_for(user["email"])
    token = _token(mail.part("plain"))
    [(stored_hash,)] = server.sql(
        f"SELECT token_hash FROM invitations WHERE id = '{invitation['invitationId']}'"
    )
    response = clinic.client.post(f"{INVITATIONS}/revoke", json={"userId": user["userId"]})
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    [(status,)] = server.sql(
        f"SELECT status FROM invitations WHERE id = '{invitation['invitationId']}'"
    )
    assert status == "revoked"
    assert hashlib.sha256(token.encode()).hexdigest() == stored_hash
    page = httpx.get(f"{server.base_url}/invitations/accept", params={"token": token})
    assert page.status_code == 410
    assert "This invitation was withdrawn" in page.text
    assert clinic.client.get(f"/v1/viewer/users/{user['userId']}").json()["status"] == "revoked"
    pending = server.sql(
        "SELECT count(*) FROM email_outbox WHERE status = 'pending'"
        f" AND subject_id = '{invitation['invitationId']}'"
    )
    assert pending == [(0,)]


def test_resend_issues_a_new_link_and_email(server: Server, smtp_sink: SmtpSink) -> None:
    srv_clinic = server.create_clinic("Resend Clinic")
    user, invitation = _invite(srv_clinic)
    [first] = smtp_sink.wait_for(user["email"])
    expire_invitation(
        server, invitation["invitationId"]
    )  # also moves the last issue past the cooldown
    assert srv_clinic.client.get(
        INVITATIONS, params={"expired": "expired", "userId": user["userId"]}
    ).json()["invitations"]
    response = srv_clinic.client.post(f"{INVITATIONS}/{invitation['invitationId']}/resend")
    assert response.status_code == 200, response.text
    resent = response.json()
    assert resent["invitationId"] == invitation["invitationId"]
    assert resent["status"] == "sent" and resent["deliveryStatus"] == "queued"
    assert datetime.fromisoformat(resent["expiry"].replace("Z", "+00:00")) > datetime.now(
        UTC
    ) + timedelta(days=6)
    mails = smtp_sink.wait_for(user["email"], count=2)
    assert _token(mails[1].part("plain")) != _token(first.part("plain"))
    [(stored,)] = server.sql(
        f"SELECT token_hash FROM invitations WHERE id = '{invitation['invitationId']}'"
    )
    assert hashlib.sha256(_token(mails[1].part("plain")).encode()).hexdigest() == stored
    assert hashlib.sha256(_token(first.part("plain")).encode()).hexdigest() != stored


def test_resend_within_the_cooldown_is_429_with_retry_after(clinic: Clinic) -> None:
    _, invitation = _invite(clinic)
    response = clinic.client.post(f"{INVITATIONS}/{invitation['invitationId']}/resend")
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.json()["code"] == "resend_cooldown"
