"""The invitation email as a real SMTP server receives it, and its delivery through faults."""

from __future__ import annotations

import hashlib
import mailbox
import re
import signal
import time
from datetime import UTC, datetime, timedelta

import httpx
from support import Clinic, Server, SmtpSink, free_port, invite_body

LINK = re.compile(r"http://viewer\.test/invitations/accept\?token=([A-Za-z0-9_-]+)")


def invite(server: Server, key: str, **overrides: object) -> dict:
    response = httpx.post(
        server.base_url + "/v1/viewer/users",
        json=invite_body(**overrides),
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_the_email_names_clinic_role_and_carries_one_accept_link(
    server: Server, clinic: Clinic, smtp_sink: SmtpSink
) -> None:
    user = invite(server, clinic.key, clinicRole="PACS Administrator", firstName="Amélie")
    [mail] = smtp_sink.wait_for(user["email"])
    message = mail.message
    assert message["To"] == user["email"]
    assert "Shared Test Clinic" in message["Subject"]
    assert message["Message-ID"].startswith("<invitation-")
    text, html = mail.part("plain"), mail.part("html")
    for part in (text, html):
        assert "Shared Test Clinic" in part
        assert "PACS Administrator" in part
        assert "Amélie" in part
    links = set(LINK.findall(text))
    assert len(links) == 1
    token = links.pop()
    assert len(token) >= 32  # at least 128 random bits
    assert f"token={token}" in html
    # Only the token's hash is stored, never the token itself.
    stored = server.sql(f"SELECT token_hash FROM invitations WHERE user_id = '{user['userId']}'")
    assert stored == [(hashlib.sha256(token.encode()).hexdigest(),)]
    if server.backend == "sqlite":
        assert token.encode() not in (server.data_dir / "avara-viewer.db").read_bytes()


def test_names_are_escaped_in_the_html_and_cannot_forge_headers(
    server: Server, clinic: Clinic, smtp_sink: SmtpSink
) -> None:
    user = invite(
        server, clinic.key, firstName="<script>alert(1)</script>", lastName='O"Brien & Co'
    )
    [mail] = smtp_sink.wait_for(user["email"])
    html = mail.part("html")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "O&#34;Brien &amp; Co" in html or "O&quot;Brien &amp; Co" in html
    assert mail.message["Bcc"] is None


def test_the_invitation_records_delivery_and_expiry(
    server: Server, clinic: Clinic, smtp_sink: SmtpSink
) -> None:
    user = invite(server, clinic.key)
    smtp_sink.wait_for(user["email"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        [(status, delivery, expiry, created)] = server.sql(
            "SELECT status, delivery_status, expiry, created_at FROM invitations "
            f"WHERE user_id = '{user['userId']}'"
        )
        if delivery == "sent":
            break
        time.sleep(0.1)
    assert (status, delivery) == ("sent", "sent")
    if isinstance(expiry, str):
        expiry, created = datetime.fromisoformat(expiry), datetime.fromisoformat(created)
    assert abs((expiry - created) - timedelta(days=7)) < timedelta(seconds=1)


def test_without_smtp_the_email_lands_in_the_maildir(fresh_server) -> None:
    server = fresh_server(None, invitation_ttl="2d")
    server.start()
    clinic = server.create_clinic("Maildir Clinic")
    user = invite(server, clinic.key)
    box = mailbox.Maildir(server.data_dir / "maildir", create=False)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not len(box):
        time.sleep(0.1)
    [message] = list(box)
    assert message["To"] == user["email"]
    body = message.get_payload()[0].get_payload(decode=True).decode()
    assert "http://viewer.test/invitations/accept?token=" in body
    expires = (datetime.now(UTC) + timedelta(days=2)).strftime("%-d %B %Y")
    assert expires in body


def test_a_burst_to_an_unwritable_maildir_waits_and_then_lands_once_each(fresh_server) -> None:
    """The Maildir takes a batch at a time: while it cannot be written nothing is marked
    sent, and once it can, every invitation lands exactly once."""
    server = fresh_server(None)
    server.start()
    clinic = server.create_clinic("Maildir Burst Clinic")
    new = server.data_dir / "maildir" / "new"
    new.rmdir()
    new.write_text("not a directory")  # files are written into tmp/ but cannot enter new/
    try:
        with httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {clinic.key}"},
            timeout=30,
        ) as client:
            emails = set()
            for _ in range(40):
                response = client.post("/v1/viewer/users", json=invite_body())
                assert response.status_code == 201, response.text
                emails.add(response.json()["email"])
        time.sleep(1.5)
        statuses = server.sql("SELECT status, count(*) FROM email_outbox GROUP BY status")
        assert dict(statuses) == {"pending": 40}, statuses
        assert new.read_text() == "not a directory"
        # What was written for the failed batches was taken away again.
        assert not list((server.data_dir / "maildir" / "tmp").iterdir())
        attempts = server.sql("SELECT min(attempts) FROM email_outbox")
        assert attempts[0][0] >= 1, attempts
    finally:
        new.unlink()
        new.mkdir(mode=0o700)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if dict(server.sql("SELECT status, count(*) FROM email_outbox GROUP BY status")) == {
            "sent": 40
        }:
            break
        time.sleep(0.2)
    box = mailbox.Maildir(server.data_dir / "maildir", create=False)
    delivered = sorted(message["To"] for message in box)
    assert delivered == sorted(emails)


def test_a_server_stopped_while_draining_a_backlog_delivers_the_rest_after_restart(
    fresh_server,
) -> None:
    """A SIGTERM while a backlog is being sent, batch by batch, leaves nothing behind: after
    a restart every invitation reaches the mail server."""
    sink = SmtpSink(port=free_port())
    sink.start()
    try:
        server = fresh_server(sink.url)
        server.start("--no-email")
        clinic = server.create_clinic("Backlog Clinic")
        with httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {clinic.key}"},
            timeout=30,
        ) as client:
            emails = []
            for _ in range(300):
                response = client.post("/v1/viewer/users", json=invite_body())
                assert response.status_code == 201, response.text
                emails.append(response.json()["email"])
        server.stop()
        server.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(sink.mails) < 40:
            time.sleep(0.01)
        server.stop(signal.SIGTERM)
        stopped_with = len(sink.mails)
        assert 40 <= stopped_with < 300, stopped_with
        server.start()
        for address in emails:
            assert sink.wait_for(address, timeout=60), address
        # The last batch's outcomes are recorded a moment after the mail server took it.
        deadline = time.monotonic() + 30
        while True:
            query = "SELECT status, count(*) FROM email_outbox GROUP BY status"
            statuses = dict(server.sql(query))
            if statuses == {"sent": 300} or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert statuses == {"sent": 300}, statuses
    finally:
        sink.stop()


def test_a_process_killed_after_the_201_still_delivers_after_restart(fresh_server) -> None:
    # The mail server is down, so the email cannot have left before the kill.
    sink = SmtpSink(port=free_port())
    server = fresh_server(sink.url)
    server.start()
    clinic = server.create_clinic("Crash Clinic")
    users = [invite(server, clinic.key) for _ in range(5)]
    server.stop(signal.SIGKILL)
    sink.start()
    try:
        server.start()
        for user in users:
            [mail] = sink.wait_for(user["email"], timeout=30)
            assert "invitations/accept?token=" in mail.part("plain")
    finally:
        sink.stop()


def test_a_mail_server_outage_delays_mail_and_loses_none(fresh_server) -> None:
    sink = SmtpSink(port=free_port())
    server = fresh_server(sink.url, outbox_max_backoff="2s")
    server.start()
    clinic = server.create_clinic("Outage Clinic")
    users = [invite(server, clinic.key) for _ in range(10)]
    time.sleep(4)
    attempts = server.sql("SELECT attempts, status, last_error FROM email_outbox")
    assert len(attempts) == 10
    assert all(status == "pending" for _, status, _ in attempts)
    assert all(count >= 2 for count, _, _ in attempts), attempts  # retried with backoff
    assert all(error for _, _, error in attempts)
    sink.start()
    try:
        for user in users:
            sink.wait_for(user["email"], timeout=30)
        time.sleep(0.5)
        assert all(len(sink.to(u["email"])) == 1 for u in users)
    finally:
        sink.stop()
    statuses = server.sql("SELECT status FROM email_outbox")
    assert {s for (s,) in statuses} == {"sent"}


def test_a_permanently_refused_address_is_marked_failed_not_retried(
    server: Server, clinic: Clinic, smtp_sink: SmtpSink
) -> None:
    user = invite(server, clinic.key, email=f"reject550.{time.time_ns()}@hospital.example")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = server.sql(
            "SELECT i.delivery_status, o.status, o.attempts FROM invitations i "
            "JOIN email_outbox o ON o.subject_id = i.id "
            f"WHERE i.user_id = '{user['userId']}'"
        )
        if rows and rows[0][0] == "failed":
            break
        time.sleep(0.1)
    assert rows == [("failed", "failed", 1)]
    time.sleep(1)
    assert server.sql(
        f"SELECT o.attempts FROM email_outbox o JOIN invitations i ON o.subject_id = i.id "
        f"WHERE i.user_id = '{user['userId']}'"
    ) == [(1,)]
