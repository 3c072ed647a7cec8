"""Reading a JSON request body: media type, 64 KiB limit, syntax, text that no field can
hold — each with its own error.

JSON can carry text that is not Unicode: a lone surrogate escape (`"\\ud800"`) decodes to a
Python string that cannot be encoded as UTF-8, so hashing the body for Idempotency-Key or
storing it failed with a 500. No field of this API can hold one, nor a NUL (PostgreSQL
refuses it in any text), so both are refused here, for every JSON endpoint, with a 422
naming the field (dotted for nesting, like the other validation errors)."""

from __future__ import annotations

import json
from typing import Any, Protocol

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

from ..errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

MAX_BODY_BYTES = 64 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class HeaderGetter(Protocol):
    def get(self, key: str, default: None = None, /) -> str | None: ...


async def read_json_object(request: Request) -> dict[str, Any]:
    """The JSON object a FastAPI route's request carries (every rule of this module)."""
    check_json_headers(request.headers)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return decode_json_object(b"".join(chunks))


async def receive_json_object(headers: HeaderGetter, receive: Receive) -> dict[str, Any]:
    """The same as read_json_object, read straight from an ASGI receive channel (the lean
    routes of users.lean), with Starlette's ClientDisconnect when the client goes away."""
    check_json_headers(headers)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return decode_json_object(chunks[0] if len(chunks) == 1 else b"".join(chunks))


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body must be at most {MAX_BODY_BYTES} bytes.")


def check_json_headers(headers: HeaderGetter) -> None:
    """415 unless the body is declared JSON; 413 when its declared length is over the limit."""
    content_type = headers.get("content-type") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            "The request body must be JSON, sent with Content-Type: application/json."
        )
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()


def decode_json_object(raw: bytes) -> dict[str, Any]:
    """The body's JSON object: 400 when it is not JSON, 422 naming what no field can hold or
    when it is not an object."""
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
    # A NUL or a lone surrogate can only come from a \u escape: JSON refuses raw control
    # characters in strings, and the body decoded as UTF-8, which has no surrogates.
    bad = _unstorable_text(data, "") if b"\\u" in raw else None
    if bad:
        names = ", ".join(dict.fromkeys(field for field, _ in bad))
        raise ValidationFailed(
            f"Invalid fields: {names}.",
            errors=[{"field": field, "message": message} for field, message in bad],
        )
    if not isinstance(data, dict):
        raise ValidationFailed(
            "The request body must be a JSON object.",
            errors=[{"field": "body", "message": "must be a JSON object"}],
        )
    return data


def _problem_in(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone surrogate escape such as \\ud800)"
    return None


def _unstorable_text(value: Any, where: str) -> list[tuple[str, str]]:
    """(field, message) for every string, key or value, that no field can hold."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        message = _problem_in(value)
        if message:
            found.append((where or "body", message))
    elif isinstance(value, dict):
        for key, item in value.items():
            key_problem = _problem_in(key)
            # A bad key is named by what can be shown of it.
            name = key.encode("utf-8", "backslashreplace").decode() if key_problem else key
            path = f"{where}.{name}" if where else name
            if key_problem:
                found.append((path, key_problem))
            found.extend(_unstorable_text(item, path))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found.extend(_unstorable_text(item, f"{where}.{n}" if where else str(n)))
    return found
