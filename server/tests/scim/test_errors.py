"""Every error a SCIM client can meet, each in the SCIM Error schema (never a 5xx), and
tenancy: one clinic's token can neither see nor touch another clinic's people."""

from __future__ import annotations

import time

import httpx
import pytest
from scim.scim_support import (
    SCIM_JSON,
    USER,
    VIEWER,
    ScimClinic,
    assert_error,
    new_token,
    scim_client,
    scim_clinic,
    user_doc,
)
from support import Server, invite_body


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer scim_short", "Bearer scim_" + "A" * 43],
)
def test_missing_or_wrong_token_is_401(server: Server, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.get(f"{server.base_url}/scim/v2/Users", headers=headers)
    assert_error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_api_key_is_not_a_scim_token(server: Server, scim: ScimClinic) -> None:
    client = scim_client(server, scim.clinic.key)
    assert_error(client.get("/Users"), 401)
    # ... and a SCIM token is not an API key.
    api = httpx.get(
        f"{server.base_url}/v1/viewer/users", headers={"Authorization": f"Bearer {scim.token}"}
    )
    assert api.status_code == 401


CREATE_ERRORS = [
    ("no userName", {"userName": None}, 400, "invalidValue", "userName"),
    ("blank userName", {"userName": "  "}, 400, "invalidValue", "userName"),
    ("userName not a string", {"userName": 42}, 400, "invalidValue", "userName"),
    (
        "no email anywhere",
        {"login": "not-an-address", "emails": None},
        400,
        "invalidValue",
        "emails",
    ),
    ("bad email", {"emails": [{"value": "nope", "primary": True}]}, 400, "invalidValue", "emails"),
    ("no givenName", {"name": {"familyName": "X"}}, 400, "invalidValue", "name.givenName"),
    ("no name", {"name": None}, 400, "invalidValue", "name.givenName"),
    ("no schemas", {"schemas": None}, 400, "invalidSyntax", "schemas"),
    ("wrong schemas", {"schemas": ["urn:x"]}, 400, "invalidSyntax", "schemas"),
    ("active not boolean", {"active": "yes"}, 400, "invalidValue", "active"),
    (
        "phone too short",
        {"phoneNumbers": [{"type": "work", "value": "123"}]},
        400,
        "invalidValue",
        "phoneNumbers",
    ),
    ("owner", {VIEWER: {"level": "owner"}}, 400, "invalidValue", f"{VIEWER}:level"),
    ("unknown role", {VIEWER: {"clinicRole": "Jedi"}}, 400, "invalidValue", "clinicRole"),
    (
        "bad boolean",
        {VIEWER: {"canManageStudies": "often"}},
        400,
        "invalidValue",
        "canManageStudies",
    ),
    ("externalId not a string", {"externalId": 7}, 400, "invalidValue", "externalId"),
    (
        "long suffix",
        {"name": {"givenName": "A", "familyName": "B", "honorificSuffix": "x" * 21}},
        400,
        "invalidValue",
        "honorificSuffix",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "status", "scim_type", "names"),
    [c[1:] for c in CREATE_ERRORS],
    ids=[c[0] for c in CREATE_ERRORS],
)
def test_create_errors_name_the_attribute(
    server: Server, scim: ScimClinic, overrides: dict, status: int, scim_type: str, names: str
) -> None:
    doc = user_doc(**overrides)
    detail = assert_error(scim.client.post("/Users", json=doc), status, scim_type)
    assert names in detail
    assert server.sql(
        f"SELECT count(*) FROM users WHERE clinic_id = '{scim.id}'"
        f" AND email_lower = '{str(doc.get('userName', '')).lower()}'"
    ) == [(0,)]


def test_duplicates_are_409_uniqueness(scim: ScimClinic) -> None:
    first = scim.create()
    again = user_doc(login=first["userName"].upper())
    assert_error(scim.client.post("/Users", json=again), 409, "uniqueness")
    # A different userName with an address the clinic already has.
    same_email = user_doc(login="someone-else", emails=first["emails"])
    detail = assert_error(scim.client.post("/Users", json=same_email), 409, "uniqueness")
    assert "emails" in detail
    response = scim.client.post("/Users", json=again)
    assert response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "scim_type"),
    [
        (b"{not json", SCIM_JSON, 400, "invalidSyntax"),
        (b"[1, 2]", SCIM_JSON, 400, "invalidValue"),
        (b"{}", "text/plain", 415, None),
        (b'{"a": "' + b"x" * 70_000 + b'"}', SCIM_JSON, 413, None),
    ],
)
def test_bad_bodies(
    scim: ScimClinic, body: bytes, content_type: str, status: int, scim_type: str | None
) -> None:
    response = scim.client.post("/Users", content=body, headers={"Content-Type": content_type})
    assert_error(response, status, scim_type)


def test_put_refuses_a_new_address_and_keeps_everything(scim: ScimClinic) -> None:
    user = scim.create()
    doc = user_doc(login=user["userName"], emails=[{"value": "other@x.example", "primary": True}])
    assert_error(scim.client.put(f"/Users/{user['id']}", json=doc), 400, "mutability")
    assert scim.client.get(f"/Users/{user['id']}").json() == user


