"""A password-reset request answers the same for a known and an unknown address: the same
status and page, and the work that tells them apart (the lookup, the token, the queued
email) runs after the answer, detached from the request. How long each takes was measured
outside the suite (docs/reliability.md, "Security review"): timing is not asserted here."""

from __future__ import annotations

import re

import httpx
from dashboard.browser_support import csrf_of, onboard_owner
from support import Server, SmtpSink

_TOKEN = re.compile(r'name="csrf_token" value="[^"]+"')


def _post(client: httpx.Client, email: str) -> httpx.Response:
    token = csrf_of(client.get("/password-reset"))
    return client.post("/password-reset", data={"email": email, "csrf_token": token})


def test_known_and_unknown_addresses_get_the_same_answer_and_only_the_known_an_email(
    server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = server.create_clinic("Reset Privacy Clinic")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    unknown = "nobody.reset@hospital.example"
    with httpx.Client(base_url=server.base_url) as client:
        known_answer = _post(client, owner.email)
        unknown_answer = _post(client, unknown)
    assert known_answer.status_code == unknown_answer.status_code == 200
    assert _TOKEN.sub("", known_answer.text) == _TOKEN.sub("", unknown_answer.text)
    assert set(known_answer.headers) == set(unknown_answer.headers)
    assert known_answer.cookies.keys() == unknown_answer.cookies.keys()

    # The detached lookup still does its work: the owner's reset email arrives (after the
    # invitation), and nothing is queued or recorded for the unknown address.
    [_, reset] = smtp_sink.wait_for(owner.email, count=2)
    assert "/password-reset?token=" in reset.part("plain")
    assert smtp_sink.to(unknown) == []
    assert server.sql(
        f"SELECT count(*) FROM email_outbox WHERE recipient = '{unknown}'"
    ) == [(0,)]
