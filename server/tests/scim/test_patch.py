"""PATCH in the forms identity providers send, and every way an operation can be refused.
A refused request changes nothing, not even its operations that came before the bad one."""

from __future__ import annotations

from typing import Any

import pytest
from scim.scim_support import PATCH, VIEWER, ScimClinic, assert_error
from support import invite_body


def _user(scim: ScimClinic, **overrides: Any) -> dict[str, Any]:
    return scim.create(**overrides)


def test_add_replace_remove_with_paths_and_any_case_of_op(scim: ScimClinic) -> None:
    user = _user(scim)
    uid = user["id"]
    body = scim.patch(
        uid,
        {"op": "ADD", "path": "name.middleName", "value": "Byron"},
        {"op": "add", "path": "name.honorificSuffix", "value": "MD"},
        {"op": "Replace", "path": "externalId", "value": "okta-42"},
        {
            "op": "replace",
            "path": "phoneNumbers",
            "value": [{"type": "work", "value": "5551234567"}],
        },
    ).json()
    assert body["name"]["middleName"] == "Byron" and body["name"]["honorificSuffix"] == "MD"
    assert body["externalId"] == "okta-42"
    assert body["phoneNumbers"] == [{"value": "5551234567", "type": "work"}]
    body = scim.patch(
        uid,
        {"op": "Remove", "path": "name.middleName"},
        {"op": "remove", "path": 'phoneNumbers[type eq "work"]'},
        {"op": "remove", "path": "externalId"},
    ).json()
    assert "middleName" not in body["name"] and "phoneNumbers" not in body
    assert "externalId" not in body
    assert scim.search('externalId eq "okta-42"')["totalResults"] == 0


def test_user_name_can_change_and_stays_unique(scim: ScimClinic) -> None:
    first, second = _user(scim), _user(scim)
    renamed = scim.patch(first["id"], {"op": "replace", "path": "userName", "value": "ADA-1"})
    assert renamed.status_code == 200 and renamed.json()["userName"] == "ADA-1"
    # The address stays; only the SCIM name changed.
    assert renamed.json()["emails"] == first["emails"]
    assert scim.search('userName eq "ada-1"')["Resources"][0]["id"] == first["id"]
    taken = scim.patch(second["id"], {"op": "replace", "path": "userName", "value": "ada-1"})
    assert_error(taken, 409, "uniqueness")
    # The userName of a person SCIM never named is their email.
    invited = scim.clinic.client.post("/v1/viewer/users", json=invite_body()).json()
    stolen = scim.patch(
        second["id"], {"op": "replace", "path": "userName", "value": invited["email"].upper()}
    )
    assert_error(stolen, 409, "uniqueness")


def test_extension_attributes_by_path_by_urn_object_and_by_dotted_key(scim: ScimClinic) -> None:
    uid = _user(scim)["id"]
    body = scim.patch(
        uid,
        {
            "op": "replace",
            "path": VIEWER,
            "value": {"level": "admin", "hasDashboardAccess": "true"},
        },
    ).json()
    assert body[VIEWER]["level"] == "admin" and body[VIEWER]["hasDashboardAccess"] is True
    body = scim.patch(
        uid, {"op": "replace", "path": f"{VIEWER}:clinicRole", "value": "PACS Administrator"}
    ).json()
    assert body[VIEWER]["clinicRole"] == "PACS Administrator"
    body = scim.patch(
        uid,
        {
            "op": "replace",
            "value": {VIEWER: {"level": "member"}, f"{VIEWER}:canManageStudies": False},
        },
    ).json()
    assert body[VIEWER]["level"] == "member" and body[VIEWER]["canManageStudies"] is False


def test_email_paths_keep_the_address(scim: ScimClinic) -> None:
    user = _user(scim)
    address = user["emails"][0]["value"]
    same = scim.patch(
        user["id"],
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": address.upper()},
    )
    assert same.status_code == 200, same.text
    other = scim.patch(
        user["id"],
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@hospital.example"},
    )
    detail = assert_error(other, 400, "mutability")
    assert "emails" in detail


