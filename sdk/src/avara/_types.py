"""Shared typing helpers: the NOT_GIVEN sentinel and the per-call request options."""

from __future__ import annotations

from typing import Mapping, Union

import httpx
from typing_extensions import Literal, TypedDict, final, override

__all__ = [
    "NOT_GIVEN",
    "Headers",
    "NotGiven",
    "Query",
    "RequestOptions",
    "Timeout",
]

Timeout = Union[float, httpx.Timeout, None]
Headers = Mapping[str, str]
Query = Mapping[str, object]


@final
class NotGiven:
    """Marks an argument the caller did not pass, as distinct from an explicit ``None``.

    Arguments left as ``NOT_GIVEN`` are not sent at all; ``None`` is sent as JSON ``null``
    (which clears the field on an update).
    """

    def __bool__(self) -> Literal[False]:
        return False

    @override
    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


class RequestOptions(TypedDict, total=False):
    """Per-call overrides accepted by every method."""

    extra_headers: Headers
    """Headers added to (or overriding) the client's for this call."""
    extra_query: Query
    """Query parameters added to this call."""
    timeout: Timeout
    """Timeout for this call, in seconds or as an ``httpx.Timeout``; ``None`` waits forever."""
    idempotency_key: str
    """``Idempotency-Key`` of this call. POST and PATCH calls get a fresh UUID4 by default, kept
    across the call's retries."""
