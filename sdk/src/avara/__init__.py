"""Python client of the Avara Viewer API: ``Avara`` and ``AsyncAvara``."""

from ._base_client import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ._client import AsyncAvara, Avara
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    AvaraError,
    BadRequestError,
    ConflictError,
    FieldError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from ._models import BaseModel
from ._response import APIResponse
from ._types import NOT_GIVEN, NotGiven, RequestOptions, Timeout
from ._version import __title__, __version__

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIResponse",
    "APIStatusError",
    "APITimeoutError",
    "AsyncAvara",
    "AuthenticationError",
    "Avara",
    "AvaraError",
    "BadRequestError",
    "BaseModel",
    "ConflictError",
    "FieldError",
    "InternalServerError",
    "NotFoundError",
    "NotGiven",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestOptions",
    "Timeout",
    "UnprocessableEntityError",
    "__title__",
    "__version__",
]
