"""Input the fuzzer found or that a hostile client sends: refused with a 4xx, never a 5xx."""

from __future__ import annotations

import httpx
import pytest
from support import Clinic, Server


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("email=a%00b", "email"),
        ("firstName=%00", "firstName"),
        ("lastName=x%00y&limit=5", "lastName"),
        ("userId=usr_%00", "userId"),
    ],
)
def test_a_nul_in_a_query_parameter_is_a_422_naming_it(
    server: Server, clinic: Clinic, query: str, field: str
) -> None:
    # Found by fuzzing: PostgreSQL refuses NUL in text, so these searches answered 500.
    for path in ("/v1/viewer/users", "/v1/viewer/users/invitations"):
        response = httpx.get(
            f"{server.base_url}{path}?{query}",
            headers={"Authorization": f"Bearer {clinic.key}"},
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert problem["errors"] == [{"field": field, "message": "must not contain NUL characters"}]


def test_a_percent_sign_that_is_not_a_nul_still_searches(server: Server, clinic: Clinic) -> None:
    for value in ("100%", "%0", "%%00"):  # sent encoded: 100%25, %250, %25%2500
        response = clinic.client.get("/v1/viewer/users", params={"lastName": value})
        assert response.status_code == 200
