"""Single sign-on in a real browser (Debian's chromium) through the real OpenID Provider's
login and consent pages: first sign-in of an invited person, an active person, an unknown
address, an address outside the clinic's domains, required SSO with an owner's break-glass,
and a clinic connecting its provider and requiring MFA from the settings page."""

from __future__ import annotations

import re
from typing import Any

import pyotp
from dashboard.browser_support import PASSWORD, screenshot
from playwright.sync_api import expect
from sso.provider_support import ANY_PASSWORD, OpenIdProvider
from sso.sso_support import (
    address,
    invite,
    new_domain,
    onboard_owner_with_password,
    onboard_with_password,
    sso_clinic,
)
from support import Server, SmtpSink, on_one_database, unique_email

pytestmark = on_one_database("postgresql")


def provider_sign_in(tab: Any, login: str) -> None:
    """At the provider: its login page (any login and password), then its consent page."""
    expect(tab.locator("input[name=login]")).to_be_visible()
    tab.locator("input[name=login]").fill(login)
    tab.locator("input[name=password]").fill(ANY_PASSWORD)
    tab.get_by_role("button", name="Sign-in").click()
    tab.get_by_role("button", name="Continue").click()


def start_at_login_page(tab: Any, email: str) -> None:
    """The email-first login page, in a browser the provider does not remember."""
    tab.context.clear_cookies()
    tab.goto("/login")
    tab.get_by_label("Email").fill(email)
    tab.get_by_role("button", name="Log in").click()


def test_an_invited_person_joins_at_their_first_sign_in_and_an_active_one_signs_in(
    tab: Any, sso_server: Server, openid_provider: OpenIdProvider
) -> None:
    clinic = sso_clinic(sso_server, openid_provider)
    email = address(clinic.domain)
    user_id = invite(clinic.clinic, email)
    assert sso_server.sql(f"SELECT status FROM users WHERE id = '{user_id}'") == [("invited",)]

    start_at_login_page(tab, email)
    expect(tab).to_have_url(re.compile(rf"^{re.escape(openid_provider.issuer)}/"))
    provider_sign_in(tab, email)
    expect(tab).to_have_url(re.compile(r"/users$"))
    expect(tab.get_by_role("heading", level=1)).to_contain_text("Directory")
    assert sso_server.sql(f"SELECT status FROM users WHERE id = '{user_id}'") == [("active",)]
    assert sso_server.sql(f"SELECT status FROM invitations WHERE user_id = '{user_id}'") == [
        ("accepted",)
    ]
    assert sso_server.sql(f"SELECT subject FROM sso_links WHERE user_id = '{user_id}'") == [
        (email,)
    ]

    # Later: an active person signs in again.
    tab.get_by_role("button", name="Log out").click()
    expect(tab.get_by_role("status")).to_contain_text("You are logged out")
    start_at_login_page(tab, email)
    provider_sign_in(tab, email)
    expect(tab).to_have_url(re.compile(r"/users$"))
    tab.goto("/profile")
    expect(tab.locator("#my-sessions tbody tr")).to_have_count(1)
    expect(tab.locator("#my-sessions")).to_contain_text("Single sign-on")
    actions = [
        a
        for (a,) in sso_server.sql(
            f"SELECT action FROM audit_log WHERE target_id = '{user_id}' ORDER BY seq"
        )
    ]
    assert actions.count("account.signed_in") == 2 and "account.signed_out" in actions
    assert "account.sso_linked" in actions


def test_an_unknown_address_and_an_address_outside_the_domains_are_refused(
    tab: Any, sso_server: Server, openid_provider: OpenIdProvider
) -> None:
    clinic = sso_clinic(sso_server, openid_provider)
    stranger = address(clinic.domain, "stranger")
    start_at_login_page(tab, stranger)
    provider_sign_in(tab, stranger)
    expect(tab.get_by_role("heading", level=1)).to_have_text(
        "Your clinic does not know this address"
    )
    expect(tab.locator("main")).to_contain_text(stranger)
    assert sso_server.sql(f"SELECT count(*) FROM users WHERE email = '{stranger}'") == [(0,)]

    # Started with a clinic address, but the provider vouches for an address elsewhere.
    elsewhere = unique_email("private")
    invite(clinic.clinic, elsewhere)
    start_at_login_page(tab, address(clinic.domain))
    provider_sign_in(tab, elsewhere)
    expect(tab.get_by_role("heading", level=1)).to_have_text("This address cannot sign in here")
    expect(tab.locator("main")).to_contain_text(clinic.domain)
    assert sso_server.sql(f"SELECT status FROM users WHERE email = '{elsewhere}'") == [("invited",)]


def test_an_unverified_address_or_another_subject_is_refused(
    tab: Any, sso_server: Server, openid_provider: OpenIdProvider
) -> None:
    clinic = sso_clinic(sso_server, openid_provider)
    email = address(clinic.domain)
    invite(clinic.clinic, email)
    start_at_login_page(tab, email)
    provider_sign_in(tab, "unverified:" + email)
    expect(tab.get_by_role("heading", level=1)).to_have_text("Your email address was not confirmed")

    start_at_login_page(tab, email)
    provider_sign_in(tab, email)
    expect(tab).to_have_url(re.compile(r"/users$"))
    tab.get_by_role("button", name="Log out").click()
    # Same address, another identity at the provider: the link made at first sign-in holds.
    start_at_login_page(tab, email)
    provider_sign_in(tab, email + "#someone-else")
    expect(tab.get_by_role("heading", level=1)).to_have_text(
        "This account belongs to another sign-in"
    )


