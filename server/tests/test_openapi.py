"""/openapi.json and /docs describe the real contract."""

from __future__ import annotations

import httpx
from support import Server

ROLES = 21


def test_openapi_describes_the_invite_call(server: Server) -> None:
    spec = httpx.get(server.base_url + "/openapi.json").json()
    invite = spec["paths"]["/v1/viewer/users"]["post"]
    assert invite["security"] == [{"ApiKey": []}]
    ref = invite["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(body["required"]) == {
        "canManageStudies", "clinicRole", "email", "firstName", "hasDashboardAccess",
        "lastName", "level",
    }
    assert body["additionalProperties"] is False
    assert len(body["properties"]["clinicRole"]["enum"]) == ROLES
    assert body["properties"]["level"]["enum"] == ["admin", "member"]
    created = invite["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    user = spec["components"]["schemas"][created.rsplit("/", 1)[1]]
    assert "userId" in user["properties"] and "invitedSource" in user["properties"]
    for status in ("400", "401", "409", "413", "415", "422"):
        content = invite["responses"][status]["content"]
        assert list(content) == ["application/problem+json"], status
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])


def test_docs_page_is_served(server: Server) -> None:
    response = httpx.get(server.base_url + "/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
