"""Tenancy: a key of clinic A can neither read, change nor learn of anything in clinic B.

Every endpoint that names a user or an invitation answers 404 for clinic B's objects (the
same as for ids that do not exist), and B's rows are untouched afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from support import Clinic, Server, invite_body

Call = Callable[[httpx.Client, str, str], httpx.Response]
INV = "/v1/viewer/users/invitations"

CALLS: dict[str, Call] = {
    "users.retrieve": lambda c, u, i: c.get(f"/v1/viewer/users/{u}"),
    "users.update": lambda c, u, i: c.patch(f"/v1/viewer/users/{u}", json={"firstName": "Mallory"}),
    "users.update (empty)": lambda c, u, i: c.patch(f"/v1/viewer/users/{u}", json={}),
    "users.revoke_access": lambda c, u, i: c.post(
        "/v1/viewer/users/revoke-access", json={"userId": u}
    ),
    "users.reactivate": lambda c, u, i: c.post("/v1/viewer/users/reactivate", json={"userId": u}),
    "invitations.retrieve": lambda c, u, i: c.get(f"{INV}/{i}"),
    "invitations.update": lambda c, u, i: c.patch(f"{INV}/{i}", json={"lastName": "Mallory"}),
    "invitations.revoke (invitationId)": lambda c, u, i: c.post(
        f"{INV}/revoke", json={"invitationId": i}
    ),
    "invitations.revoke (userId)": lambda c, u, i: c.post(f"{INV}/revoke", json={"userId": u}),
    "invitations.resend": lambda c, u, i: c.post(f"{INV}/{i}/resend"),
}


@pytest.fixture(scope="module")
def two_clinics(server: Server) -> tuple[Clinic, Clinic, dict, str]:
    a = server.create_clinic("Clinic A")
    b = server.create_clinic("Clinic B")
    victim = b.client.post("/v1/viewer/users", json=invite_body(lastName="Victim")).json()
    [invitation] = b.client.get(INV, params={"userId": victim["userId"]}).json()["invitations"]
    return a, b, victim, invitation["invitationId"]


def _state(server: Server, user_id: str) -> list[tuple]:
    return server.sql(
        "SELECT u.first_name, u.last_name, u.status, u.session_version, i.status, i.token_hash,"
        " i.expiry FROM users u JOIN invitations i ON i.user_id = u.id"
        f" WHERE u.id = '{user_id}'"
    )


@pytest.mark.parametrize("call", list(CALLS), ids=list(CALLS))
def test_other_clinics_objects_are_404_and_untouched(
    server: Server, two_clinics: tuple[Clinic, Clinic, dict, str], call: str
) -> None:
    a, _, victim, invitation_id = two_clinics
    before = _state(server, victim["userId"])
    response = CALLS[call](a.client, victim["userId"], invitation_id)
    assert response.status_code == 404, response.text
    missing = CALLS[call](a.client, "usr_" + "0" * 32, "inv_" + "0" * 32)
    assert missing.status_code == 404
    # The same answer as for an id that does not exist: nothing to learn from it.
    assert response.json()["code"] == missing.json()["code"]
    assert response.json()["title"] == missing.json()["title"]
    assert _state(server, victim["userId"]) == before


def test_lists_never_show_other_clinics(
    server: Server, two_clinics: tuple[Clinic, Clinic, dict, str]
) -> None:
    a, _, victim, _ = two_clinics
    for params in ({}, {"email": victim["email"]}, {"lastName": "Victim"}):
        users = a.client.get("/v1/viewer/users", params=params).json()["users"]
        assert victim["userId"] not in {u["userId"] for u in users}
    invitations = a.client.get(INV, params={"userId": victim["userId"]}).json()["invitations"]
    assert invitations == []


def test_a_cursor_from_another_clinic_shows_nothing_of_it(
    two_clinics: tuple[Clinic, Clinic, dict, str],
) -> None:
    a, b, victim, _ = two_clinics
    b.client.post("/v1/viewer/users", json=invite_body())
    cursor = b.client.get("/v1/viewer/users", params={"limit": 1}).json()["cursor"]
    response = a.client.get("/v1/viewer/users", params={"cursor": cursor})
    assert response.status_code == 200
    assert victim["userId"] not in {u["userId"] for u in response.json()["users"]}
