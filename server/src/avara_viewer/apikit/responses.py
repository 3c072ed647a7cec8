"""JSON responses of the API and the OpenAPI entries of its problem responses."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from ..errors import Problem


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses an operation can give."""
    descriptions = {
        400: "Malformed JSON",
        401: "Missing or invalid API key",
        403: "Not allowed",
        404: "Unknown object (or one of another clinic)",
        409: "Conflict; not retried (x-should-retry: false)",
        413: "Body over 64 KiB",
        415: "Body is not JSON",
        422: "Validation failed; `errors` names every bad field",
        429: "Rate limited; see Retry-After",
    }
    return {s: {"model": Problem, "description": descriptions[s]} for s in statuses}
