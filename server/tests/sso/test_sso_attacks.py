"""Single sign-on as an attacker would try it, over HTTP through the real provider's pages: a
tampered or foreign state, a replayed callback, a code from another sign-in, an expired ID
token, and the provider rotating its signing keys between two sign-ins."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from dashboard.browser_support import csrf_of
from sso.provider_support import OpenIdProvider, sign_in_over_http
from sso.sso_support import address, invite, provider_link, sso_clinic, sso_login_over_http
from support import Server


def _start(server: Server, email: str) -> tuple[httpx.Client, str]:
    """A browser that asked to sign in with `email`: (its client, the provider's URL)."""
    client = httpx.Client(base_url=server.base_url)
    token = csrf_of(client.get("/login"))
    started = client.post("/login", data={"email": email, "csrf_token": token})
    return client, provider_link(started)


def _callback(server: Server) -> str:
    return server.base_url + "/auth/oidc/callback"


def test_a_tampered_state_is_refused_and_a_callback_works_once(
    sso_server: Server, openid_provider: OpenIdProvider
) -> None:
    clinic = sso_clinic(sso_server, openid_provider)
    email = address(clinic.domain)
    invite(clinic.clinic, email)
    client, url = _start(sso_server, email)
    back = sign_in_over_http(url, email, _callback(sso_server))
    query = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}

    tampered = client.get("/auth/oidc/callback?" + urlencode({**query, "state": "x" * 43}))
    assert tampered.status_code == 400
    assert "could not be verified" in tampered.text
    assert "avv_session" not in tampered.cookies

    # Another browser (no state cookie) presenting the victim's callback: login CSRF.
    with httpx.Client(base_url=sso_server.base_url) as other:
        foreign = other.get(urlsplit(back).path + "?" + urlsplit(back).query)
        assert foreign.status_code == 400 and "avv_session" not in foreign.cookies

    signed_in = client.get(urlsplit(back).path + "?" + urlsplit(back).query)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/users"
    assert client.get("/users").status_code == 200

    # The same callback again (state and code replayed with the state cookie): refused.
    client.cookies.set("avv_oidc_state", query["state"], path="/auth/oidc/callback")
    replayed = client.get(urlsplit(back).path + "?" + urlsplit(back).query)
    assert replayed.status_code == 400
    assert "already used or has expired" in replayed.text


def test_a_code_from_another_sign_in_is_refused(
    sso_server: Server, openid_provider: OpenIdProvider
) -> None:
    clinic = sso_clinic(sso_server, openid_provider)
    victim, attacker = address(clinic.domain, "victim"), address(clinic.domain, "attacker")
    invite(clinic.clinic, victim)
    invite(clinic.clinic, attacker)
    # The attacker completes their own sign-in at the provider and keeps the code...
    _, attacker_url = _start(sso_server, attacker)
    attacker_back = sign_in_over_http(attacker_url, attacker, _callback(sso_server))
    code = parse_qs(urlsplit(attacker_back).query)["code"][0]
    # ...and injects it into the victim's sign-in (the victim's state, nonce and verifier).
    client, victim_url = _start(sso_server, victim)
    state = parse_qs(urlsplit(victim_url).query)["state"][0]
    injected = client.get("/auth/oidc/callback?" + urlencode({"code": code, "state": state}))
    assert injected.status_code == 401
    assert "Single sign-on failed" in injected.text
    assert "avv_session" not in injected.cookies
    assert sso_server.sql(
        f"SELECT count(*) FROM sso_links WHERE subject IN ('{victim}', '{attacker}')"
    ) == [(0,)]


def test_an_error_from_the_provider_is_shown_and_signs_nobody_in(
    sso_server: Server, openid_provider: OpenIdProvider
) -> None:
    clinic = sso_clinic(sso_server, openid_provider)
    client, url = _start(sso_server, address(clinic.domain))
    state = parse_qs(urlsplit(url).query)["state"][0]
    answer = client.get(
        "/auth/oidc/callback?"
        + urlencode(
            {
                "error": "access_denied",
                "error_description": "<b>End-User aborted</b>",
                "state": state,
            }
        )
    )
    assert answer.status_code == 401
    assert "&lt;b&gt;End-User aborted&lt;/b&gt;" in answer.text  # shown, escaped
    assert "avv_session" not in answer.cookies


def test_an_expired_id_token_is_refused(
    sso_server: Server, openid_provider: OpenIdProvider
) -> None:
    clinic = sso_clinic(sso_server, openid_provider)
    email = address(clinic.domain)
    invite(clinic.clinic, email)
    openid_provider.issue_expired_id_tokens(True)
    try:
        client, answer = sso_login_over_http(sso_server, openid_provider, email)
    finally:
        openid_provider.issue_expired_id_tokens(False)
    assert answer.status_code == 401
    assert "The ID token has expired" in answer.text
    assert client.get("/users").headers["location"].startswith("/login")
    assert sso_server.sql(f"SELECT status FROM users WHERE email = '{email}'") == [("invited",)]


def test_sign_in_keeps_working_when_the_provider_rotates_its_keys(
    sso_server: Server, openid_provider: OpenIdProvider
) -> None:
    clinic = sso_clinic(sso_server, openid_provider)
    email = address(clinic.domain)
    invite(clinic.clinic, email)
    _, first = sso_login_over_http(sso_server, openid_provider, email)
    assert first.status_code == 303  # the server now holds the provider's current keys
    old_kid = openid_provider.kids[0]
    new_kid = openid_provider.rotate_keys()
    assert new_kid != old_kid
    client, second = sso_login_over_http(sso_server, openid_provider, email)
    assert second.status_code == 303, second.text[:500]
    assert client.get("/users").status_code == 200
