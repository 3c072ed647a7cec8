"""Reading a JSON request body: media type, 64 KiB limit, syntax — each with its own error."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import Request

from ..errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

MAX_BODY_BYTES = 64 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json_object(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            "The request body must be JSON, sent with Content-Type: application/json."
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The request body must be at most {MAX_BODY_BYTES} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The request body must be at most {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson refuses some valid JSON (integers beyond 64 bits): let the standard parser
        # decide, so only malformed bodies are a 400 and its message is the familiar one.
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError:
            raise BadRequest("The request body is not valid UTF-8.") from None
        except (ValueError, RecursionError) as exc:
            raise BadRequest(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise ValidationFailed(
            "The request body must be a JSON object.",
            errors=[{"field": "body", "message": "must be a JSON object"}],
        )
    return data
