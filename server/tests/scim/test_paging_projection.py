"""startIndex/count paging (stable order, integer totals) and attributes/excludedAttributes."""

from __future__ import annotations

import pytest
from scim.scim_support import USER, VIEWER, ScimClinic, assert_error, scim_clinic, user_doc
from support import Server


@pytest.fixture(scope="module")
def seven(server: Server) -> tuple[ScimClinic, list[str]]:
    place = scim_clinic(server, "Paging Clinic")
    return place, [place.create()["id"] for _ in range(7)]


def test_pages_cover_everyone_once_in_creation_order(seven: tuple[ScimClinic, list[str]]) -> None:
    place, ids = seven
    seen: list[str] = []
    for start in (1, 4, 7):
        page = place.client.get("/Users", params={"startIndex": start, "count": 3}).json()
        assert page["totalResults"] == 7
        assert page["startIndex"] == start
        assert page["itemsPerPage"] == len(page["Resources"])
        seen += [r["id"] for r in page["Resources"]]
    assert seen == ids


@pytest.mark.parametrize(
    ("params", "start", "items"),
    [
        ({"count": 0}, 1, 0),
        ({"count": -5}, 1, 0),
        ({"startIndex": 0, "count": 2}, 1, 2),
        ({"startIndex": -3, "count": 2}, 1, 2),
        ({"startIndex": 7, "count": 10}, 7, 1),
        ({"startIndex": 8}, 8, 0),
        ({"startIndex": 1000}, 1000, 0),
        ({"count": 100000}, 1, 7),
        ({}, 1, 7),
    ],
)
def test_edges_of_paging(
    seven: tuple[ScimClinic, list[str]], params: dict[str, int], start: int, items: int
) -> None:
    place, _ = seven
    page = place.client.get("/Users", params=params).json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (7, start, items)
    assert len(page["Resources"]) == items


@pytest.mark.parametrize("params", [{"count": "ten"}, {"startIndex": "1.5"}])
def test_non_integer_paging_is_400(seven: tuple[ScimClinic, list[str]], params: dict) -> None:
    place, _ = seven
    detail = assert_error(place.client.get("/Users", params=params), 400, "invalidValue")
    assert next(iter(params)) in detail


def test_attributes_keep_only_what_is_asked(seven: tuple[ScimClinic, list[str]]) -> None:
    place, ids = seven
    one = place.client.get(
        f"/Users/{ids[0]}", params={"attributes": "userName,name.givenName," + VIEWER + ":level"}
    ).json()
    assert set(one) == {"schemas", "id", "userName", "name", VIEWER}
    assert one["name"] == {"givenName": "Ada"}
    assert one[VIEWER] == {"level": "member"}
    listed = place.client.get(
        "/Users", params={"attributes": "emails.value,META.created", "count": 1}
    ).json()["Resources"][0]
    assert set(listed) == {"schemas", "id", "emails", "meta"}
    assert set(listed["emails"][0]) == {"value"}
    assert set(listed["meta"]) == {"created"}
    core_urn = place.client.get(
        f"/Users/{ids[0]}", params={"attributes": f"{USER}:userName"}
    ).json()
    assert set(core_urn) == {"schemas", "id", "userName"}


def test_excluded_attributes_drop_them(seven: tuple[ScimClinic, list[str]]) -> None:
    place, ids = seven
    full = place.client.get(f"/Users/{ids[0]}").json()
    less = place.client.get(
        f"/Users/{ids[0]}", params={"excludedAttributes": f"emails,name.familyName,{VIEWER},id"}
    ).json()
    assert "emails" not in less and VIEWER not in less
    assert "familyName" not in less["name"] and less["name"]["givenName"] == "Ada"
    assert less["id"] == full["id"]  # id is always returned
    assert less["userName"] == full["userName"]


def test_projection_applies_to_a_create_answer(server: Server) -> None:
    place = scim_clinic(server, "Projection Clinic")
    created = place.client.post("/Users", params={"attributes": "userName"}, json=user_doc())
    assert created.status_code == 201
    assert set(created.json()) == {"schemas", "id", "userName"}
