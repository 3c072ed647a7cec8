"""GET /v1/viewer/users: filters, newest-first keyset pages, opaque cursors, bad queries."""

from __future__ import annotations

import base64

import pytest
from support import Clinic, Server, invite_body


@pytest.fixture(scope="module")
def crowd(server: Server) -> tuple[Clinic, list[dict]]:
    """A clinic of its own with seven users, listed back newest first."""
    clinic = server.create_clinic("List Clinic")
    people = [
        invite_body(firstName="Ada", lastName="Lovelace", email="Ada.Lovelace@Example.org"),
        invite_body(firstName="Grace", lastName="Hopper", level="admin"),
        invite_body(firstName="Adam", lastName="Smith", middleName="J"),
        invite_body(firstName="Alan", lastName="Turing"),
        invite_body(firstName="Barbara", lastName="Liskov", level="admin"),
        invite_body(firstName="Edsger", lastName="Dijkstra"),
        invite_body(firstName="Donald", lastName="Knuth"),
    ]
    created = []
    for body in people:
        response = clinic.client.post("/v1/viewer/users", json=body)
        assert response.status_code == 201, response.text
        created.append(response.json())
    return clinic, created[::-1]


def _all_pages(clinic: Clinic, **params: object) -> tuple[list[dict], int]:
    users, pages, cursor = [], 0, None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = clinic.client.get("/v1/viewer/users", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"users", "cursor", "hasMore"}
        users += body["users"]
        pages += 1
        assert (body["cursor"] is None) == (not body["hasMore"])
        if not body["hasMore"]:
            return users, pages
        cursor = body["cursor"]


def test_pages_walk_every_user_newest_first_without_repeats(
    crowd: tuple[Clinic, list[dict]],
) -> None:
    clinic, newest_first = crowd
    users, pages = _all_pages(clinic, limit=3)
    assert [u["userId"] for u in users] == [u["userId"] for u in newest_first]
    assert pages == 3
    assert users[0] == newest_first[0]


def test_default_page_is_twenty_and_the_last_page_has_no_cursor(
    crowd: tuple[Clinic, list[dict]],
) -> None:
    clinic, newest_first = crowd
    body = clinic.client.get("/v1/viewer/users").json()
    assert len(body["users"]) == len(newest_first)
    assert body["cursor"] is None and body["hasMore"] is False


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"email": "ada.lovelace@EXAMPLE.org"}, ["Ada"]),
        ({"email": "lovelace"}, []),
        ({"firstName": "ad"}, ["Adam", "Ada"]),
        ({"firstName": "AD", "lastName": "smi"}, ["Adam"]),
        ({"lastName": "KNUTH"}, ["Donald"]),
        ({"level": "admin"}, ["Barbara", "Grace"]),
        ({"level": "owner"}, []),
        ({"invitedSource": "api"}, ["Donald", "Edsger", "Barbara", "Alan", "Adam", "Grace", "Ada"]),
        ({"invitedSource": "dashboard"}, []),
        ({"status": "invited", "level": "member", "limit": 2}, ["Donald", "Edsger"]),
        ({"status": "active"}, []),
        ({"firstName": "%"}, []),
        ({"firstName": "_"}, []),
    ],
)
def test_filters(crowd: tuple[Clinic, list[dict]], params: dict, expected: list[str]) -> None:
    clinic, _ = crowd
    body = clinic.client.get("/v1/viewer/users", params=params).json()
    assert [u["firstName"] for u in body["users"]] == expected


def test_filters_hold_across_pages(crowd: tuple[Clinic, list[dict]]) -> None:
    clinic, _ = crowd
    users, pages = _all_pages(clinic, firstName="a", limit=1)
    assert [u["firstName"] for u in users] == ["Donald", "Barbara", "Alan", "Adam", "Grace", "Ada"]
    assert pages == 6


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"level": "boss"}, "level"),
        ({"invitedSource": "fax"}, "invitedSource"),
        ({"status": "gone"}, "status"),
    ],
)
def test_bad_query_values_are_422_naming_the_parameter(
    clinic: Clinic, params: dict, field: str
) -> None:
    response = clinic.client.get("/v1/viewer/users", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_tampered_cursors_are_422_never_5xx(crowd: tuple[Clinic, list[dict]]) -> None:
    clinic, _ = crowd
    cursor = clinic.client.get("/v1/viewer/users", params={"limit": 2}).json()["cursor"]
    payload, mac = cursor.split(".")
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    forged_payload = (
        base64.urlsafe_b64encode(decoded.replace(b'"t":"', b'"t":"1')).rstrip(b"=").decode()
    )
    for bad in [
        cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"),
        f"{forged_payload}.{mac}",
        "garbage",
        "",
        ".",
        "%%%",
        "a" * 5000,
        base64.urlsafe_b64encode(b'{"t": 1, "id": null}').decode() + "." + mac,
    ]:
        response = clinic.client.get("/v1/viewer/users", params={"cursor": bad})
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["code"] == "invalid_cursor"
        assert response.json()["errors"][0]["field"] == "cursor"


def test_an_invitations_cursor_is_not_a_users_cursor(
    server: Server, crowd: tuple[Clinic, list[dict]]
) -> None:
    clinic, _ = crowd
    cursor = clinic.client.get("/v1/viewer/users/invitations", params={"limit": 1}).json()["cursor"]
    response = clinic.client.get("/v1/viewer/users", params={"cursor": cursor})
    assert response.status_code == 422


def test_a_cursor_of_another_server_secret_is_refused(
    server: Server, crowd: tuple[Clinic, list[dict]]
) -> None:
    from datetime import UTC, datetime

    from avara_viewer.pagination import Position, encode_cursor

    clinic, _ = crowd
    forged = encode_cursor(
        b"not-the-secret", "users", Position(datetime.now(UTC), "usr_" + "f" * 32)
    )
    response = clinic.client.get("/v1/viewer/users", params={"cursor": forged})
    assert response.status_code == 422