def test_joining_with_defaults_when_the_clinic_allows_it(
    tab: Any, sso_server: Server, openid_provider: OpenIdProvider
) -> None:
    clinic = sso_clinic(sso_server, openid_provider, "--join-with-defaults")
    newcomer = address(clinic.domain, "newcomer")
    start_at_login_page(tab, newcomer)
    provider_sign_in(tab, newcomer)
    expect(tab).to_have_url(re.compile(r"/users$"))
    [(level, role, status, source)] = sso_server.sql(
        f"SELECT level, clinic_role, status, invited_source FROM users WHERE email = '{newcomer}'"
    )
    assert (level, role, status, source) == ("member", "Other", "active", "dashboard")


def test_required_sso_blocks_passwords_except_an_owners_break_glass_with_mfa(
    tab: Any, sso_server: Server, openid_provider: OpenIdProvider, smtp_sink: SmtpSink, backend: str
) -> None:
    clinic = sso_clinic(sso_server, openid_provider, "--require")
    member = address(clinic.domain, "member")
    onboard_with_password(sso_server, smtp_sink, clinic.clinic, member)
    owner = unique_email("owner")  # not in the SSO domain: the password form is used
    onboard_owner_with_password(sso_server, smtp_sink, clinic.id, owner)

    tab.goto("/login")
    tab.get_by_label("Email").fill(member)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    # A typed password is tried, and required single sign-on refuses it for a member.
    expect(tab.locator("#login-error")).to_contain_text("signs in with single sign-on")

    tab.get_by_label("Email").fill(owner)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    expect(tab).to_have_url(re.compile(r"/account/mfa/setup"))
    expect(tab.get_by_role("status")).to_contain_text("requires two-step verification")
    key = tab.locator("#mfa-key").inner_text()
    expect(tab.locator("figure.qr svg")).to_be_visible()
    screenshot(tab, backend, "mfa-setup")
    tab.get_by_label("Code from the app").fill(pyotp.TOTP(key).now())
    tab.get_by_role("button", name="Turn on two-step verification").click()
    expect(tab.locator("#recovery-codes li")).to_have_count(10)
    tab.get_by_role("link", name="I have saved them, continue").click()
    expect(tab.get_by_role("heading", level=1)).to_contain_text("Directory")


def test_a_clinic_connects_its_provider_and_requires_mfa_for_everyone_from_the_dashboard(
    tab: Any, sso_server: Server, openid_provider: OpenIdProvider, smtp_sink: SmtpSink, backend: str
) -> None:
    clinic = sso_server.create_clinic("Settings Clinic")
    owner = unique_email("owner")
    onboard_owner_with_password(sso_server, smtp_sink, clinic.id, owner)
    member = unique_email("member")
    onboard_with_password(sso_server, smtp_sink, clinic, member)

    tab.goto("/login")
    tab.get_by_label("Email").fill(owner)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    key = tab.locator("#mfa-key").inner_text()  # owners need MFA by default
    tab.get_by_label("Code from the app").fill(pyotp.TOTP(key).now())
    tab.get_by_role("button", name="Turn on two-step verification").click()
    tab.get_by_role("link", name="I have saved them, continue").click()

    tab.get_by_role("link", name="Sign-in").click()
    expect(tab.locator("#redirect-uri")).to_have_text(sso_server.base_url + "/auth/oidc/callback")
    domain = new_domain()
    tab.get_by_label("Issuer URL").fill("http://idp.hospital.example")
    tab.get_by_label("Client ID").fill(openid_provider.client_id)
    tab.get_by_label("Client secret").fill(openid_provider.client_secret)
    tab.get_by_label("Email domains").fill(domain)
    tab.get_by_role("button", name="Save single sign-on").click()
    expect(tab.get_by_role("alert")).to_contain_text("https")
    tab.get_by_label("Issuer URL").fill(openid_provider.issuer)
    tab.get_by_label("Client secret").fill(openid_provider.client_secret)
    tab.get_by_role("button", name="Save single sign-on").click()
    expect(tab.get_by_role("status")).to_contain_text("Single sign-on saved")
    assert sso_server.sql(f"SELECT domain FROM sso_domains WHERE clinic_id = '{clinic.id}'") == [
        (domain,)
    ]

    tab.get_by_label("Everyone").check()
    tab.get_by_role("button", name="Save sign-in rules").click()
    expect(tab.get_by_role("status")).to_contain_text("Sign-in rules saved")
    screenshot(tab, backend, "sign-in-settings")
    actions = {
        a
        for (a,) in sso_server.sql(f"SELECT action FROM audit_log WHERE clinic_id = '{clinic.id}'")
    }
    assert {"clinic.sso_configured", "clinic.sign_in_policy_updated", "account.mfa_enrolled"} <= (
        actions
    )

    # A member now has to set up MFA before the dashboard opens.
    tab.get_by_role("button", name="Log out").click()
    tab.get_by_label("Email").fill(member)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    expect(tab).to_have_url(re.compile(r"/account/mfa/setup"))
    tab.goto("/users")
    expect(tab).to_have_url(re.compile(r"/account/mfa/setup"))
