"""Names refuse what reorders or hides what they show (Unicode categories Cc, Cf, Zl, Zp and
the Hangul fillers) and must contain a letter, on every way in: the API (invite, update), the
dashboard's form and CSV preview, and the command line (owners, clinics)."""

from __future__ import annotations

import pytest
from dashboard.browser_support import csrf_of, login_over_http, onboard_owner
from support import Clinic, Server, SmtpSink, invite_body

HOSTILE = {
    "Ali\u202ecod.exe": "U+202E",  # right-to-left override: shows as "Aliexe.doc"
    "Ma\u200bria": "U+200B",  # zero-width space
    "\u2066Ann\u2069": "U+2066",  # left-to-right isolate
    "Bo\u0085b": "U+0085",  # C1 next line
    "\u3164": "U+3164",  # Hangul filler: a name that shows as nothing
    "Jo\u2028hn": "U+2028",  # line separator
    "\ufeffEve": "U+FEFF",  # zero-width no-break space
}
NO_LETTER = ["...", "12345", "\u0301", "-"]
FINE = ["Zoë", "李", "O'Brien", "Anne-Marie", "Nguyễn", "محمد", "José María"]


@pytest.mark.parametrize("name", list(HOSTILE), ids=list(HOSTILE.values()))
def test_the_api_refuses_hidden_characters_naming_the_field_and_the_character(
    clinic: Clinic, name: str
) -> None:
    for field in ("firstName", "lastName", "middleName", "suffix1"):
        response = clinic.client.post("/v1/viewer/users", json=invite_body(**{field: name}))
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["field"] == field
        assert HOSTILE[name] in error["message"], error
    made = clinic.client.post("/v1/viewer/users", json=invite_body()).json()
    patch = clinic.client.patch(f"/v1/viewer/users/{made['userId']}", json={"lastName": name})
    assert patch.status_code == 422
    assert patch.json()["errors"][0]["field"] == "lastName"


def test_names_must_contain_a_letter_and_real_names_pass(clinic: Clinic) -> None:
    for name in NO_LETTER:
        response = clinic.client.post("/v1/viewer/users", json=invite_body(firstName=name))
        assert response.status_code == 422, name
        assert response.json()["errors"] == [
            {"field": "firstName", "message": "must contain a letter"}
        ]
    for name in FINE:
        response = clinic.client.post("/v1/viewer/users", json=invite_body(lastName=name))
        assert response.status_code == 201, (name, response.text)
        assert response.json()["lastName"] == name
    numbered = clinic.client.post("/v1/viewer/users", json=invite_body(suffix1="2"))
    assert numbered.status_code == 201  # a suffix may be a number


def test_the_dashboard_form_and_csv_refuse_them_too(server: Server, smtp_sink: SmtpSink) -> None:
    clinic = server.create_clinic("Names Clinic")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    session = login_over_http(server, owner.email)
    email = "rtl.name@hospital.example"
    form = {
        "email": email,
        "firstName": "Ali\u202ecod.exe",
        "lastName": "B",
        "clinicRole": "Doctor",
        "level": "member",
        "csrf_token": csrf_of(session.get("/users/new")),
    }
    response = session.post("/users/new", data=form)
    assert response.status_code == 422
    # The API's message, or the dashboard's own words for it.
    assert "U+202E" in response.text or "invisible characters" in response.text
    csv_text = (
        "email,firstName,lastName,clinicRole,level\n"
        f"{email},\u3164,Person,Doctor,member\n"
    )
    token = csrf_of(session.get("/users/bulk"))
    preview = session.post(
        "/users/bulk", data={"csv_text": csv_text, "action": "send", "csrf_token": token}
    )
    assert preview.status_code < 500
    assert "U+3164" in preview.text or "invisible characters" in preview.text
    assert server.sql(f"SELECT count(*) FROM users WHERE email = '{email}'") == [(0,)]


def test_the_command_line_refuses_them(server: Server) -> None:
    refused = server.cli("clinics", "create", "--name", "Clinic\u202etxt.exe", check=False)
    assert refused.returncode == 1 and "U+202E" in refused.stderr
    clinic = server.create_clinic("CLI Names Clinic")
    owner = server.cli(
        "owners", "invite", "--clinic", clinic.id, "--email", "o.rtl@hospital.example",
        "--first-name", "\u3164", "--last-name", "Owner", check=False,
    )
    assert owner.returncode == 1
    assert "firstName" in owner.stderr and "U+3164" in owner.stderr
