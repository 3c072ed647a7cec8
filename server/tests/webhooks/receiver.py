"""Helpers of the webhook tests: a real HTTP receiver on loopback that verifies every delivery
with the `standardwebhooks` package and with the avara client, and the settings that shrink
the retry schedule (AVARA_VIEWER_WEBHOOK_RETRY_SCALE) so no test waits for real times."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import standardwebhooks
from avara import Avara
from support import Clinic, free_port

# One ten-thousandth of the real schedule: 5 s -> 0.5 ms, 5 min -> 30 ms, 30 min -> 0.18 s,
# 2 h -> 0.72 s, 5 h -> 1.8 s.
FAST_RETRIES = {
    "webhook_allow_private": "true",
    "webhook_retry_scale": "0.0001",
    "webhook_timeout": "1",
    "webhook_lease": "5s",
    "webhook_poll_interval": "0.1",
    "webhook_sweep_interval": "0.3",
    "resend_cooldown": "0",
}


@functools.cache
def _client() -> Avara:
    """The avara client whose webhooks.unwrap checks deliveries (it makes no request)."""
    return Avara(api_key="avk_unused")


# What the receiver answers: (status, headers, seconds to wait before answering).
Answer = tuple[int, dict[str, str], float]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int = 0

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """An HTTP server on loopback that records every POST and answers as `answer` says.

    With `secret` set, every request must verify with both the standardwebhooks package and
    the avara client; one that does not is recorded in `forged`."""

    port: int = field(default_factory=free_port)
    answer: Callable[[Received, int], Answer] = lambda received, n: (200, {}, 0.0)
    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    forged: list[tuple[Received, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender went away mid-request (a test killed it): like any HTTP
                    # server, take nothing from a request that did not arrive whole.
                    self.close_connection = True
                    return
                got = Received(dict(self.headers.items()), body, time.monotonic())
                problem = receiver.verify(got)
                with receiver.lock:
                    receiver.received.append(got)
                    attempt = sum(
                        1
                        for r in receiver.received
                        if r.headers.get("webhook-id") == got.headers.get("webhook-id")
                    )
                    if problem:
                        receiver.forged.append((got, problem))
                status, headers, delay = receiver.answer(got, attempt)
                got.answered = status
                time.sleep(delay)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the server gave up waiting: exactly what a hanging receiver tests

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            request_queue_size = 256  # many deliveries connect at once

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def verify(self, got: Received) -> str | None:
        """Why the delivery is not authentic under every secret in `secrets`, or None."""
        for secret in list(self.secrets):
            try:
                standardwebhooks.Webhook(secret).verify(got.body, got.headers)
                event = _client().webhooks.unwrap(got.body, headers=got.headers, key=secret)
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"
            if event.id != got.headers.get("webhook-id"):
                return "the body's id is not the webhook-id"
        return None

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """The events accepted (answered 2xx), in the order they arrived."""
        with self.lock:
            found = [r.event for r in self.received if 200 <= r.answered < 300]
        return [e for e in found if event_type is None or e["type"] == event_type]

    def wait_for(
        self, check: Callable[[list[dict[str, Any]]], bool], timeout: float = 20
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if check(events):
                return events
            time.sleep(0.05)
        raise AssertionError(f"the receiver did not get what was expected; it got {self.events()}")

    def wait_for_types(self, *types: str, timeout: float = 20) -> list[dict[str, Any]]:
        wanted = list(types)

        def arrived(events: list[dict[str, Any]]) -> bool:
            got = [e["type"] for e in events]
            return all(got.count(t) >= wanted.count(t) for t in set(wanted))

        return self.wait_for(arrived, timeout)


def subscribe(clinic: Clinic, receiver: Receiver, **fields: Any) -> dict[str, Any]:
    """Create an endpoint for the receiver; the receiver then verifies with its secret."""
    response = clinic.client.post(
        "/v1/viewer/webhook-endpoints", json={"url": receiver.url, **fields}
    )
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    receiver.secrets = [endpoint["secret"]]
    return endpoint


def deliveries(clinic: Clinic, endpoint_id: str, **query: Any) -> list[dict[str, Any]]:
    response = clinic.client.get(
        f"/v1/viewer/webhook-endpoints/{endpoint_id}/deliveries", params={"limit": 100, **query}
    )
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]  # type: ignore[no-any-return]


def wait_until(check: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")
