"""The clients: ``Avara`` (blocking) and ``AsyncAvara`` (asyncio)."""

from __future__ import annotations

from functools import cached_property
from types import TracebackType
from typing import Mapping, Optional, Union

import httpx
from typing_extensions import Self

from ._base_client import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, AsyncAPIClient, SyncAPIClient
from ._types import NOT_GIVEN, NotGiven, Timeout
from .resources.viewer import AsyncViewer, AsyncViewerWithRawResponse, Viewer, ViewerWithRawResponse
from .resources.webhooks import AsyncWebhooks, Webhooks

__all__ = ["AsyncAvara", "Avara"]


class Avara(SyncAPIClient):
    """Client of the Avara Viewer API.

    Args:
      api_key: The clinic's API key; defaults to the ``AVARA_API_KEY`` environment variable.
        Raises ``AvaraError`` when neither is set.
      base_url: Where the server runs; defaults to ``AVARA_BASE_URL``, else
        ``http://127.0.0.1:8000``.
      timeout: Seconds (or an ``httpx.Timeout``) per attempt; default 60 s, 5 s to connect.
      max_retries: Retries after the first attempt on connection errors, timeouts, 408,
        409, 429 and 5xx responses; default 2.
      default_headers: Headers sent on every request.
      http_client: An ``httpx.Client`` of your own (proxies, certificates, transports). The
        client does not close it for you.
      webhook_key: The signing secret (``whsec_...``) of your webhook endpoint, used by
        ``client.webhooks.unwrap``; defaults to the ``AVARA_WEBHOOK_KEY`` environment variable.
    """

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        base_url: Union[str, httpx.URL, None] = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Optional[Mapping[str, str]] = None,
        http_client: Optional[httpx.Client] = None,
        webhook_key: Optional[str] = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            http_client=http_client,
            webhook_key=webhook_key,
        )

    @cached_property
    def viewer(self) -> Viewer:
        return Viewer(self)

    @cached_property
    def webhooks(self) -> Webhooks:
        """Verify and parse the events Avara Viewer POSTs to your webhook endpoints."""
        return Webhooks(self)

    @cached_property
    def with_raw_response(self) -> AvaraWithRawResponse:
        """The same resources, whose methods return the raw HTTP response."""
        return AvaraWithRawResponse(self)

    def with_options(
        self,
        *,
        api_key: Optional[str] = None,
        base_url: Union[str, httpx.URL, None] = None,
        timeout: Union[Timeout, NotGiven] = NOT_GIVEN,
        max_retries: Optional[int] = None,
        default_headers: Optional[Mapping[str, str]] = None,
        http_client: Optional[httpx.Client] = None,
        webhook_key: Optional[str] = None,
    ) -> Self:
        """A copy of this client with some options changed; it shares the connection pool.

        ``default_headers`` are added to this client's own.
        """
        return type(self)(
            api_key=api_key or self.api_key,
            base_url=base_url or self.base_url,
            timeout=self.timeout if isinstance(timeout, NotGiven) else timeout,
            max_retries=self.max_retries if max_retries is None else max_retries,
            default_headers={**self._custom_headers, **(default_headers or {})},
            http_client=http_client or self._client,
            webhook_key=webhook_key or self.webhook_key,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        exc_tb: Optional[TracebackType],
    ) -> None:
        self.close()


class AsyncAvara(AsyncAPIClient):
    """Asyncio client of the Avara Viewer API; the same options as ``Avara``.

    ``http_client``, when given, is an ``httpx.AsyncClient``.
    """

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        base_url: Union[str, httpx.URL, None] = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Optional[Mapping[str, str]] = None,
        http_client: Optional[httpx.AsyncClient] = None,
        webhook_key: Optional[str] = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            http_client=http_client,
            webhook_key=webhook_key,
        )

    @cached_property
    def viewer(self) -> AsyncViewer:
        return AsyncViewer(self)

    @cached_property
    def webhooks(self) -> AsyncWebhooks:
        """Verify and parse the events Avara Viewer POSTs to your webhook endpoints."""
        return AsyncWebhooks(self)

    @cached_property
    def with_raw_response(self) -> AsyncAvaraWithRawResponse:
        """The same resources, whose methods return the raw HTTP response."""
        return AsyncAvaraWithRawResponse(self)

    def with_options(
        self,
        *,
        api_key: Optional[str] = None,
        base_url: Union[str, httpx.URL, None] = None,
        timeout: Union[Timeout, NotGiven] = NOT_GIVEN,
        max_retries: Optional[int] = None,
        default_headers: Optional[Mapping[str, str]] = None,
        http_client: Optional[httpx.AsyncClient] = None,
        webhook_key: Optional[str] = None,
    ) -> Self:
        """A copy of this client with some options changed; it shares the connection pool.

        ``default_headers`` are added to this client's own.
        """
        return type(self)(
            api_key=api_key or self.api_key,
            base_url=base_url or self.base_url,
            timeout=self.timeout if isinstance(timeout, NotGiven) else timeout,
            max_retries=self.max_retries if max_retries is None else max_retries,
            default_headers={**self._custom_headers, **(default_headers or {})},
            http_client=http_client or self._client,
            webhook_key=webhook_key or self.webhook_key,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        exc_tb: Optional[TracebackType],
    ) -> None:
        await self.close()


class AvaraWithRawResponse:
    def __init__(self, client: Avara) -> None:
        self._client = client

    @cached_property
    def viewer(self) -> ViewerWithRawResponse:
        return self._client.viewer.with_raw_response


class AsyncAvaraWithRawResponse:
    def __init__(self, client: AsyncAvara) -> None:
        self._client = client

    @cached_property
    def viewer(self) -> AsyncViewerWithRawResponse:
        return self._client.viewer.with_raw_response
