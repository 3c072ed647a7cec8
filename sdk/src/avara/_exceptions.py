"""The exception tree: one class per HTTP status the API documents, plus transport failures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "AvaraError",
    "BadRequestError",
    "ConflictError",
    "FieldError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnprocessableEntityError",
]


class AvaraError(Exception):
    """Base class of every error this library raises (including a missing API key)."""


class APIError(AvaraError):
    """A request was sent and did not produce a successful response."""

    message: str
    request: httpx.Request
    body: object | None
    """The decoded JSON body of the response, its text if it was not JSON, or ``None``."""

    def __init__(self, message: str, request: httpx.Request, *, body: object | None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body


@dataclass(frozen=True)
class FieldError:
    """One invalid input field of a validation problem, named by its wire (camelCase) name."""

    field: str
    message: str


class APIStatusError(APIError):
    """The server answered with a 4xx or 5xx status.

    The RFC 9457 problem fields of the body are exposed as attributes: ``code`` (stable and
    machine-readable, e.g. ``"email_taken"``), ``title``, ``detail`` and, for validation
    failures, ``errors``: one ``FieldError`` per bad field.
    """

    response: httpx.Response
    status_code: int
    code: Optional[str]
    title: Optional[str]
    detail: Optional[str]
    errors: List[FieldError]

    def __init__(self, message: str, *, response: httpx.Response, body: object | None) -> None:
        super().__init__(message, response.request, body=body)
        self.response = response
        self.status_code = response.status_code
        problem: dict[str, Any] = body if isinstance(body, dict) else {}
        self.code = _optional_str(problem.get("code"))
        self.title = _optional_str(problem.get("title"))
        self.detail = _optional_str(problem.get("detail"))
        self.errors = [
            FieldError(field=str(item.get("field", "")), message=str(item.get("message", "")))
            for item in problem.get("errors") or []
            if isinstance(item, dict)
        ]


class BadRequestError(APIStatusError):
    """400: the request body was not well-formed JSON."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or invalid."""


class PermissionDeniedError(APIStatusError):
    """403: the key's clinic may not do this (for example, change an owner)."""


class NotFoundError(APIStatusError):
    """404: no such object in the key's clinic."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the current state (for example, an email already invited)."""


class UnprocessableEntityError(APIStatusError):
    """422: a field is invalid; ``errors`` names each one."""


class RateLimitError(APIStatusError):
    """429: too many requests; the client waits for ``Retry-After`` before retrying."""


class InternalServerError(APIStatusError):
    """5xx: the server failed."""


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke before a response arrived."""

    def __init__(self, *, request: httpx.Request, message: str = "Connection error.") -> None:
        super().__init__(message, request, body=None)


class APITimeoutError(APIConnectionError):
    """The request timed out."""

    def __init__(self, *, request: httpx.Request) -> None:
        super().__init__(request=request, message="Request timed out.")


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def make_status_error(response: httpx.Response) -> APIStatusError:
    """Build the exception matching ``response``'s status, with its problem body decoded."""
    body: object | None
    try:
        body = response.json()
    except ValueError:
        body = response.text or None
    error_class = _STATUS_ERRORS.get(response.status_code)
    if error_class is None:
        error_class = InternalServerError if response.status_code >= 500 else APIStatusError
    problem = body if isinstance(body, dict) else {}
    summary = problem.get("detail") or problem.get("title") or body
    return error_class(
        f"Error code: {response.status_code} - {summary}", response=response, body=body
    )


def _optional_str(value: object) -> Optional[str]:
    return None if value is None else str(value)
