"""GET/PATCH /v1/viewer/users/{userId}, revoke-access and reactivate over HTTP."""

from __future__ import annotations

import pytest
from support import Clinic, Server, SmtpSink, invite_body
from users.rawsql import accept_invitation


def _invite(clinic: Clinic, **fields: object) -> dict:
    response = clinic.client.post("/v1/viewer/users", json=invite_body(**fields))
    assert response.status_code == 201, response.text
    return response.json()


def _owner(server: Server, clinic: Clinic) -> str:
    result = server.cli(
        "owners",
        "invite",
        "--clinic",
        clinic.id,
        "--email",
        invite_body()["email"],
        "--first-name",
        "Olive",
        "--last-name",
        "Owner",
    )
    return result.stdout.strip().splitlines()[-1]


def test_retrieve_returns_the_user_as_invited(clinic: Clinic) -> None:
    user = _invite(clinic, middleName="Q", phoneNumber="5551234567")
    response = clinic.client.get(f"/v1/viewer/users/{user['userId']}")
    assert response.status_code == 200
    assert response.json() == user


@pytest.mark.parametrize(
    "user_id", ["usr_" + "0" * 32, "nope", "usr_" + "A" * 32, "usr_%2e%2e", "x" * 300]
)
def test_unknown_or_malformed_ids_are_404(clinic: Clinic, user_id: str) -> None:
    assert clinic.client.get(f"/v1/viewer/users/{user_id}").status_code == 404
    assert clinic.client.patch(f"/v1/viewer/users/{user_id}", json={}).status_code == 404
    for action in ("revoke-access", "reactivate"):
        response = clinic.client.post(f"/v1/viewer/users/{action}", json={"userId": user_id})
        assert response.status_code == 404
        assert response.json()["code"] == "user_not_found"


def test_patch_changes_only_the_given_fields_and_null_clears(clinic: Clinic) -> None:
    user = _invite(clinic, middleName="Q", suffix1="Jr.", phoneNumber="5551234567")
    response = clinic.client.patch(
        f"/v1/viewer/users/{user['userId']}",
        json={
            "firstName": "  Sally ",
            "middleName": None,
            "phoneNumber": None,
            "clinicRole": "Surgeon",
        },
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed == {
        **user,
        "firstName": "Sally",
        "middleName": None,
        "phoneNumber": None,
        "clinicRole": "Surgeon",
    }
    assert clinic.client.get(f"/v1/viewer/users/{user['userId']}").json() == changed


def test_an_empty_patch_changes_nothing(clinic: Clinic) -> None:
    user = _invite(clinic)
    response = clinic.client.patch(f"/v1/viewer/users/{user['userId']}", json={})
    assert response.status_code == 200
    assert response.json() == user


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"email": "new@example.org"}, ["email"]),
        ({"firstName": None, "level": None}, ["firstName", "level"]),
        ({"lastName": "   "}, ["lastName"]),
        ({"middleName": ""}, ["middleName"]),
        ({"phoneNumber": "12345"}, ["phoneNumber"]),
        ({"level": "owner"}, ["level"]),
        ({"canManageStudies": "yes"}, ["canManageStudies"]),
        ({"clinicRole": "Wizard"}, ["clinicRole"]),
        ({"nickname": "Sal"}, ["nickname"]),
        ({"level": "admin", "hasDashboardAccess": False}, ["hasDashboardAccess"]),
        ({"email": "x@y.org", "firstName": ""}, ["email", "firstName"]),
    ],
)
def test_patch_field_rules(clinic: Clinic, body: dict, fields: list[str]) -> None:
    user = _invite(clinic)
    response = clinic.client.patch(f"/v1/viewer/users/{user['userId']}", json=body)
    assert response.status_code == 422, response.text
    assert sorted({e["field"] for e in response.json()["errors"]}) == sorted(fields)
    assert clinic.client.get(f"/v1/viewer/users/{user['userId']}").json() == user


def test_the_email_error_says_it_cannot_be_changed(clinic: Clinic) -> None:
    user = _invite(clinic)
    response = clinic.client.patch(
        f"/v1/viewer/users/{user['userId']}", json={"email": user["email"]}
    )
    assert "cannot be changed" in response.json()["errors"][0]["message"]


