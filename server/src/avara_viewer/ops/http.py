"""uvicorn's httptools protocol with a bound on the request head and a deadline to send it.

httptools (llhttp) itself accepts request heads of any size (a 10 MB header was answered
200 in testing) and uvicorn has no timeout for a head sent one byte at a time (slowloris).
This protocol answers 431 when the request line and headers pass MAX_HEAD_BYTES (measured
exactly once the head is parsed, and while it is still arriving by the bytes received, so a
head never buffers more than MAX_HEAD_BYTES plus one network read), and closes the connection
when a head has not arrived `head_timeout` seconds after its first byte.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024

_TOO_LARGE = (
    b'{"type":"https://avara-viewer.dev/problems/headers-too-large","title":"Request header '
    b'fields too large","status":431,"detail":"The request line and headers must be at most '
    + str(MAX_HEAD_BYTES).encode()
    + b' bytes.","code":"headers_too_large"}'
)


class HeadTooLarge(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    head_timeout = 20.0  # seconds; `serve` sets it from AVARA_VIEWER_HTTP_HEAD_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_head = True
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._completed = 0
        self._head_too_large = False

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head and self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)
        completed = self._completed
        super().data_received(data)
        # When a message ended inside this chunk, its bytes were mostly that message's; the
        # next head is counted from the next chunk on (at most one chunk late).
        if self._awaiting_head and completed == self._completed and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._reject_head()

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._cancel_head_timer()
        # A head that arrived in one read is measured here, exactly.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise HeadTooLarge  # stops the parser; uvicorn then calls send_400_response
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._reject_head()
        else:
            super().send_400_response(msg)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._completed += 1
        self._awaiting_head = True
        self._head_bytes = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._awaiting_head and not self.transport.is_closing():
            self.transport.close()

    def _reject_head(self) -> None:
        self._cancel_head_timer()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/problem+json\r\n"
            b"content-length: " + str(len(_TOO_LARGE)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + _TOO_LARGE
        )
        self.transport.close()