def test_owners_cannot_be_changed_or_deleted(server: Server, scim: ScimClinic) -> None:
    owner_id = server.cli(
        "owners", "invite", "--clinic", scim.id, "--email", f"owner.{scim.token_id[:8]}@x.example",
        "--first-name", "Olive", "--last-name", "Owner",
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    owner = scim.client.get(f"/Users/{owner_id}")
    assert owner.status_code == 200 and owner.json()[VIEWER]["level"] == "owner"
    off = scim.patch(owner_id, {"op": "replace", "path": "active", "value": False})
    assert_error(off, 403)
    assert_error(scim.client.delete(f"/Users/{owner_id}"), 403)
    assert scim.client.get(f"/Users/{owner_id}").json()["active"] is True


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/Users/usr_00000000000000000000000000000000", 404),
        ("GET", "/Users/not-an-id", 404),
        ("PUT", "/Users/usr_00000000000000000000000000000000", 404),
        ("PATCH", "/Users/usr_00000000000000000000000000000000", 404),
        ("DELETE", "/Users/usr_00000000000000000000000000000000", 404),
        ("GET", "/Groups/00000000-0000-4000-8000-000000000000", 404),
        ("GET", "/Bulk", 404),
        ("GET", "/Schemas/urn:nope", 404),
        ("GET", "/ResourceTypes/Agent", 404),
        ("DELETE", "/Users", 405),
        ("PUT", "/ServiceProviderConfig", 405),
    ],
)
def test_unknown_things_are_scim_errors(
    scim: ScimClinic, method: str, path: str, status: int
) -> None:
    body = None
    if method == "PUT":
        body = user_doc()
    if method == "PATCH":
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"op": "replace", "path": "active", "value": False}]}  # fmt: skip
    assert_error(scim.client.request(method, path, json=body), status)


def test_a_revoked_token_is_refused(server: Server) -> None:
    place = scim_clinic(server, "Revocation Clinic")
    assert place.client.get("/Users").status_code == 200
    server.cli("scim-tokens", "revoke", place.token_id)
    # Verified tokens are remembered for at most a second: poll until it takes effect.
    deadline = time.monotonic() + 10
    while place.client.get("/Users").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert_error(place.client.get("/Users"), 401)
    # The clinic's other tokens keep working.
    token, _ = new_token(server, place.id)
    assert scim_client(server, token).get("/Users").status_code == 200


def test_tenancy_between_two_clinics(server: Server) -> None:
    a = scim_clinic(server, "Tenant A")
    b = scim_clinic(server, "Tenant B")
    victim = b.create(externalId="shared-ext")
    mine = a.create(externalId="shared-ext")
    uid = victim["id"]
    # Lists and filters see only the token's clinic.
    assert [r["id"] for r in a.client.get("/Users").json()["Resources"]] == [mine["id"]]
    assert a.search(f'userName eq "{victim["userName"]}"')["totalResults"] == 0
    assert [r["id"] for r in a.search('externalId eq "shared-ext"')["Resources"]] == [mine["id"]]
    # Every call naming B's person answers 404, as for an id that does not exist.
    assert_error(a.client.get(f"/Users/{uid}"), 404)
    assert_error(a.client.put(f"/Users/{uid}", json=user_doc(login=victim["userName"])), 404)
    assert_error(a.patch(uid, {"op": "replace", "path": "active", "value": False}), 404)
    assert_error(a.client.delete(f"/Users/{uid}"), 404)
    assert b.client.get(f"/Users/{uid}").json() == victim
    # The same userName may exist in both clinics.
    twin = a.client.post("/Users", json=user_doc(login=victim["userName"]))
    assert twin.status_code == 201, twin.text
    # B's API key sees B's SCIM person, A's does not.
    assert b.clinic.client.get(f"/v1/viewer/users/{uid}").status_code == 200
    assert a.clinic.client.get(f"/v1/viewer/users/{uid}").status_code == 404
    assert USER in victim["schemas"]


def test_people_made_elsewhere_are_listed_with_their_email_as_user_name(scim: ScimClinic) -> None:
    invited = scim.clinic.client.post("/v1/viewer/users", json=invite_body()).json()
    found = scim.search(f'userName eq "{invited["email"]}"')["Resources"]
    assert [r["id"] for r in found] == [invited["userId"]]
    assert found[0][VIEWER]["scimProvisioned"] is False
    assert found[0][VIEWER]["invitedSource"] == "api"


@pytest.mark.parametrize(
    "text", ['userName eq "\\u0000"', 'userName eq "\\ud800"', 'externalId co "a\\udfffb"']
)
def test_strings_no_database_can_hold_are_refused_in_filters(scim: ScimClinic, text: str) -> None:
    assert_error(scim.client.get("/Users", params={"filter": text}), 400, "invalidFilter")


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ('"name": {"givenName": "J\\ud800", "familyName": "D"}', "name.givenName"),
        ('"name": {"givenName": "J", "familyName": "D\\u0000"}', "name.familyName"),
        ('"name": {"givenName": "J", "familyName": "D"}, "title": "\\udc00"', "title"),
    ],
)
def test_strings_no_database_can_hold_are_refused_in_bodies(
    scim: ScimClinic, raw: str, names: str
) -> None:
    body = f'{{"schemas": ["{USER}"], "userName": "u-{names}", {raw}}}'
    response = scim.client.post("/Users", content=body.encode())
    assert names in assert_error(response, 400, "invalidValue")


def test_huge_paging_numbers_are_400(scim: ScimClinic) -> None:
    for params in ({"startIndex": 10**30}, {"count": -(10**30)}):
        response = scim.client.get("/Users", params=params)
        assert next(iter(params)) in assert_error(response, 400, "invalidValue")
    page = scim.client.get("/Users", params={"startIndex": 2**31 - 1, "count": 2**31 - 1})
    assert page.json()["itemsPerPage"] == 0 and page.json()["startIndex"] == 2**31 - 1
