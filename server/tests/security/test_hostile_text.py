"""Every text a client controls that reaches the database, a hash or a date parser, thrown
hostile values: lone surrogates, NUL, 50,000 characters, digits that are not ASCII (², ٣),
far dates, LIKE wildcards. The answer is never a 5xx; where a value is refused, the 422 names
the field. Table-driven: the API's query, path, body and header inputs, and the dashboard's
query parameters and form fields (posted with a valid CSRF token)."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest
from dashboard.browser_support import csrf_of, login_over_http, onboard_owner
from support import Clinic, Server, SmtpSink, invite_body

LONG = "x" * 50_000
# As they travel in a URL or a form: a lone surrogate can only be sent as its UTF-8-like
# bytes (%ED%A0%80), which the server decodes to U+FFFD.
URL_VALUES = [
    "%ED%A0%80",
    "%00",
    LONG,
    quote("²"),
    quote("٣"),
    quote("٣٣٣٣-٠١-٠١"),
    "9999-12-31",
    "0001-01-01",
    "99999999999999999999999",
    "-1",
    "%25",
    "_",
    quote("\u202e"),
]
# As they travel in JSON (a lone surrogate as the escape "\ud800").
BODY_VALUES = ["\ud800", "a\udfffb", "\x00", LONG[:60_000], "²", "٣", "9999-12-31", "%_%"]

API_QUERIES = {
    "/v1/viewer/users": [
        "email", "firstName", "lastName", "cursor", "limit", "level", "invitedSource", "status",
    ],
    "/v1/viewer/users/invitations": [
        "status", "expired", "startDate", "endDate", "userId", "cursor", "limit",
    ],
}


def _no_5xx(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"


def _json(value: str) -> str:
    return json.dumps(value)  # ensure_ascii: a lone surrogate travels as its \u escape


@pytest.mark.parametrize("value", URL_VALUES, ids=range(len(URL_VALUES)))
def test_api_query_and_path_parameters(server: Server, clinic: Clinic, value: str) -> None:
    for path, names in API_QUERIES.items():
        for name in names:
            response = clinic.client.get(f"{path}?{name}={value}")
            _no_5xx(response, f"{path}?{name}")
            if response.status_code == 422:
                assert name in {e["field"] for e in response.json()["errors"]}, response.text
    for template in (
        "/v1/viewer/users/{}",
        "/v1/viewer/users/invitations/{}",
    ):
        path = template.format(value)
        _no_5xx(clinic.client.get(path), f"GET {template}")
        _no_5xx(clinic.client.patch(path, json={"firstName": "A"}), f"PATCH {template}")
    _no_5xx(
        clinic.client.post(f"/v1/viewer/users/invitations/{value}/resend"), "POST resend"
    )


def test_a_long_name_filter_is_refused_naming_it(clinic: Clinic) -> None:
    for name in ("firstName", "lastName", "email"):
        response = clinic.client.get("/v1/viewer/users", params={name: LONG})
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == [name]


def test_like_wildcards_in_a_filter_match_themselves(clinic: Clinic) -> None:
    clinic.client.post("/v1/viewer/users", json=invite_body(lastName="Wild_card%"))
    for value, found in (("d_c", True), ("d_card%", True), ("l%c", False), ("W_ld", False)):
        names = [
            u["lastName"]
            for u in clinic.client.get("/v1/viewer/users", params={"lastName": value}).json()[
                "users"
            ]
        ]
        assert ("Wild_card%" in names) is found, (value, names)


WRITES = [
    ("POST", "/v1/viewer/users", "invite"),
    ("PATCH", "/v1/viewer/users/{user}", "update"),
    ("PATCH", "/v1/viewer/users/invitations/{invitation}", "update"),
    ("POST", "/v1/viewer/users/revoke-access", "userId"),
    ("POST", "/v1/viewer/users/reactivate", "userId"),
    ("POST", "/v1/viewer/users/invitations/revoke", "invitationId"),
]
INVITE_TEXT_FIELDS = [
    "email", "firstName", "middleName", "lastName", "suffix1", "suffix2", "phoneNumber",
    "clinicRole", "level",
]


@pytest.mark.parametrize("value", BODY_VALUES, ids=range(len(BODY_VALUES)))
def test_api_json_bodies(server: Server, clinic: Clinic, value: str) -> None:
    made = clinic.client.post("/v1/viewer/users", json=invite_body()).json()
    invitation = clinic.client.get(
        "/v1/viewer/users/invitations", params={"userId": made["userId"]}
    ).json()["invitations"][0]["invitationId"]
    for method, template, kind in WRITES:
        path = template.format(user=made["userId"], invitation=invitation)
        if kind == "invite":
            fields = INVITE_TEXT_FIELDS
        elif kind == "update":
            fields = [f for f in INVITE_TEXT_FIELDS if f != "email"]
        else:
            fields = [kind, "unknownField"]
        for name in fields:
            body = invite_body() if kind == "invite" else {}
            raw = json.dumps(body)[:-1] if body else "{"
            raw += (", " if body else "") + f'"{name}": {_json(value)}' + "}"
            for headers in ({}, {"Idempotency-Key": "k-" + name + str(len(value))}):
                response = clinic.client.request(
                    method,
                    path,
                    content=raw.encode("utf-8", "surrogatepass"),
                    headers={"Content-Type": "application/json", **headers},
                )
                _no_5xx(response, f"{method} {template} {name}")
                if "\ud800" in value or "\udfff" in value or "\x00" in value:
                    assert response.status_code in (400, 422), response.text
                    fields_named = {e["field"] for e in response.json().get("errors", [])}
                    assert name in fields_named, response.text
    # A surrogate in a key of the body is refused too.
    response = clinic.client.post(
        "/v1/viewer/users",
        content=b'{"\\ud800": 1}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "key", [b"\xb2", "٣".encode(), b"k" * 300, b"\xed\xa0\x80", b"a b", b"\xff" * 255]
)
def test_idempotency_keys(clinic: Clinic, key: bytes) -> None:
    for _ in range(2):
        response = clinic.client.post(
            "/v1/viewer/users", json=invite_body(), headers={"Idempotency-Key": key}
        )
        _no_5xx(response, "Idempotency-Key")


@pytest.fixture(scope="module")
def owner_session(server: Server, smtp_sink: SmtpSink) -> httpx.Client:
    clinic = server.create_clinic("Hostile Text Clinic")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    return login_over_http(server, owner.email)


DASHBOARD_QUERIES = {
    "/users": ["q", "level", "status", "source", "page", "notice"],
    "/audit": ["from", "to", "before", "action", "actor", "target"],
    "/audit.csv": ["from", "to", "before", "action", "actor", "target"],
    "/invitations": ["status", "page", "q", "expired"],
    "/login": ["next", "notice"],
    "/password-reset": ["token"],
    "/invitations/accept": ["token"],
}


@pytest.mark.parametrize("value", URL_VALUES, ids=range(len(URL_VALUES)))
def test_dashboard_query_parameters(owner_session: httpx.Client, value: str) -> None:
    for path, names in DASHBOARD_QUERIES.items():
        for name in names:
            _no_5xx(owner_session.get(f"{path}?{name}={value}"), f"{path}?{name}")
    for path in ("/users/{}", "/users/{}/edit"):
        _no_5xx(owner_session.get(path.format(value)), path)


def test_far_audit_dates_and_odd_digits_answer_the_page_and_the_csv(
    owner_session: httpx.Client,
) -> None:
    for query in ("before=%C2%B2", "to=9999-12-31", "from=9999-12-31", "from=0001-01-01",
                  "before=99999999999999999999999"):
        for path in ("/audit", "/audit.csv"):
            response = owner_session.get(f"{path}?{query}")
            assert response.status_code == 200, (path, query, response.status_code)


FORMS = {
    "/login": ["email", "password", "next"],
    "/password-reset": ["email", "token", "password", "password_confirmation"],
    "/users/new": ["email", "firstName", "lastName", "middleName", "phoneNumber", "clinicRole",
                   "level"],
    "/api-keys": ["description"],
    "/invitations/accept": ["token", "password"],
    "/invitations/decline": ["token"],
}
FORM_VALUES = [b"\xed\xa0\x80", b"\x00", b"y" * 50_000, "²".encode(), "٣".encode()]


@pytest.mark.parametrize("value", FORM_VALUES, ids=range(len(FORM_VALUES)))
def test_dashboard_forms(server: Server, owner_session: httpx.Client, value: bytes) -> None:
    base = {
        "email": b"someone@hospital.example",
        "firstName": b"A",
        "lastName": b"B",
        "clinicRole": b"Doctor",
        "level": b"member",
        "password": b"a long enough password",
        "password_confirmation": b"a long enough password",
    }
    for path, names in FORMS.items():
        for name in names:
            token = csrf_of(owner_session.get("/users"))
            data = {**base, name: value, "csrf_token": token.encode()}
            body = "&".join(f"{k}={quote(v)}" for k, v in data.items())
            response = owner_session.post(
                path,
                content=body.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            _no_5xx(response, f"POST {path} {name}")
            if value == b"\x00":
                assert response.status_code == 422, (path, name)
                assert f"The field “{name}” contains a NUL" in response.text


def test_the_directory_search_takes_wildcards_literally(
    server: Server, smtp_sink: SmtpSink, owner_session: httpx.Client
) -> None:
    token = csrf_of(owner_session.get("/users/new"))
    email = "percent.person@hospital.example"
    made = owner_session.post(
        "/users/new",
        data={"email": email, "firstName": "Per_cent", "lastName": "Person",
              "clinicRole": "Doctor", "level": "member", "csrf_token": token},
    )
    assert made.status_code == 303, made.text
    for q, found in (("r_c", True), ("Per_", True), ("r%t", False), ("P_r_", False)):
        page = owner_session.get("/users", params={"q": q})
        assert page.status_code == 200
        assert (email in page.text) is found, q
