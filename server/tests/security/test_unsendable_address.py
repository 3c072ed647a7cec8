"""An address the mailer cannot deliver to is refused at the door with a 422 that says why,
never acknowledged with a 201 whose email then fails. Non-ASCII local parts (`jöhn@…`) need
SMTPUTF8, which this service does not send with: refused. Non-ASCII domains are sent in their
IDNA (xn--) form: accepted, and the email arrives."""

from __future__ import annotations

import pytest
from dashboard.browser_support import csrf_of, login_over_http, onboard_owner
from support import Clinic, Server, SmtpSink, invite_body


@pytest.mark.parametrize("address", ["jöhn@a.example", "名前@hospital.example", "ǆ@b.example"])
def test_a_non_ascii_local_part_is_a_422_saying_why(clinic: Clinic, address: str) -> None:
    response = clinic.client.post("/v1/viewer/users", json=invite_body(email=address))
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "email"
    assert "before the @" in error["message"] and "SMTPUTF8" in error["message"]


def test_an_international_domain_is_accepted_and_delivered(
    server: Server, clinic: Clinic, smtp_sink: SmtpSink
) -> None:
    response = clinic.client.post("/v1/viewer/users", json=invite_body(email="john@bücher.example"))
    assert response.status_code == 201, response.text
    assert response.json()["email"] == "john@bücher.example"
    [mail] = smtp_sink.wait_for("john@xn--bcher-kva.example")
    assert mail.message["To"] == "john@xn--bcher-kva.example"


def test_the_dashboard_and_command_line_refuse_it_too(server: Server, smtp_sink: SmtpSink) -> None:
    clinic = server.create_clinic("Unsendable Clinic")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    session = login_over_http(server, owner.email)
    form = {
        "email": "jöhn@a.example",
        "firstName": "John",
        "lastName": "B",
        "clinicRole": "Doctor",
        "level": "member",
        "csrf_token": csrf_of(session.get("/users/new")),
    }
    assert session.post("/users/new", data=form).status_code == 422
    cli = server.cli(
        "owners", "invite", "--clinic", clinic.id, "--email", "jöhn@a.example",
        "--first-name", "John", "--last-name", "Owner", check=False,
    )
    assert cli.returncode == 1 and "SMTPUTF8" in cli.stderr
    assert server.sql("SELECT count(*) FROM users WHERE email = 'jöhn@a.example'") == [(0,)]
