"""Raw responses: what ``with_raw_response`` methods return instead of the parsed model."""

from __future__ import annotations

import functools
from contextvars import ContextVar
from typing import Any, Awaitable, Callable, Generic, List, Optional, TypeVar, Union

import httpx
from typing_extensions import ParamSpec

from ._types import NOT_GIVEN, NotGiven

__all__ = ["APIResponse", "async_to_raw_response_wrapper", "to_raw_response_wrapper"]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


class APIResponse(Generic[T]):
    """The HTTP response of a call, with ``parse()`` giving the typed object the method returns."""

    def __init__(self, http_response: httpx.Response, parse: Callable[[], T], retries_taken: int):
        self.http_response = http_response
        self.retries_taken = retries_taken
        self._parse = parse
        self._parsed: Union[T, NotGiven] = NOT_GIVEN

    @property
    def status_code(self) -> int:
        return self.http_response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self.http_response.headers

    @property
    def url(self) -> httpx.URL:
        return self.http_response.url

    @property
    def text(self) -> str:
        return self.http_response.text

    def json(self) -> Any:
        return self.http_response.json()

    def parse(self) -> T:
        """The response body as the method's return type (parsed once, then cached)."""
        if isinstance(self._parsed, NotGiven):
            self._parsed = self._parse()
        return self._parsed

    def __repr__(self) -> str:
        return f"<APIResponse [{self.status_code}] {self.http_response.request.method} {self.url}>"


# Set while a raw-response wrapper runs: the client drops each response it receives here, so
# the wrapper can hand it back without every method needing a raw twin of its own.
_raw_responses: ContextVar[Optional[List[APIResponse[Any]]]] = ContextVar(
    "avara_raw_responses", default=None
)


def record_raw_response(response: APIResponse[Any]) -> None:
    sink = _raw_responses.get()
    if sink is not None:
        sink.append(response)


def to_raw_response_wrapper(func: Callable[P, R]) -> Callable[P, APIResponse[R]]:
    """Turn a method returning ``R`` into one returning the ``APIResponse[R]`` behind it."""

    @functools.wraps(func)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> APIResponse[R]:
        sink: List[APIResponse[Any]] = []
        token = _raw_responses.set(sink)
        try:
            func(*args, **kwargs)
        finally:
            _raw_responses.reset(token)
        return sink[0]

    return wrapped


def async_to_raw_response_wrapper(
    func: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[APIResponse[R]]]:
    """The async twin of ``to_raw_response_wrapper``."""

    @functools.wraps(func)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> APIResponse[R]:
        sink: List[APIResponse[Any]] = []
        token = _raw_responses.set(sink)
        try:
            await func(*args, **kwargs)
        finally:
            _raw_responses.reset(token)
        return sink[0]

    return wrapped
