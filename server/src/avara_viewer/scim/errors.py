"""SCIM errors (RFC 7644 §3.12): the Error schema with `scimType`, and the translation of the
service's own problems (422, 409, 403, ...) into it, naming SCIM attributes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from ..errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from .schema import ERROR_SCHEMA, SCIM_JSON, WIRE_TO_SCIM


class ScimError(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type:
            doc["scimType"] = self.scim_type
        doc["detail"] = self.detail
        return doc

    def response(self) -> Response:
        return Response(
            orjson.dumps(self.body()),
            status_code=self.status,
            media_type=SCIM_JSON,
            headers=self.headers,
        )


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidPath")


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidSyntax")


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, "mutability")


def not_found(user_id: str) -> ScimError:
    return ScimError(404, f"No user with id {user_id} in this clinic.")


def _scim_name(field: str) -> str:
    return WIRE_TO_SCIM.get(field, field)


def from_problem(exc: ProblemError) -> ScimError:
    """The SCIM form of one of the service's problems."""
    if isinstance(exc, ValidationFailed):
        if exc.errors:
            parts = [f"{_scim_name(e['field'])} {e['message']}" for e in exc.errors]
            return invalid_value("Invalid attributes: " + "; ".join(parts) + ".")
        return invalid_value(exc.detail)
    if isinstance(exc, Conflict):
        if exc.code == "email_already_exists":
            return ScimError(
                409, f"emails: {exc.detail}", "uniqueness", {"x-should-retry": "false"}
            )
        return ScimError(409, exc.detail, None, {"x-should-retry": "false"})
    if isinstance(exc, Unauthorized):
        return ScimError(
            401, exc.detail, None, {"WWW-Authenticate": 'Bearer realm="avara-viewer-scim"'}
        )
    if isinstance(exc, TooManyRequests):
        # The limiter speaks of API keys; SCIM tokens have the same limit, counted apart.
        detail = exc.detail.replace("This API key", "This SCIM token")
        return ScimError(429, detail, None, dict(exc.headers))
    if isinstance(exc, BadRequest):
        return invalid_syntax(exc.detail)
    if isinstance(exc, UnsupportedMediaType):
        return ScimError(415, "The request body must be JSON (application/scim+json).")
    if isinstance(exc, PayloadTooLarge):
        return ScimError(413, exc.detail)
    if isinstance(exc, Forbidden):
        return ScimError(403, exc.detail)
    if isinstance(exc, NotFound):
        return ScimError(404, exc.detail)
    return ScimError(exc.status, exc.detail)
