"""The request sequences Microsoft Entra ID and Okta send (their documented validation
flows), replayed over HTTP against the real server."""

from __future__ import annotations

import uuid

from scim.scim_support import LIST, SCIM_JSON, USER, VIEWER, ScimClinic, assert_error, unique
from support import Server


def test_entra_sequence(server: Server, scim: ScimClinic) -> None:
    client = scim.client
    # "Test connection": a filter on a random GUID answers an empty ListResponse.
    probe = client.get("/Users", params={"filter": f'userName eq "{uuid.uuid4()}"'})
    assert probe.status_code == 200
    assert probe.headers["content-type"].startswith(SCIM_JSON)
    assert probe.json() == {
        "schemas": [LIST],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }
    # Matching: Entra looks the person up by userName (a UPN) before creating them.
    upn = f"{unique('adele.')}@contoso.onmicrosoft.com"
    mail = upn.replace("contoso.onmicrosoft.com", "contoso.example")
    guid = str(uuid.uuid4())
    lookup = client.get("/Users", params={"filter": f'userName eq "{upn}"'})
    assert lookup.json()["totalResults"] == 0
    created = client.post(
        "/Users",
        json={
            "schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId": guid,
            "userName": upn,
            "active": True,
            "displayName": "Adele Vance",
            "title": "Radiologist",
            "emails": [{"primary": True, "type": "work", "value": mail}],
            "name": {"formatted": "Adele Vance", "familyName": "Vance", "givenName": "Adele"},
            "phoneNumbers": [{"type": "work", "value": "+1 (425) 555-0109"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Imaging"},
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()
    user_id = user["id"]
    assert created.headers["location"] == user["meta"]["location"]
    assert user["meta"]["location"].endswith(f"/scim/v2/Users/{user_id}")
    assert user["userName"] == upn
    assert user["externalId"] == guid
    assert user["emails"] == [{"value": mail, "type": "work", "primary": True}]
    assert user["phoneNumbers"] == [{"value": "14255550109", "type": "work"}]
    assert user["displayName"] == "Adele Vance"
    assert user["meta"]["resourceType"] == "User"
    assert user["meta"]["created"].endswith("Z") and user["meta"]["lastModified"].endswith("Z")
    # The filters Entra uses: externalId, userName in another case, the work email path.
    for text in (
        f'externalId eq "{guid}"',
        f'userName eq "{upn.upper()}"',
        f'emails[type eq "work"].value eq "{mail}"',
        f'userName eq "{upn}" and externalId eq "{guid}"',
    ):
        found = scim.search(text)
        assert found["totalResults"] == 1, text
        assert found["Resources"][0]["id"] == user_id
    got = client.get(f"/Users/{user_id}")
    assert got.status_code == 200 and got.json() == user
    # Updates: capitalised ops, with and without path, string booleans, dotted keys.
    response = scim.patch(
        user_id,
        {"op": "Replace", "path": "name.familyName", "value": "Vance-Smith"},
        {"op": "Add", "path": 'phoneNumbers[type eq "work"].value', "value": "4255550110"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"]["familyName"] == "Vance-Smith"
    assert response.json()["phoneNumbers"] == [{"value": "4255550110", "type": "work"}]
    response = scim.patch(
        user_id,
        {
            "op": "Replace",
            "value": {
                "name.givenName": "Adèle",
                "displayName": "Adèle Vance-Smith",
                f"{VIEWER}:clinicRole": "Radiologist",
                f"{VIEWER}:canManageStudies": "True",
            },
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"]["givenName"] == "Adèle"
    assert body["displayName"] == "Adèle Vance-Smith"
    assert body[VIEWER]["clinicRole"] == "Radiologist"
    assert body[VIEWER]["canManageStudies"] is True
    # Unassigning: the default disable, with a string boolean.
    off = scim.patch(user_id, {"op": "Replace", "path": "active", "value": "False"})
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False
    assert off.json()[VIEWER]["status"] == "revoked"
    # A GET of an inactive user still answers.
    assert client.get(f"/Users/{user_id}").json()["active"] is False
    on = scim.patch(user_id, {"op": "replace", "path": "active", "value": True})
    assert on.json()["active"] is True
    # Hard delete.
    assert client.delete(f"/Users/{user_id}").status_code == 204
    assert_error(client.get(f"/Users/{user_id}"), 404)
    assert scim.search(f'externalId eq "{guid}"')["totalResults"] == 0


def test_okta_sequence(server: Server, scim: ScimClinic) -> None:
    client = scim.client
    login = f"{unique('isaac.')}@example.org"
    params = {"filter": f'userName eq "{login}"', "startIndex": 1, "count": 100}
    empty = client.get("/Users", params=params).json()
    assert empty["totalResults"] == 0 and empty["Resources"] == []
    body = {
        "schemas": [USER],
        "userName": login,
        "name": {"givenName": "Isaac", "familyName": "Brock"},
        "emails": [{"primary": True, "value": login, "type": "work"}],
        "displayName": "Isaac Brock",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }
    created = client.post("/Users", json=body)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    # A second create of the same login is a 409 (Okta then links the existing person).
    assert_error(client.post("/Users", json=body), 409, "uniqueness")
    found = client.get("/Users", params=params).json()
    assert isinstance(found["totalResults"], int) and found["totalResults"] == 1
    assert isinstance(found["startIndex"], int) and isinstance(found["itemsPerPage"], int)
    assert found["Resources"][0]["id"] == user_id
    # Custom apps update with a full PUT.
    put = client.put(
        f"/Users/{user_id}",
        json={**body, "id": user_id, "name": {"givenName": "Isaac", "familyName": "Brock-Smith"}},
    )
    assert put.status_code == 200, put.text
    assert put.json()["name"]["familyName"] == "Brock-Smith"
    # Deactivation: a path-less replace with a real boolean.
    off = scim.patch(user_id, {"op": "replace", "value": {"active": False}})
    assert off.status_code == 200 and off.json()["active"] is False
    assert client.get(f"/Users/{user_id}").json()["active"] is False
    # Reactivation the same way.
    on = scim.patch(user_id, {"op": "replace", "value": {"active": True}})
    assert on.json()["active"] is True
    assert client.delete(f"/Users/{user_id}").status_code == 204
    assert client.get("/Users", params=params).json()["totalResults"] == 0
