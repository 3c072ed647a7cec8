"""Sessions that really end, over HTTP: a copied cookie stops working after logout, revocation,
a change of level or dashboard access, a password reset or change; people see and end their
sessions, admins end any; login throttling per account and per address that concurrent
guesses and a forged X-Forwarded-For cannot get around; common passwords refused."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable

import httpx
from dashboard.browser_support import PASSWORD, csrf_of
from sso.sso_support import (
    enrol_over_http,
    invite,
    link_in,
    onboard_owner_with_password,
    onboard_with_password,
    password_login,
    post_form,
)
from support import Server, SmtpSink, unique_email


def _member(server: Server, smtp_sink: SmtpSink, name: str = "Sessions Clinic"):
    clinic = server.create_clinic(name)
    email = unique_email("member")
    user_id = onboard_with_password(server, smtp_sink, clinic, email)
    return clinic, email, user_id


def _copy(server: Server, client: httpx.Client) -> httpx.Client:
    """Another browser holding a copy of the session cookie (an attacker's)."""
    return httpx.Client(
        base_url=server.base_url, cookies={"avv_session": client.cookies["avv_session"]}
    )


def _signed_out(client: httpx.Client) -> bool:
    response = client.get("/users")
    return response.status_code == 303 and response.headers["location"].startswith("/login")


def test_accepting_an_invitation_signs_you_in_with_the_second_step_your_level_needs(
    sso_server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = sso_server.create_clinic("Accepting Clinic")
    for level, heading, landing in [
        ("member", "Continue to the dashboard", "/users"),
        # Administrators need MFA here (the clinic's default policy, enforced): enrol first.
        ("admin", "Set up two-step verification", "/account/mfa/setup?next=%2Fusers"),
    ]:
        email = unique_email(level)
        user_id = invite(clinic, email, level=level)
        link = link_in(smtp_sink.wait_for(email)[0], sso_server, "/invitations/accept")
        with httpx.Client(base_url=sso_server.base_url) as browser:
            form = browser.get(link)
            accepted = browser.post(
                link.split("?")[0],
                data={
                    "token": link.rsplit("=", 1)[1],
                    "csrf_token": csrf_of(form),
                    "password": PASSWORD,
                    "password_confirmation": PASSWORD,
                },
            )
            assert accepted.status_code == 200, accepted.text[:500]
            assert f"you are signed in as <strong>{email}</strong>" in accepted.text
            assert f'href="{landing}">{heading}</a>' in accepted.text
            directory = browser.get("/users")
            if level == "member":
                assert directory.status_code == 200
            else:
                assert directory.status_code == 303
                assert directory.headers["location"].startswith("/account/mfa/setup")
        assert sso_server.sql(f"SELECT count(*) FROM sessions WHERE user_id = '{user_id}'") == [
            (1,)
        ]


def test_logout_ends_the_session_for_every_copy_of_the_cookie(
    sso_server: Server, smtp_sink: SmtpSink
) -> None:
    _, email, user_id = _member(sso_server, smtp_sink)
    sessions = f"SELECT id_hash FROM sessions WHERE user_id = '{user_id}'"
    accepted = sso_server.sql(sessions)
    assert len(accepted) == 1  # accepting the invitation signed them in
    client, response = password_login(sso_server, email)
    assert response.status_code == 303 and response.headers["location"] == "/users"
    copy = _copy(sso_server, client)
    assert copy.get("/users").status_code == 200
    stored = [row for row in sso_server.sql(sessions) if row not in accepted]
    assert len(stored) == 1 and client.cookies["avv_session"] not in stored[0][0]

    token = csrf_of(client.get("/users"))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert _signed_out(copy)
    assert sso_server.sql(sessions) == accepted  # that session alone ended


def test_revocation_level_and_dashboard_access_changes_end_sessions_for_good(
    sso_server: Server, smtp_sink: SmtpSink
) -> None:
    clinic, email, user_id = _member(sso_server, smtp_sink)
    client, _ = password_login(sso_server, email)
    # Dashboard access off then on again: the old session does not come back.
    for value in (False, True):
        patched = clinic.client.patch(
            f"/v1/viewer/users/{user_id}", json={"hasDashboardAccess": value}
        )
        assert patched.status_code == 200, patched.text
    assert _signed_out(client)

    client, _ = password_login(sso_server, email)
    assert (
        clinic.client.patch(
            f"/v1/viewer/users/{user_id}", json={"level": "admin", "hasDashboardAccess": True}
        ).status_code
        == 200
    )
    assert _signed_out(client)

    client, response = password_login(sso_server, email)
    assert response.headers["location"].startswith("/account/mfa/setup")  # admins need MFA
    enrol_over_http(client)
    assert client.get("/users").status_code == 200
    revoked = clinic.client.post("/v1/viewer/users/revoke-access", json={"userId": user_id})
    assert revoked.status_code == 200
    assert _signed_out(client)
    assert sso_server.sql(f"SELECT count(*) FROM sessions WHERE user_id = '{user_id}'") == [(0,)]


def test_a_reset_link_dies_with_revocation_and_a_reset_ends_sessions(
    sso_server: Server, smtp_sink: SmtpSink
) -> None:
    clinic, email, user_id = _member(sso_server, smtp_sink)
    with httpx.Client(base_url=sso_server.base_url) as anonymous:
        post_form(anonymous, "/password-reset", {"email": email})
    old_link = link_in(smtp_sink.wait_for(email, count=2)[-1], sso_server, "/password-reset")
    clinic.client.post("/v1/viewer/users/revoke-access", json={"userId": user_id})
    clinic.client.post("/v1/viewer/users/reactivate", json={"userId": user_id})
    assert httpx.get(old_link).status_code == 410  # used up at revocation, not revived

    # (Another person: reset emails to one address are at least a minute apart.)
    _, email, _ = _member(sso_server, smtp_sink)
    client, _ = password_login(sso_server, email)
    with httpx.Client(base_url=sso_server.base_url) as anonymous:
        post_form(anonymous, "/password-reset", {"email": email})
    link = link_in(smtp_sink.wait_for(email, count=2)[-1], sso_server, "/password-reset")
    with httpx.Client() as browser:
        form = browser.get(link)
        new = "a different long passphrase"
        done = browser.post(
            link.split("?")[0],
            data={
                "token": link.rsplit("=", 1)[1],
                "password": new,
                "password_confirmation": new,
                "csrf_token": csrf_of(form),
            },
        )
        assert done.status_code == 303
    assert _signed_out(client)


def test_people_see_their_sessions_and_sign_out_everywhere_else(
    sso_server: Server, smtp_sink: SmtpSink
) -> None:
    _, email, user_id = _member(sso_server, smtp_sink)
    laptop, _ = password_login(sso_server, email, **{"User-Agent": "Laptop browser"})
    phone, _ = password_login(sso_server, email, **{"User-Agent": "Phone browser"})
    profile = laptop.get("/profile")
    assert profile.status_code == 200
    assert "Laptop browser" in profile.text and "Phone browser" in profile.text
    assert "(this device)" in profile.text and "127.0.0.1" in profile.text
    token = csrf_of(profile)
    assert (
        laptop.post("/account/sessions/end-others", data={"csrf_token": token}).status_code == 303
    )
    assert _signed_out(phone)
    assert laptop.get("/users").status_code == 200
    assert sso_server.sql(f"SELECT user_agent FROM sessions WHERE user_id = '{user_id}'") == [
        ("Laptop browser",)
    ]


def test_an_admin_ends_a_session_of_their_clinic_and_it_is_audited(
    sso_server: Server, smtp_sink: SmtpSink
) -> None:
    clinic, email, user_id = _member(sso_server, smtp_sink, "Admin Ends Clinic")
    owner = unique_email("owner")
    onboard_owner_with_password(sso_server, smtp_sink, clinic.id, owner)
    member, _ = password_login(sso_server, email, **{"User-Agent": "Member browser"})
    admin, _ = password_login(sso_server, owner)
    enrol_over_http(admin)
    listing = admin.get("/sessions")
    assert listing.status_code == 200 and "Member browser" in listing.text
    [(public_id,)] = sso_server.sql(
        f"SELECT public_id FROM sessions WHERE user_id = '{user_id}' "
        "AND user_agent = 'Member browser'"
    )
    ended = admin.post(f"/sessions/{public_id}/end", data={"csrf_token": csrf_of(listing)})
    assert ended.status_code == 303
    assert _signed_out(member)
    assert sso_server.sql(
        "SELECT count(*) FROM audit_log WHERE action = 'account.sessions_ended' "
        f"AND target_id = '{user_id}'"
    ) == [(1,)]
    # A session of another clinic cannot be ended from here.
    _, other_email, _ = _member(sso_server, smtp_sink, "Other Clinic")
    password_login(sso_server, other_email, **{"User-Agent": "Other browser"})
    [(foreign,)] = sso_server.sql(
        "SELECT s.public_id FROM sessions s JOIN users u ON u.id = s.user_id "
        f"WHERE u.email = '{other_email}' AND s.user_agent = 'Other browser'"
    )
    refused = admin.post(f"/sessions/{foreign}/end", data={"csrf_token": csrf_of(listing)})
    assert refused.status_code == 404
    assert sso_server.sql(f"SELECT count(*) FROM sessions WHERE public_id = '{foreign}'") == [(1,)]


def test_changing_the_password_needs_the_current_one_refuses_common_ones_and_ends_others(
    sso_server: Server, smtp_sink: SmtpSink
) -> None:
    _, email, _ = _member(sso_server, smtp_sink)
    here, _ = password_login(sso_server, email)
    elsewhere, _ = password_login(sso_server, email)

    def change(current: str, new: str) -> httpx.Response:
        return post_form(
            here,
            "/account/password",
            {"current_password": current, "password": new, "password_confirmation": new},
        )

    assert "not your current password" in change("wrong password here", "x" * 20).text
    for weak, message in (
        ("1qaz2wsx3edc", "most common passwords"),
        ("abcdefghijklmnop", "simple sequence"),
        ("zzzzzzzzzzzzzz", "one character repeated"),
        ("abcabcabcabcabc", "repeat a short pattern"),
    ):
        refused = change(PASSWORD, weak)
        assert refused.status_code == 422 and message in refused.text, weak
    assert change(PASSWORD, "another private long passphrase").status_code == 303
    assert _signed_out(elsewhere)
    assert here.get("/users").status_code == 200
    _, with_old = password_login(sso_server, email)
    assert with_old.status_code == 401


def test_concurrent_guesses_get_no_more_than_the_limit(
    private_server: Callable[..., Server], smtp_sink: SmtpSink
) -> None:
    server = private_server()
    _, email, _ = _member(server, smtp_sink)
    with httpx.Client(base_url=server.base_url) as browser:
        token = csrf_of(browser.get("/login"))
        cookies = dict(browser.cookies)

    def guess(n: int) -> int:
        with httpx.Client(base_url=server.base_url, cookies=cookies, timeout=60) as client:
            return client.post(
                "/login",
                data={"email": email, "password": f"wrong guess {n:04}", "csrf_token": token},
            ).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=24) as pool:
        statuses = list(pool.map(guess, range(24)))
    # Five attempts per account and address: four wrong ones answered 401, the fifth locks.
    assert statuses.count(401) == 4, statuses
    assert statuses.count(429) == 20
    _, right = password_login(server, email)
    assert right.status_code == 429


def test_x_forwarded_for_is_believed_only_from_trusted_proxies(
    private_server: Callable[..., Server], sso_server: Server, smtp_sink: SmtpSink
) -> None:
    # Not trusted (the default): a forged header changes nothing, the pair limit holds.
    _, email, _ = _member(sso_server, smtp_sink)
    statuses = []
    for n in range(6):
        _, response = password_login(
            sso_server, email, "wrong password!", **{"X-Forwarded-For": f"203.0.113.{n}"}
        )
        statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 401, 429, 429]

    # Behind a trusted proxy each address counts apart, and the account's own limit stops an
    # attacker who rotates addresses.
    proxied = private_server(trusted_proxies="127.0.0.1")
    _, email, _ = _member(proxied, smtp_sink)
    statuses = []
    for n in range(12):
        _, response = password_login(
            proxied, email, "wrong password!", **{"X-Forwarded-For": f"198.51.100.{n}"}
        )
        statuses.append(response.status_code)
    assert statuses == [401] * 9 + [429] * 3
    _, response = password_login(proxied, email, **{"X-Forwarded-For": "192.0.2.7"})
    assert response.status_code == 429
    # A person signing in through the proxy is seen at their own address.
    _, other, other_id = _member(proxied, smtp_sink, "Proxied Clinic")
    _, response = password_login(proxied, other, **{"X-Forwarded-For": "192.0.2.8"})
    assert response.status_code == 303
    # (Their first session, from accepting the invitation, came with no header: the proxy's.)
    assert sorted(proxied.sql(f"SELECT ip FROM sessions WHERE user_id = '{other_id}'")) == [
        ("127.0.0.1",),
        ("192.0.2.8",),
    ]