def test_attributes_we_do_not_keep_are_accepted_and_ignored(scim: ScimClinic) -> None:
    user = _user(scim)
    response = scim.patch(
        user["id"],
        {"op": "Add", "path": "title", "value": "Head of Imaging"},
        {"op": "Replace", "path": "preferredLanguage", "value": "en-GB"},
        {
            "op": "Add",
            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "value": "Radiology",
        },
        {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Leeds"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == scim.client.get(f"/Users/{user['id']}").json()
    assert response.json()["meta"]["lastModified"] == user["meta"]["lastModified"]


def _op(op: str, path: str | None = None, value: Any = None) -> list[dict[str, Any]]:
    operation: dict[str, Any] = {"op": op}
    if path is not None:
        operation["path"] = path
    if value is not None:
        operation["value"] = value
    return [operation]


V = VIEWER
REFUSED: list[tuple[str, Any, int, str | None]] = [
    ("remove without path", _op("remove"), 400, "noTarget"),
    ("unknown op", _op("merge", "userName", "x"), 400, "invalidSyntax"),
    ("op missing", [{"path": "userName", "value": "x"}], 400, "invalidSyntax"),
    ("value missing", _op("replace", "userName"), 400, "invalidSyntax"),
    ("unknown attribute", _op("add", "favouriteColour", "x"), 400, "invalidPath"),
    ("unknown sub-attribute", _op("add", "name.nick", "x"), 400, "invalidPath"),
    ("filter on a single value", _op("add", 'userName[value eq "x"]', "y"), 400, "invalidPath"),
    ("unsupported value filter", _op("add", 'emails[type gt "a"].value', "y"), 400, "invalidPath"),
    ("empty path", _op("add", " ", "y"), 400, "invalidPath"),
    ("id is read-only", _op("replace", "id", "usr_x"), 400, "mutability"),
    ("status is read-only", _op("replace", f"{V}:status", "active"), 400, "mutability"),
    ("level cannot be removed", _op("remove", f"{V}:level"), 400, "mutability"),
    ("not a boolean", _op("replace", "active", "maybe"), 400, "invalidValue"),
    ("owner level", _op("replace", f"{V}:level", "owner"), 400, "invalidValue"),
    (
        "admin without dashboard",
        _op("replace", None, {f"{V}:level": "admin", f"{V}:hasDashboardAccess": False}),
        400,
        "invalidValue",
    ),
    ("unknown role", _op("replace", f"{V}:clinicRole", "Wizard"), 400, "invalidValue"),
    ("blank given name", _op("replace", "name.givenName", "  "), 400, "invalidValue"),
    ("given name removed", _op("remove", "name.givenName"), 400, "invalidValue"),
    ("userName removed", _op("remove", "userName"), 400, "invalidValue"),
    ("bad phone", _op("add", 'phoneNumbers[type eq "work"].value', "12"), 400, "invalidValue"),
    ("path-less value not an object", _op("replace", None, "x"), 400, "invalidValue"),
    ("operations not a list", {"op": "replace"}, 400, "invalidSyntax"),
    ("no operations", [], 400, "invalidSyntax"),
]


@pytest.mark.parametrize(
    ("operations", "status", "scim_type"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_refused_operations_change_nothing(
    scim: ScimClinic, operations: Any, status: int, scim_type: str | None
) -> None:
    user = _user(scim)
    first = {"op": "replace", "path": "name.familyName", "value": "Changed"}
    ops = [first, *operations] if isinstance(operations, list) and operations else operations
    response = scim.client.patch(
        f"/Users/{user['id']}", json={"schemas": [PATCH], "Operations": ops}
    )
    assert_error(response, status, scim_type)
    assert scim.client.get(f"/Users/{user['id']}").json() == user


def test_patch_needs_the_patchop_schema(scim: ScimClinic) -> None:
    user = _user(scim)
    response = scim.client.patch(
        f"/Users/{user['id']}",
        json={"Operations": [{"op": "replace", "path": "active", "value": False}]},
    )
    assert_error(response, 400, "invalidSyntax")