def test_an_admin_keeps_dashboard_access(clinic: Clinic) -> None:
    admin = _invite(clinic, level="admin")
    response = clinic.client.patch(
        f"/v1/viewer/users/{admin['userId']}", json={"hasDashboardAccess": False}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "hasDashboardAccess"
    member = _invite(clinic, hasDashboardAccess=False)
    response = clinic.client.patch(f"/v1/viewer/users/{member['userId']}", json={"level": "admin"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "level"
    response = clinic.client.patch(
        f"/v1/viewer/users/{member['userId']}", json={"level": "admin", "hasDashboardAccess": True}
    )
    assert response.status_code == 200
    assert response.json()["level"] == "admin"


def test_owners_cannot_be_changed_revoked_or_reactivated_through_the_api(
    server: Server, clinic: Clinic
) -> None:
    owner_id = _owner(server, clinic)
    assert clinic.client.get(f"/v1/viewer/users/{owner_id}").json()["level"] == "owner"
    response = clinic.client.patch(f"/v1/viewer/users/{owner_id}", json={"firstName": "Eve"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    for action in ("revoke-access", "reactivate"):
        assert (
            clinic.client.post(f"/v1/viewer/users/{action}", json={"userId": owner_id}).status_code
            == 403
        )
    assert clinic.client.get(f"/v1/viewer/users/{owner_id}").json()["firstName"] == "Olive"


def test_revoking_an_invited_user_revokes_their_invitation(server: Server, clinic: Clinic) -> None:
    user = _invite(clinic)
    response = clinic.client.post("/v1/viewer/users/revoke-access", json={"userId": user["userId"]})
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True and user["email"] in response.json()["message"]
    assert clinic.client.get(f"/v1/viewer/users/{user['userId']}").json()["status"] == "revoked"
    # (Ending their dashboard sessions is shown with real sessions in tests/sso/test_sessions.py.)
    [(status,)] = server.sql(f"SELECT status FROM users WHERE id = '{user['userId']}'")
    assert status == "revoked"
    [(invitation_status,)] = server.sql(
        f"SELECT status FROM invitations WHERE user_id = '{user['userId']}'"
    )
    assert invitation_status == "revoked"


def test_revoking_twice_is_a_409_not_retried(clinic: Clinic) -> None:
    user = _invite(clinic)
    assert (
        clinic.client.post(
            "/v1/viewer/users/revoke-access", json={"userId": user["userId"]}
        ).status_code
        == 200
    )
    again = clinic.client.post("/v1/viewer/users/revoke-access", json={"userId": user["userId"]})
    assert again.status_code == 409
    assert again.headers["x-should-retry"] == "false"
    assert again.json()["code"] == "already_revoked"


def test_revoke_and_reactivate_of_an_active_user(server: Server, clinic: Clinic) -> None:
    user = _invite(clinic)
    accept_invitation(server, user["userId"])
    busy = clinic.client.post("/v1/viewer/users/reactivate", json={"userId": user["userId"]})
    assert busy.status_code == 409
    assert "active" in busy.json()["detail"]
    assert (
        clinic.client.post(
            "/v1/viewer/users/revoke-access", json={"userId": user["userId"]}
        ).status_code
        == 200
    )
    response = clinic.client.post("/v1/viewer/users/reactivate", json={"userId": user["userId"]})
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert clinic.client.get(f"/v1/viewer/users/{user['userId']}").json()["status"] == "active"
    # The sessions of before the revocation stay ended: tests/sso/test_sessions.py.


def test_reactivating_someone_who_never_accepted_sends_a_new_invitation(
    server: Server, clinic: Clinic, smtp_sink: SmtpSink
) -> None:
    user = _invite(clinic)
    smtp_sink.wait_for(user["email"])
    invited = clinic.client.post("/v1/viewer/users/reactivate", json={"userId": user["userId"]})
    assert invited.status_code == 409
    assert "invited" in invited.json()["detail"]
    clinic.client.post("/v1/viewer/users/revoke-access", json={"userId": user["userId"]})
    response = clinic.client.post("/v1/viewer/users/reactivate", json={"userId": user["userId"]})
    assert response.status_code == 200
    assert "new invitation" in response.json()["message"]
    assert clinic.client.get(f"/v1/viewer/users/{user['userId']}").json()["status"] == "invited"
    statuses = sorted(
        s
        for (s,) in server.sql(f"SELECT status FROM invitations WHERE user_id = '{user['userId']}'")
    )
    assert statuses == ["revoked", "sent"]
    smtp_sink.wait_for(user["email"], count=2)


@pytest.mark.parametrize("body", [{}, {"userId": 5}, {"userId": "usr_" + "0" * 32, "extra": 1}])
def test_action_bodies_are_validated(clinic: Clinic, body: dict) -> None:
    for action in ("revoke-access", "reactivate"):
        response = clinic.client.post(f"/v1/viewer/users/{action}", json=body)
        assert response.status_code == 422


def test_revoke_with_an_idempotency_key_replays(clinic: Clinic) -> None:
    user = _invite(clinic)
    headers = {"Idempotency-Key": "revoke-" + user["userId"]}
    first = clinic.client.post(
        "/v1/viewer/users/revoke-access", json={"userId": user["userId"]}, headers=headers
    )
    second = clinic.client.post(
        "/v1/viewer/users/revoke-access", json={"userId": user["userId"]}, headers=headers
    )
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
