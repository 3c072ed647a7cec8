"""SCIM test helpers: a clinic's SCIM client, User documents, and audit/SQL look-ups."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from support import Clinic, Server

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
VIEWER = "urn:avara:params:scim:schemas:extension:viewer:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"


@dataclass
class ScimClinic:
    clinic: Clinic
    token: str
    token_id: str
    client: httpx.Client  # speaks SCIM with the clinic's token

    @property
    def id(self) -> str:
        return self.clinic.id

    def create(self, **overrides: Any) -> dict[str, Any]:
        response = self.client.post("/Users", json=user_doc(**overrides))
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def patch(self, user_id: str, *operations: dict[str, Any]) -> httpx.Response:
        return self.client.patch(
            f"/Users/{user_id}", json={"schemas": [PATCH], "Operations": list(operations)}
        )

    def search(self, filter_text: str, **params: Any) -> dict[str, Any]:
        response = self.client.get("/Users", params={"filter": filter_text, **params})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def new_token(server: Server, clinic_id: str, description: str = "tests") -> tuple[str, str]:
    """(token, token id) from the CLI, as an operator makes one."""
    made = server.cli("scim-tokens", "create", "--clinic", clinic_id, "--description", description)
    token = made.stdout.strip().splitlines()[-1]
    listing = server.cli("scim-tokens", "list", "--clinic", clinic_id).stdout.strip().splitlines()
    return token, listing[-1].split("\t")[0]


def scim_client(server: Server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url + "/scim/v2",
        headers={"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON},
        timeout=30,
    )


def scim_clinic(server: Server, name: str) -> ScimClinic:
    clinic = server.create_clinic(name)
    token, token_id = new_token(server, clinic.id)
    return ScimClinic(clinic, token, token_id, scim_client(server, token))


def unique(prefix: str = "p") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def user_doc(**overrides: Any) -> dict[str, Any]:
    """A User document as Okta sends it (userName = the address)."""
    login = overrides.pop("login", None) or f"{unique('dr.')}@hospital.example"
    doc: dict[str, Any] = {
        "schemas": [USER],
        "userName": login,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": login, "type": "work", "primary": True}],
        "externalId": unique("ext-"),
        "active": True,
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def assert_error(response: httpx.Response, status: int, scim_type: str | None = None) -> str:
    """The response is a SCIM Error with this status (and scimType); returns its detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM_JSON)
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type, body
    assert body["detail"]
    return str(body["detail"])


def audit_rows(server: Server, clinic_id: str) -> list[tuple[Any, ...]]:
    """(actor_type, actor_id, action, target_id, changes) of the clinic, oldest first."""
    return server.sql(
        "SELECT actor_type, actor_id, action, target_id, changes FROM audit_log"
        f" WHERE clinic_id = '{clinic_id}' ORDER BY seq"
    )
