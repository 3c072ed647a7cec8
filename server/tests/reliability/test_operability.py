"""What an operator sees: /healthz, /readyz, /metrics, request ids and JSON log lines."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest
from support import CLI, Clinic, Server, SmtpSink, free_port, invite_body


def test_healthz_and_readyz_report_the_database_and_an_empty_outbox(server: Server) -> None:
    assert httpx.get(server.base_url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.base_url + "/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["database"] == "ok"
    assert set(body["outbox"]) == {"pending", "oldestPendingAgeSeconds"}


def test_readyz_and_metrics_show_the_outbox_backing_up_while_mail_is_down(fresh_server) -> None:
    sink = SmtpSink(port=free_port())  # not started: the mail server is down
    server = fresh_server(sink.url, outbox_max_backoff="1s")
    server.start()
    clinic = server.create_clinic("Ops Clinic")
    for _ in range(3):
        assert clinic.client.post("/v1/viewer/users", json=invite_body()).status_code == 201
    time.sleep(2.5)
    outbox = httpx.get(server.base_url + "/readyz").json()["outbox"]
    assert outbox["pending"] == 3
    assert outbox["oldestPendingAgeSeconds"] >= 2
    scraped = _metrics(server)
    assert scraped["avara_viewer_outbox_pending"] == 3
    assert scraped["avara_viewer_outbox_oldest_pending_age_seconds"] >= 2
    assert scraped['avara_viewer_email_deliveries_total{kind="invitation",outcome="retry"}'] >= 3
    sink.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            scraped = _metrics(server)
            if (
                scraped.get('avara_viewer_email_deliveries_total{kind="invitation",outcome="sent"}')
                == 3
            ):
                break
            time.sleep(0.2)
        assert scraped['avara_viewer_email_deliveries_total{kind="invitation",outcome="sent"}'] == 3
        assert scraped["avara_viewer_outbox_pending"] == 0
        assert scraped["avara_viewer_outbox_oldest_pending_age_seconds"] == 0
    finally:
        sink.stop()


def test_readyz_answers_503_when_the_database_is_gone(server_on) -> None:
    # On PostgreSQL: an embedded SQLite file cannot be taken away from a running process.
    server = server_on("postgresql")
    server.start()
    from support import _pg

    _pg(
        f'ALTER DATABASE "{server.database}" WITH ALLOW_CONNECTIONS false; '
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{server.database}'"
    )
    try:
        ready = httpx.get(server.base_url + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.headers["content-type"] == "application/problem+json"
        assert ready.json()["code"] == "not_ready"
        assert httpx.get(server.base_url + "/healthz").status_code == 200  # the process is up
    finally:
        _pg(f'ALTER DATABASE "{server.database}" WITH ALLOW_CONNECTIONS true')
    assert httpx.get(server.base_url + "/readyz", timeout=10).status_code == 200


def test_metrics_count_requests_by_route_template_not_raw_path(
    server: Server, clinic: Clinic
) -> None:
    for _ in range(3):
        clinic.client.get(f"/v1/viewer/users/usr_{'0' * 32}")
    text = httpx.get(server.base_url + "/metrics").text
    assert 'route="/v1/viewer/users/{userId}",status="404"' in text
    assert "usr_0000" not in text
    assert "avara_viewer_http_request_duration_seconds_bucket" in text


def test_a_sane_request_id_is_echoed_logged_and_audited(server: Server, clinic: Clinic) -> None:
    request_id = f"ops-test-{time.time_ns()}"
    response = clinic.client.post(
        "/v1/viewer/users", json=invite_body(), headers={"X-Request-Id": request_id}
    )
    assert response.status_code == 201
    assert response.headers["x-request-id"] == request_id
    assert server.sql(f"SELECT action FROM audit_log WHERE request_id = '{request_id}'")
    line = _log_line(server, request_id)
    assert line["logger"] == "avara_viewer.access"
    assert line["level"] == "INFO"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/v1/viewer/users", 201)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["time"].endswith("Z")


@pytest.mark.parametrize(
    "sent",
    ["", "x" * 65, "has space", "tab\there", "ünïcode"],
    ids=["empty", "long", "space", "tab", "nonascii"],
)
def test_an_insane_request_id_is_replaced_by_a_generated_one(server: Server, sent: str) -> None:
    response = httpx.get(
        server.base_url + "/healthz", headers=[("X-Request-Id", sent.encode("utf-8"))]
    )
    echoed = response.headers["x-request-id"]
    assert echoed != sent and len(echoed) == 32 and int(echoed, 16) >= 0


def test_without_a_request_id_each_request_gets_its_own(server: Server) -> None:
    ids = {httpx.get(server.base_url + "/healthz").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_every_log_line_is_one_json_object(server: Server) -> None:
    lines = server.log_path.read_text().splitlines()
    assert lines
    for line in lines:
        doc = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(doc)


def _log_line(server: Server, request_id: str) -> dict:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in server.log_path.read_text().splitlines():
            if request_id in line:
                doc = json.loads(line)
                if doc.get("logger") == "avara_viewer.access":
                    return doc
        time.sleep(0.05)
    raise AssertionError(f"no access log line for {request_id}")


def _metrics(server: Server) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in httpx.get(server.base_url + "/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_a_worker_serves_its_email_metrics_on_request(fresh_server, smtp_sink: SmtpSink) -> None:
    server = fresh_server(smtp_sink.url)
    server.start("--no-email")
    clinic = server.create_clinic("Worker Clinic")
    port = free_port()
    worker = subprocess.Popen(
        [CLI, "worker", "--metrics-port", str(port)],
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        user = clinic.client.post("/v1/viewer/users", json=invite_body()).json()
        smtp_sink.wait_for(user["email"])
        deadline = time.monotonic() + 10
        sent = 'avara_viewer_email_deliveries_total{kind="invitation",outcome="sent"} 1.0'
        while time.monotonic() < deadline:
            try:
                if sent in httpx.get(f"http://127.0.0.1:{port}/metrics").text:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert sent in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def test_an_idle_keep_alive_connection_outlives_a_clients_own_idle_expiry(server: Server) -> None:
    """httpx drops idle connections after 5 s, nginx and load balancers after 60 s: the
    server must not close first, or a request sent as it closes is lost to a reset."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        assert (first.status, first.read()) == (200, b'{"status":"ok"}')
        sock = conn.sock
        time.sleep(6.5)  # past httpx's 5 s (and the 5 s this server used to keep)
        conn.request("GET", "/healthz")  # a closed connection: RemoteDisconnected here
        second = conn.getresponse()
        assert (second.status, second.read()) == (200, b'{"status":"ok"}')
        assert conn.sock is sock  # the same connection, not a new one
    finally:
        conn.close()
