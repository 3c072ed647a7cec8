"""/Groups: the requests Entra and Okta send for groups, and what membership of a group the
clinic mapped gives (level admin, a clinicRole) — and takes back."""

from __future__ import annotations

from typing import Any

from scim.scim_support import PATCH, VIEWER, ScimClinic, assert_error, scim_clinic
from support import Server

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _map(server: Server, place: ScimClinic, name: str, **options: str) -> None:
    args = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    server.cli("scim", "map-group", "--clinic", place.id, "--group", name, *args)


def _level(place: ScimClinic, user_id: str) -> tuple[str, bool]:
    viewer = place.client.get(f"/Users/{user_id}").json()[VIEWER]
    return viewer["level"], viewer["hasDashboardAccess"]


def _group_patch(place: ScimClinic, group_id: str, *ops: dict[str, Any]) -> Any:
    return place.client.patch(
        f"/Groups/{group_id}", json={"schemas": [PATCH], "Operations": list(ops)}
    )


def test_entra_group_flow_maps_membership_to_admin(server: Server) -> None:
    place = scim_clinic(server, "Group Clinic")
    _map(server, place, "Viewer Admins", level="admin")
    ann, bob, cy = (place.create()["id"] for _ in range(3))
    assert (
        place.client.get("/Groups", params={"filter": 'displayName eq "Viewer Admins"'}).json()[
            "totalResults"
        ]
        == 0
    )
    created = place.client.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": "Viewer Admins", "externalId": "g-1",
              "members": [{"value": ann}]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    group = created.json()
    gid = group["id"]
    assert created.headers["location"] == group["meta"]["location"]
    assert group["members"][0]["value"] == ann and group["members"][0]["type"] == "User"
    assert _level(place, ann) == ("admin", True)
    found = place.client.get(
        "/Groups",
        params={"filter": 'displayName eq "viewer admins"', "excludedAttributes": "members"},
    ).json()
    assert found["totalResults"] == 1 and "members" not in found["Resources"][0]
    assert (
        place.client.get("/Groups", params={"filter": 'externalId eq "g-1"'}).json()["totalResults"]
        == 1
    )
    # Entra adds and removes members with capitalised ops; removals name them in `value`.
    added = _group_patch(
        place, gid, {"op": "Add", "path": "members", "value": [{"value": bob}, {"value": cy}]}
    )
    assert added.status_code == 200, added.text
    assert {m["value"] for m in added.json()["members"]} == {ann, bob, cy}
    assert _level(place, bob)[0] == "admin" and _level(place, cy)[0] == "admin"
    removed = _group_patch(
        place, gid, {"op": "Remove", "path": "members", "value": [{"value": bob}]}
    )
    assert {m["value"] for m in removed.json()["members"]} == {ann, cy}
    assert _level(place, bob) == ("member", True)
    # Okta's form of a removal, and of a rename.
    _group_patch(place, gid, {"op": "remove", "path": f'members[value eq "{cy}"]'})
    assert _level(place, cy)[0] == "member"
    renamed = _group_patch(place, gid, {"op": "replace", "value": {"displayName": "Radiology"}})
    assert renamed.json()["displayName"] == "Radiology"
    assert _level(place, ann)[0] == "member"  # the new name maps to nothing
    renamed_back = place.client.put(
        f"/Groups/{gid}",
        json={"schemas": [GROUP], "displayName": "Viewer Admins", "members": [{"value": ann}]},
    )
    assert renamed_back.status_code == 200 and _level(place, ann)[0] == "admin"
    assert place.client.delete(f"/Groups/{gid}").status_code == 204
    assert _level(place, ann)[0] == "member"
    assert_error(place.client.get(f"/Groups/{gid}"), 404)


