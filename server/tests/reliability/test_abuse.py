"""Abuse: the per-API-key rate limit (one process and across processes), and request size limits."""

from __future__ import annotations

import copy
import socket
import time

import httpx
from support import Server, free_port, invite_body


def _fresh_window(min_left: float = 12) -> None:
    """Wait, if needed, so a test runs inside one one-minute rate-limit window."""
    left = 60 - time.time() % 60
    if left < min_left:
        time.sleep(left + 0.05)


def _second_process(server: Server) -> Server:
    """Another `serve` process on the same database and data dir."""
    other = copy.copy(server)
    other.port = free_port()
    other.base_url = f"http://127.0.0.1:{other.port}"
    other.process = None
    other.start()
    return other


def test_a_key_over_its_limit_gets_429_with_retry_after_and_others_are_unaffected(
    fresh_server,
) -> None:
    server = fresh_server(None, rate_limit_per_minute="25")
    server.start()
    busy = server.create_clinic("Busy Clinic")
    quiet = server.create_clinic("Quiet Clinic")
    _fresh_window()
    statuses = [busy.client.get("/v1/viewer/users?limit=1").status_code for _ in range(25)]
    assert statuses == [200] * 25
    limited = busy.client.post("/v1/viewer/users", json=invite_body())
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert quiet.client.get("/v1/viewer/users?limit=1").status_code == 200
    # Unauthenticated requests are answered 401 before any limit is counted.
    bad = httpx.get(server.base_url + "/v1/viewer/users", headers={"Authorization": "Bearer x"})
    assert bad.status_code == 401
    time.sleep(0.5)
    [(count,)] = server.sql(
        "SELECT count FROM rate_limits r JOIN api_keys k ON k.id = r.key_id "
        f"WHERE k.clinic_id = '{busy.id}'"
    )
    assert count == 25  # only admitted requests are counted


def test_the_limit_holds_across_processes_sharing_one_database(fresh_server) -> None:
    server = fresh_server(None, rate_limit_per_minute="40")
    server.start()
    clinic = server.create_clinic("Two Process Clinic")
    other = _second_process(server)
    try:
        _fresh_window()
        headers = {"Authorization": f"Bearer {clinic.key}"}
        first = [clinic.client.get("/v1/viewer/users?limit=1").status_code for _ in range(30)]
        assert first == [200] * 30
        # The other process learns the shared count at its next sync (every ~250 ms).
        assert (
            httpx.get(other.base_url + "/v1/viewer/users?limit=1", headers=headers).status_code
            == 200
        )
        time.sleep(0.8)
        second = [
            httpx.get(other.base_url + "/v1/viewer/users?limit=1", headers=headers).status_code
            for _ in range(20)
        ]
        assert second.count(200) == 9 and second.count(429) == 11
        time.sleep(0.8)
        assert clinic.client.get("/v1/viewer/users?limit=1").status_code == 429
    finally:
        other.stop()


def test_a_body_over_64_kib_is_413_and_a_head_over_64_kib_is_431(server: Server, clinic) -> None:
    big = invite_body(firstName="a" * (70 * 1024))
    response = clinic.client.post("/v1/viewer/users", json=big)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    for header in (
        b"X-Big: " + b"a" * (70 * 1024),
        b"".join(b"X-%d: v\r\n" % i for i in range(12000))[:-2],
    ):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n")
            reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 431 "), reply[:100]
        assert b'"code":"headers_too_large"' in reply
    # A normal request still works after those.
    assert httpx.get(server.base_url + "/healthz").status_code == 200


def test_a_request_head_sent_too_slowly_is_cut_off(fresh_server) -> None:
    server = fresh_server(None, http_head_timeout="2")
    server.start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 8:
            try:
                sock.sendall(b"X-Drip: y\r\n")  # one header every 0.5 s, never the end
                sock.settimeout(0.5)
                if sock.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
        assert closed
        assert 1.5 <= time.monotonic() - started <= 4
