"""RFC 9457 problem responses: typed exceptions carrying status and a stable code."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

if TYPE_CHECKING:  # the web framework is imported by `install` alone: the CLI needs none of it
    from fastapi import FastAPI

from .db.faults import DATABASE_ERRORS, DATABASE_UNAVAILABLE, STORAGE_FULL, unavailable

log = logging.getLogger("avara_viewer.errors")

_UNAVAILABLE_DETAIL = {
    DATABASE_UNAVAILABLE: "The database is unavailable; try again after Retry-After seconds.",
    STORAGE_FULL: "The database's storage is full; nothing was written. Try again later.",
}

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="The wire (camelCase) name of the field, dotted for nesting.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(json_schema_extra={"additionalProperties": True})

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    code: str = Field(description="A stable, machine-readable error code.")
    errors: list[FieldError] | None = Field(
        default=None, description="Present on validation failures: every bad field."
    )


class ProblemError(Exception):
    status = 500
    code = "internal_error"
    title = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": f"https://avara-viewer.dev/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors is not None:
            doc["errors"] = self.errors
        return doc

    def response(self) -> Response:
        return problem_response(self.status, self.body(), self.headers)


class BadRequest(ProblemError):
    status, code, title = 400, "invalid_json", "Malformed request"


class Unauthorized(ProblemError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str, **kw: Any) -> None:
        super().__init__(detail, **kw)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="avara-viewer"')


class Forbidden(ProblemError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(ProblemError):
    status, code, title = 404, "not_found", "Not found"


class MethodNotAllowed(ProblemError):
    status, code, title = 405, "method_not_allowed", "Method not allowed"


class Conflict(ProblemError):
    status, code, title = 409, "conflict", "Conflict"

    def __init__(self, detail: str, **kw: Any) -> None:
        super().__init__(detail, **kw)
        self.headers.setdefault("x-should-retry", "false")


class PayloadTooLarge(ProblemError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class UnsupportedMediaType(ProblemError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class ValidationFailed(ProblemError):
    status, code, title = 422, "validation_error", "Invalid request"


class ServiceUnavailable(ProblemError):
    """The database or its storage cannot serve now (db.faults): try again after Retry-After."""

    status, code, title = 503, "database_unavailable", "Service unavailable"

    def __init__(self, detail: str, *, code: str, retry_after: int, **kw: Any) -> None:
        super().__init__(detail, code=code, **kw)
        self.headers["Retry-After"] = str(max(1, retry_after))


class TooManyRequests(ProblemError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kw: Any) -> None:
        super().__init__(detail, **kw)
        self.headers["Retry-After"] = str(max(1, retry_after))


def problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "bool_type": "must be a JSON boolean (true or false)",
    "string_type": "must be a string",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
}


def field_errors(
    errors: list[Any], *, skip_prefix: tuple[str, ...] = ("body",)
) -> list[dict[str, str]]:
    """Turn pydantic errors into [{field, message}] using wire names."""
    out: list[dict[str, str]] = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        while loc and loc[0] in (*skip_prefix, "query", "path", "header"):
            loc = loc[1:]
        field = ".".join(loc) or "body"
        kind = err.get("type", "")
        message = _MESSAGES.get(kind) or str(err.get("msg", "is invalid"))
        if kind == "value_error" and message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            message = f"must be one of {expected}"
        out.append({"field": field, "message": message})
    return out


def database_problem(exc: BaseException, method: str, path: str) -> Response:
    """The answer to a request that failed with one of DATABASE_ERRORS: 503 when the database
    is unavailable (db.faults), otherwise the 500 of a bug, logged. Handled here rather than
    by the catch-all of install(), which re-raises to the server and so closes a kept-alive
    connection: a failing database is no reason to drop it. (Used by install() and by the
    lean routes, users.lean.)"""
    fault = unavailable(exc)
    if fault is None:
        log.error("unhandled error on %s %s", method, path, exc_info=exc)
        return ProblemError("An unexpected error occurred; it has been logged.").response()
    log.warning(
        "%s %s answered 503 %s: %s (%s)",
        method,
        path,
        fault.code,
        fault.reason,
        type(exc).__name__,
    )
    return ServiceUnavailable(
        _UNAVAILABLE_DETAIL[fault.code], code=fault.code, retry_after=fault.retry_after
    ).response()


def install(app: FastAPI) -> None:
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        errors = field_errors(list(exc.errors()))
        names = ", ".join(e["field"] for e in errors)
        return ValidationFailed(f"Invalid request: {names}.", errors=errors).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return NotFound("No such resource.").response()
        if exc.status_code == 405:
            return MethodNotAllowed("This method is not allowed on this resource.").response()
        body = {
            "type": "about:blank",
            "title": str(exc.detail),
            "status": exc.status_code,
            "detail": str(exc.detail),
            "code": f"http_{exc.status_code}",
        }
        return problem_response(exc.status_code, body, dict(exc.headers or {}))

    async def _database(request: Request, exc: Exception) -> Response:
        return database_problem(exc, request.method, request.url.path)

    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return ProblemError("An unexpected error occurred; it has been logged.").response()
