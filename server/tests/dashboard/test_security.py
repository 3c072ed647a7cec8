"""The dashboard's defences over plain HTTP: CSRF, login throttling, sessions, headers,
password reset."""

from __future__ import annotations

import re

import httpx
from dashboard.browser_support import (
    PASSWORD,
    accept_over_http,
    csrf_of,
    link_in,
    login_over_http,
    onboard_owner,
)
from support import Server, SmtpSink, invite_body


def test_security_headers_on_pages_and_static_files(server: Server) -> None:
    for path in ("/login", "/static/dashboard.css", "/password-reset"):
        response = httpx.get(server.base_url + path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    # No inline script: the only scripts are the dashboard's own file, loaded by src.
    login = httpx.get(server.base_url + "/login").text
    scripts = re.findall(r"(<script[^>]*>)(.*?)</script>", login, flags=re.S)
    assert scripts == [('<script src="/static/dashboard.js" defer>', "")]


def test_forms_without_a_valid_csrf_token_are_refused(server: Server, smtp_sink: SmtpSink) -> None:
    clinic = server.create_clinic("CSRF Clinic")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    with httpx.Client(base_url=server.base_url) as anonymous:
        anonymous.get("/login")
        for data in ({}, {"csrf_token": "forged"}):
            response = anonymous.post(
                "/login", data={"email": owner.email, "password": PASSWORD, **data}
            )
            assert response.status_code == 403
            assert "This form has expired" in response.text
            assert "avv_session" not in response.cookies

    session = login_over_http(server, owner.email)
    body = {
        "email": "x@hospital.example",
        "firstName": "A",
        "lastName": "B",
        "clinicRole": "Doctor",
        "level": "member",
    }
    # A token from another browser (another CSRF cookie) is refused too.
    with httpx.Client(base_url=server.base_url) as other:
        foreign = csrf_of(other.get("/login"))
    for token in (None, foreign):
        data = dict(body, **({"csrf_token": token} if token else {}))
        assert session.post("/users/new", data=data).status_code == 403
    assert server.sql("SELECT count(*) FROM users WHERE email = 'x@hospital.example'") == [(0,)]
    good = csrf_of(session.get("/users/new"))
    assert session.post("/users/new", data=dict(body, csrf_token=good)).status_code == 303


def test_login_is_throttled_after_repeated_failures(server: Server, smtp_sink: SmtpSink) -> None:
    clinic = server.create_clinic("Throttle Clinic")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    with httpx.Client(base_url=server.base_url) as client:
        statuses = []
        for _ in range(6):
            token = csrf_of(client.get("/login"))
            response = client.post(
                "/login",
                data={"email": owner.email, "password": "wrong password!", "csrf_token": token},
            )
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 401, 429, 429]
        token = csrf_of(client.get("/login"))
        right = client.post(
            "/login", data={"email": owner.email, "password": PASSWORD, "csrf_token": token}
        )
        assert right.status_code == 429
        assert "Too many failed attempts" in right.text
        assert int(right.headers["retry-after"]) > 60
        assert "avv_session" not in right.cookies


def test_unknown_email_and_wrong_password_look_the_same(server: Server) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        token = csrf_of(client.get("/login"))
        response = client.post(
            "/login",
            data={"email": "nobody@hospital.example", "password": "x" * 12, "csrf_token": token},
        )
        assert response.status_code == 401
        assert "The email or password is not correct" in response.text


