"""HTTP plumbing shared by Avara and AsyncAvara: auth, timeouts, retries, idempotency keys."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import os
import random
import time
import uuid
from typing import Any, Callable, Dict, Generic, Mapping, Optional, TypeVar, Union

import httpx

from ._exceptions import APIConnectionError, APITimeoutError, AvaraError, make_status_error
from ._models import BaseModel
from ._response import APIResponse, record_raw_response
from ._types import NotGiven, RequestOptions, Timeout
from ._version import __version__
from .pagination import AsyncCursorPage, SyncCursorPage

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "AsyncAPIClient",
    "SyncAPIClient",
]

log = logging.getLogger("avara")

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
DEFAULT_MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
# A server asking for a longer pause than this is obeyed only up to it.
MAX_RETRY_AFTER = 60.0

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)
SyncPageT = TypeVar("SyncPageT", bound=SyncCursorPage[Any])
AsyncPageT = TypeVar("AsyncPageT", bound=AsyncCursorPage[Any])
HttpClientT = TypeVar("HttpClientT", httpx.Client, httpx.AsyncClient)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


async def _async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class BaseClient(Generic[HttpClientT]):
    """Configuration and the decisions shared by the sync and async clients."""

    api_key: str
    webhook_key: Optional[str]
    base_url: str
    timeout: Timeout
    max_retries: int

    def __init__(
        self,
        *,
        api_key: Optional[str],
        base_url: Union[str, httpx.URL, None],
        timeout: Timeout,
        max_retries: int,
        default_headers: Optional[Mapping[str, str]],
        http_client: Optional[HttpClientT],
        webhook_key: Optional[str] = None,
    ) -> None:
        if api_key is None:
            api_key = os.environ.get("AVARA_API_KEY") or None
        if api_key is None:
            raise AvaraError(
                "No API key: pass api_key to the client, or set the AVARA_API_KEY "
                "environment variable."
            )
        if base_url is None:
            base_url = os.environ.get("AVARA_BASE_URL") or DEFAULT_BASE_URL
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.api_key = api_key
        # The signing secret (whsec_...) that client.webhooks.unwrap checks events with.
        self.webhook_key = webhook_key or os.environ.get("AVARA_WEBHOOK_KEY") or None
        self.base_url = str(base_url).rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self._custom_headers: Dict[str, str] = dict(default_headers or {})
        # A client the caller handed us is theirs to close.
        self._owns_http_client = http_client is None
        self._client: HttpClientT = (
            http_client if http_client is not None else self._make_http_client()
        )

    def _make_http_client(self) -> HttpClientT:
        raise NotImplementedError

    @property
    def default_headers(self) -> Dict[str, str]:
        """Headers sent on every request, including ``default_headers`` given by the caller."""
        return {
            "Accept": "application/json",
            "User-Agent": f"avara-python/{__version__}",
            "Authorization": f"Bearer {self.api_key}",
            **self._custom_headers,
        }

    def _build_request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[Mapping[str, object]],
        query: Optional[Mapping[str, object]],
        options: RequestOptions,
    ) -> httpx.Request:
        headers = httpx.Headers(self.default_headers)
        headers.update(options.get("extra_headers", {}))
        idempotency_key = options.get("idempotency_key")
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        elif method in ("POST", "PATCH") and "Idempotency-Key" not in headers:
            # Made once per call, before the first attempt: every retry carries the same key,
            # so the server replays the first result instead of doing the work twice.
            headers["Idempotency-Key"] = str(uuid.uuid4())
        params = _encode_query({**(query or {}), **options.get("extra_query", {})})
        return self._client.build_request(
            method,
            self.base_url + path,
            params=params or None,
            json=dict(body) if body is not None else None,
            headers=headers,
            timeout=options.get("timeout", self.timeout),
        )

    def _retry_delay(
        self, retries_taken: int, response: Optional[httpx.Response]
    ) -> Optional[float]:
        """Seconds to wait before the next attempt, or ``None`` when the failure is final.

        ``response`` is ``None`` when the attempt failed without one (connection error, timeout).
        """
        if retries_taken >= self.max_retries:
            return None
        if response is not None:
            if not _should_retry(response):
                return None
            retry_after = _parse_retry_after(response.headers)
            if retry_after is not None:
                return min(retry_after, MAX_RETRY_AFTER)
        backoff = min(INITIAL_RETRY_DELAY * 2.0**retries_taken, MAX_RETRY_DELAY)
        return backoff * (1 - 0.25 * random.random())

    @staticmethod
    def _finish(
        response: httpx.Response, parse: Callable[[httpx.Response], T], retries_taken: int
    ) -> T:
        api_response = APIResponse(response, lambda: parse(response), retries_taken)
        record_raw_response(api_response)
        return api_response.parse()

    @staticmethod
    def _log_retry(request: httpx.Request, failure: str, delay: float) -> None:
        log.info("Retrying %s %s after %s in %.2f s", request.method, request.url, failure, delay)


class SyncAPIClient(BaseClient[httpx.Client]):
    """Sends requests with ``httpx.Client``."""

    def _make_http_client(self) -> httpx.Client:
        return httpx.Client(follow_redirects=True)

    def close(self) -> None:
        """Close the connection pool (unless it belongs to an ``http_client`` you passed in)."""
        if self._owns_http_client:
            self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        cast_to: type[ModelT],
        body: Optional[Mapping[str, object]] = None,
        query: Optional[Mapping[str, object]] = None,
        options: RequestOptions,
    ) -> ModelT:
        """Send a request, retrying as configured, and parse the JSON body into ``cast_to``."""
        return self._request(
            method,
            path,
            body=body,
            query=query,
            options=options,
            parse=lambda response: cast_to.model_validate(response.json()),
        )

    def get_page(
        self,
        page_cls: type[SyncPageT],
        path: str,
        *,
        query: Mapping[str, object],
        options: RequestOptions,
    ) -> SyncPageT:
        """Fetch the first page of a list; the page fetches the rest with the same query."""

        def fetch(cursor: Optional[str]) -> SyncPageT:
            page_query = {**query, "cursor": cursor} if cursor is not None else query
            return self._request(
                "GET",
                path,
                body=None,
                query=page_query,
                options=options,
                parse=lambda response: page_cls(response.json(), fetch),
            )

        return fetch(None)

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[Mapping[str, object]],
        query: Optional[Mapping[str, object]],
        options: RequestOptions,
        parse: Callable[[httpx.Response], T],
    ) -> T:
        request = self._build_request(method, path, body=body, query=query, options=options)
        retries_taken = 0
        while True:
            try:
                response = self._client.send(request)
            except httpx.TransportError as exc:
                delay = self._retry_delay(retries_taken, None)
                if delay is None:
                    raise _connection_error(exc, request) from exc
                self._log_retry(request, type(exc).__name__, delay)
            else:
                if response.is_success:
                    return self._finish(response, parse, retries_taken)
                delay = self._retry_delay(retries_taken, response)
                if delay is None:
                    raise make_status_error(response)
                self._log_retry(request, str(response.status_code), delay)
                response.close()
            _sleep(delay)
            retries_taken += 1


class AsyncAPIClient(BaseClient[httpx.AsyncClient]):
    """Sends requests with ``httpx.AsyncClient``."""

    def _make_http_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(follow_redirects=True)

    async def close(self) -> None:
        """Close the connection pool (unless it belongs to an ``http_client`` you passed in)."""
        if self._owns_http_client:
            await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        cast_to: type[ModelT],
        body: Optional[Mapping[str, object]] = None,
        query: Optional[Mapping[str, object]] = None,
        options: RequestOptions,
    ) -> ModelT:
        """Send a request, retrying as configured, and parse the JSON body into ``cast_to``."""
        return await self._request(
            method,
            path,
            body=body,
            query=query,
            options=options,
            parse=lambda response: cast_to.model_validate(response.json()),
        )

    async def get_page(
        self,
        page_cls: type[AsyncPageT],
        path: str,
        *,
        query: Mapping[str, object],
        options: RequestOptions,
    ) -> AsyncPageT:
        """Fetch the first page of a list; the page fetches the rest with the same query."""

        async def fetch(cursor: Optional[str]) -> AsyncPageT:
            page_query = {**query, "cursor": cursor} if cursor is not None else query
            return await self._request(
                "GET",
                path,
                body=None,
                query=page_query,
                options=options,
                parse=lambda response: page_cls(response.json(), fetch),
            )

        return await fetch(None)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[Mapping[str, object]],
        query: Optional[Mapping[str, object]],
        options: RequestOptions,
        parse: Callable[[httpx.Response], T],
    ) -> T:
        request = self._build_request(method, path, body=body, query=query, options=options)
        retries_taken = 0
        while True:
            try:
                response = await self._client.send(request)
            except httpx.TransportError as exc:
                delay = self._retry_delay(retries_taken, None)
                if delay is None:
                    raise _connection_error(exc, request) from exc
                self._log_retry(request, type(exc).__name__, delay)
            else:
                if response.is_success:
                    return self._finish(response, parse, retries_taken)
                delay = self._retry_delay(retries_taken, response)
                if delay is None:
                    raise make_status_error(response)
                self._log_retry(request, str(response.status_code), delay)
                await response.aclose()
            await _async_sleep(delay)
            retries_taken += 1


def _should_retry(response: httpx.Response) -> bool:
    # The server's explicit word wins over the status-based default.
    should_retry = response.headers.get("x-should-retry", "").lower()
    if should_retry == "true":
        return True
    if should_retry == "false":
        return False
    status = response.status_code
    return status in (408, 409, 429) or status >= 500


def _parse_retry_after(headers: httpx.Headers) -> Optional[float]:
    """Seconds the server asked us to wait (``retry-after-ms``, then ``Retry-After``)."""
    retry_after_ms = headers.get("retry-after-ms")
    if retry_after_ms is not None:
        try:
            return max(float(retry_after_ms) / 1000, 0.0)
        except ValueError:
            pass
    retry_after = headers.get("retry-after")
    if retry_after is None:
        return None
    try:
        return max(float(retry_after), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(when.timestamp() - time.time(), 0.0)


def _encode_query(query: Mapping[str, object]) -> Dict[str, str]:
    """Query values as the API reads them: lists comma-separated, dates ISO, booleans lowercase."""
    encoded: Dict[str, str] = {}
    for key, value in query.items():
        if value is None or isinstance(value, NotGiven):
            continue
        if isinstance(value, bool):
            encoded[key] = "true" if value else "false"
        elif isinstance(value, (dt.date, dt.datetime)):
            encoded[key] = value.isoformat()
        elif isinstance(value, (list, tuple)):
            encoded[key] = ",".join(str(item) for item in value)
        else:
            encoded[key] = str(value)
    return encoded


def _connection_error(exc: httpx.TransportError, request: httpx.Request) -> APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(request=request)
    return APIConnectionError(request=request, message=f"Connection error: {exc}")
