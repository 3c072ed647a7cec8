"""No API key and no invitation link token ever reaches a log line."""

from __future__ import annotations

import re

import httpx
from support import Clinic, Server, SmtpSink, invite_body

TOKEN = re.compile(r"/invitations/accept\?token=([A-Za-z0-9_-]+)")


def _tokens(sink: SmtpSink) -> set[str]:
    with sink.lock:
        mails = list(sink.mails)
    return {t for m in mails for t in TOKEN.findall(m.raw.decode("utf-8", "replace"))}


def _secret_parts(key: str) -> list[str]:
    # The whole key and its secret part alone (after the recognisable prefix).
    return [key, key.split("_", 1)[-1]]


def test_a_full_run_logs_no_api_key_and_no_link_token(fresh_server, smtp_sink: SmtpSink) -> None:
    server = fresh_server(smtp_sink.url)
    server.start()
    clinic = server.create_clinic("Log Clinic")
    other = server.create_clinic("Other Log Clinic")
    users = []
    for _ in range(5):
        response = clinic.client.post("/v1/viewer/users", json=invite_body())
        assert response.status_code == 201
        users.append(response.json())
    for user in users:
        smtp_sink.wait_for(user["email"])
    mine = sorted(_tokens(smtp_sink))
    base = server.base_url
    # Every kind of request that carries a secret: good keys, bad keys, odd headers,
    # followed and malformed links, errors of each status.
    for token in mine[:3]:
        httpx.get(f"{base}/invitations/accept", params={"token": token})
        httpx.post(f"{base}/invitations/accept", data={"token": token, "password": "x"})
        httpx.get(f"{base}/invitations/accept", params={"token": token + "x"})
    wrong = clinic.key[:-4] + "abcd"
    for header in (f"Bearer {wrong}", wrong, f"Basic {clinic.key}", f"Bearer {clinic.key} extra"):
        httpx.get(f"{base}/v1/viewer/users", headers={"Authorization": header})
    clinic.client.post(
        "/v1/viewer/users", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    clinic.client.post("/v1/viewer/users", json=invite_body(email=users[0]["email"]))
    clinic.client.get(f"/v1/viewer/users/{users[0]['userId']}?token={mine[0]}")
    other.client.get(f"/v1/viewer/users/{users[0]['userId']}")
    server.stop()
    log = server.log_path.read_text()
    assert "avara_viewer.access" in log  # the access log was on: there was something to leak
    for key in (clinic.key, other.key, wrong):
        for part in _secret_parts(key):
            assert part not in log, "an API key reached the log"
    for token in mine:
        assert token not in log, "an invitation token reached the log"


def test_the_shared_servers_log_of_this_run_holds_no_key_or_token(
    server: Server, clinic: Clinic, smtp_sink: SmtpSink
) -> None:
    """The log of the session's server after every test that ran before this one."""
    log = server.log_path.read_text()
    for part in _secret_parts(clinic.key):
        assert part not in log
    for token in _tokens(smtp_sink):
        assert token not in log