def test_session_cookie_flags_and_logout(server: Server, smtp_sink: SmtpSink) -> None:
    clinic = server.create_clinic("Cookie Clinic")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    with httpx.Client(base_url=server.base_url) as client:
        token = csrf_of(client.get("/login"))
        response = client.post(
            "/login",
            data={
                "email": owner.email,
                "password": PASSWORD,
                "csrf_token": token,
                "next": "https://evil.example/",
            },
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/users"  # never an open redirect
        cookie = next(
            v
            for k, v in response.headers.multi_items()
            if k == "set-cookie" and v.startswith("avv_session=")
        )
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
        assert client.get("/users").status_code == 200
        token = csrf_of(client.get("/users"))
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303
        response = client.get("/users")
        assert response.status_code == 303 and response.headers["location"].startswith("/login")

    # A tampered session cookie is ignored.
    with httpx.Client(base_url=server.base_url, cookies={"avv_session": "e30.deadbeef"}) as forged:
        assert forged.get("/users").headers["location"].startswith("/login")


def test_password_reset_by_email(server: Server, smtp_sink: SmtpSink) -> None:
    clinic = server.create_clinic("Reset Clinic")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    old_session = login_over_http(server, owner.email)
    with httpx.Client(base_url=server.base_url) as client:
        for email in (owner.email, "nobody@hospital.example"):
            token = csrf_of(client.get("/password-reset"))
            response = client.post("/password-reset", data={"email": email, "csrf_token": token})
            assert response.status_code == 200
            assert "If an active dashboard account uses this address" in response.text
        mail = smtp_sink.wait_for(owner.email, count=2)[-1]
        link = link_in(mail, server, "/password-reset")
        form = client.get(link)
        assert form.status_code == 200 and form.headers["referrer-policy"] == "no-referrer"
        new_password = "another quite long secret"
        data = {"token": link.rsplit("=", 1)[1], "csrf_token": csrf_of(form)}
        short = client.post(
            "/password-reset", data=dict(data, password="short", password_confirmation="short")
        )
        assert short.status_code == 422
        done = client.post(
            "/password-reset",
            data=dict(data, password=new_password, password_confirmation=new_password),
        )
        assert done.status_code == 303
        again = client.get(link)
        assert again.status_code == 410 and "already used" in again.text
    # The old session ended with the password change; the new password works, the old not.
    assert old_session.get("/users").status_code == 303
    login_over_http(server, owner.email, new_password)
    with httpx.Client(base_url=server.base_url) as client:
        token = csrf_of(client.get("/login"))
        assert (
            client.post(
                "/login", data={"email": owner.email, "password": PASSWORD, "csrf_token": token}
            ).status_code
            == 401
        )


def test_users_without_dashboard_access_cannot_log_in(
    server: Server, smtp_sink: SmtpSink, clinic: object
) -> None:
    body = invite_body(hasDashboardAccess=False)
    clinic.client.post("/v1/viewer/users", json=body)  # type: ignore[attr-defined]
    link = link_in(smtp_sink.wait_for(body["email"])[0], server, "/invitations/accept")
    assert accept_over_http(link, password=None).status_code == 200
    with httpx.Client(base_url=server.base_url) as client:
        token = csrf_of(client.get("/login"))
        response = client.post(
            "/login", data={"email": body["email"], "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 401


def test_bulk_csv_preview_sends_nothing_until_confirmed(
    server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = server.create_clinic("Bulk Clinic")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    session = login_over_http(server, owner.email)
    good = "bulk.good@hospital.example"
    csv_text = (
        "email,firstName,lastName,clinicRole,level,canManageStudies,hasDashboardAccess\n"
        f"{good},Ana,Lopez,Radiologist,member,true,false\n"
        "broken,Bo,,Wizard,owner,maybe,true\n"
        f"{good.upper()},Dup,Licate,Doctor,member,false,false\n"
    )
    token = csrf_of(session.get("/users/bulk"))
    preview = session.post(
        "/users/bulk",
        data={"csrf_token": token},
        files={"file": ("people.csv", csv_text.encode(), "text/csv")},
    )
    assert preview.status_code == 200
    assert "1 ready to invite" in preview.text and "2 with problems" in preview.text
    assert "is not a valid email address" in preview.text
    assert "owner cannot be assigned through the API" in preview.text
    assert "must be true or false" in preview.text
    assert "is repeated (first on line 2)" in preview.text
    assert server.sql(f"SELECT count(*) FROM users WHERE email_lower = '{good}'") == [(0,)]
    sent = session.post(
        "/users/bulk", data={"csrf_token": token, "csv_text": csv_text, "action": "send"}
    )
    assert sent.status_code == 303
    assert server.sql(f"SELECT invited_source FROM users WHERE email_lower = '{good}'") == [
        ("dashboard",)
    ]
    smtp_sink.wait_for(good)