def test_two_admin_groups_and_roles_and_owners(server: Server) -> None:
    place = scim_clinic(server, "Two Groups Clinic")
    _map(server, place, "Admins A", level="admin")
    _map(server, place, "Admins B", level="admin", clinic_role="PACS Administrator")
    _map(server, place, "Radiologists", clinic_role="Radiologist")
    person = place.create()["id"]
    owner = server.cli(
        "owners", "invite", "--clinic", place.id, "--email", f"o.{place.token_id[:6]}@x.example",
        "--first-name", "O", "--last-name", "W",
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    ids = {}
    for name, people in (
        ("Admins A", [person, owner]),
        ("Admins B", [person]),
        ("Radiologists", [person]),
    ):
        made = place.client.post(
            "/Groups",
            json={"schemas": [GROUP], "displayName": name,
                  "members": [{"value": p} for p in people]},
        )  # fmt: skip
        assert made.status_code == 201, made.text
        ids[name] = made.json()["id"]
    viewer = place.client.get(f"/Users/{person}").json()[VIEWER]
    assert viewer["level"] == "admin" and viewer["clinicRole"] == "Radiologist"
    assert place.client.get(f"/Users/{owner}").json()[VIEWER]["level"] == "owner"
    # Leaving one admin group keeps admin while another gives it.
    _group_patch(place, ids["Admins A"], {"op": "remove", "path": "members"})
    assert _level(place, person)[0] == "admin"
    _group_patch(place, ids["Admins B"], {"op": "remove", "path": "members"})
    assert _level(place, person)[0] == "member"
    assert place.client.get(f"/Users/{owner}").json()[VIEWER]["level"] == "owner"
    # A mapping set after the group exists applies to its members; unmapping takes admin back.
    _map(server, place, "Radiologists", level="admin")
    assert _level(place, person)[0] == "admin"
    _map(server, place, "Radiologists", level="none")
    assert _level(place, person)[0] == "member"


def test_group_errors_and_tenancy(server: Server) -> None:
    a = scim_clinic(server, "Group Tenant A")
    b = scim_clinic(server, "Group Tenant B")
    theirs = b.create()["id"]
    their_group = b.client.post("/Groups", json={"schemas": [GROUP], "displayName": "B"}).json()
    body = {"schemas": [GROUP], "displayName": "Mine", "members": [{"value": theirs}]}
    assert "members" in assert_error(a.client.post("/Groups", json=body), 400, "invalidValue")
    mine = a.client.post("/Groups", json={"schemas": [GROUP], "displayName": "Mine"}).json()
    again = a.client.post("/Groups", json={"schemas": [GROUP], "displayName": "MINE"})
    assert_error(again, 409, "uniqueness")
    assert_error(a.client.post("/Groups", json={"schemas": [GROUP]}), 400, "invalidValue")
    assert_error(a.client.post("/Groups", json={"displayName": "x"}), 400, "invalidSyntax")
    for call in (
        a.client.get(f"/Groups/{their_group['id']}"),
        a.client.delete(f"/Groups/{their_group['id']}"),
        _group_patch(a, their_group["id"], {"op": "replace", "path": "displayName", "value": "x"}),
    ):
        assert_error(call, 404)
    assert a.client.get("/Groups").json()["totalResults"] == 1
    bad = [
        ({"op": "add", "path": "members", "value": [{"value": theirs}]}, "invalidValue"),
        ({"op": "add", "path": "members", "value": [{"display": "x"}]}, "invalidValue"),
        ({"op": "remove", "path": 'members[display eq "x"]'}, "invalidPath"),
        ({"op": "replace", "path": "owner", "value": "x"}, "invalidPath"),
        ({"op": "remove"}, "noTarget"),
        ({"op": "remove", "path": "displayName"}, "invalidValue"),
        ({"op": "replace", "path": "id", "value": "x"}, "mutability"),
    ]
    for operation, scim_type in bad:
        assert_error(_group_patch(a, mine["id"], operation), 400, scim_type)
    assert_error(a.client.get("/Groups", params={"filter": 'members eq "x"'}), 400, "invalidFilter")


def test_deleting_a_member_takes_them_out_of_their_groups(server: Server) -> None:
    place = scim_clinic(server, "Member Deletion Clinic")
    person = place.create()["id"]
    group = place.client.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": "G", "members": [{"value": person}]},
    ).json()
    assert place.client.delete(f"/Users/{person}").status_code == 204
    assert place.client.get(f"/Groups/{group['id']}").json()["members"] == []
