"""OpenAPI extras shared by the API's routers (what FastAPI cannot infer from a route that
reads its JSON body itself)."""

from __future__ import annotations

from typing import Any


def mutation_openapi(body_schema: str | None) -> dict[str, Any]:
    """OpenAPI extras of a POST or PATCH: its JSON body (by schema name) and Idempotency-Key."""
    extra: dict[str, Any] = {
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": (
                    "Replays the first response for 24 h when sent again with the same body."
                ),
            }
        ]
    }
    if body_schema is not None:
        extra["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{body_schema}"}}
            },
        }
    return extra
