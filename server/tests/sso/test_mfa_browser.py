"""Two-step verification and inactivity in a real browser (Debian's chromium): enrolment with
the key shown as text beside the QR code, sign-in with codes computed here as an authenticator
app would, a replayed code refused, a recovery code accepted once, an owner resetting another
person's MFA, and the inactivity warning before a short idle timeout ends the session."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pyotp
from dashboard.browser_support import PASSWORD
from playwright.sync_api import expect
from sso.sso_support import (
    Authenticator,
    enrol_over_http,
    onboard_owner_with_password,
    onboard_with_password,
    password_login,
)
from support import Server, SmtpSink, on_one_database, unique_email

pytestmark = on_one_database("postgresql")


def password_step(tab: Any, email: str) -> None:
    tab.context.clear_cookies()
    tab.goto("/login")
    tab.get_by_label("Email").fill(email)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()


def code_step(tab: Any, code: str) -> None:
    expect(tab).to_have_url(re.compile(r"/login/mfa"))
    tab.get_by_label("Code").fill(code)
    tab.get_by_role("button", name="Verify").click()


def test_totp_enrolment_sign_in_replay_and_recovery_codes(
    tab: Any, sso_server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = sso_server.create_clinic("MFA Clinic")
    owner = unique_email("owner")
    owner_id = onboard_owner_with_password(sso_server, smtp_sink, clinic.id, owner)

    password_step(tab, owner)
    expect(tab).to_have_url(re.compile(r"/account/mfa/setup"))
    tab.goto("/users")  # nothing else opens before MFA is set up
    expect(tab).to_have_url(re.compile(r"/account/mfa/setup"))
    key = tab.locator("#mfa-key").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{32}", key)
    assert "otpauth://totp/" not in tab.content()  # the URI is in the QR code, not in the page
    app = Authenticator(key)
    stale = pyotp.TOTP(key).generate_otp(int(time.time()) // 30 - 10)  # outside the window
    tab.get_by_label("Code from the app").fill(stale)
    tab.get_by_role("button", name="Turn on two-step verification").click()
    expect(tab.locator("#mfa-error")).to_contain_text("not right")
    tab.get_by_label("Code from the app").fill(app.code())
    tab.get_by_role("button", name="Turn on two-step verification").click()
    expect(tab.locator("#recovery-codes li")).to_have_count(10)
    codes = [c.strip() for c in tab.locator("#recovery-codes li").all_inner_texts()]
    assert len(codes) == 10 and len(set(codes)) == 10
    tab.get_by_role("link", name="I have saved them, continue").click()
    expect(tab.get_by_role("heading", level=1)).to_contain_text("Directory")
    stored = sso_server.sql(f"SELECT secret_sealed FROM mfa_totp WHERE user_id = '{owner_id}'")
    assert stored and key not in stored[0][0]
    hashes = [
        h
        for (h,) in sso_server.sql(
            f"SELECT code_hash FROM mfa_recovery_codes WHERE user_id = '{owner_id}'"
        )
    ]
    assert len(hashes) == 10 and not set(codes) & set(hashes)

    # Next sign-in: password, then the app's code.
    tab.get_by_role("button", name="Log out").click()
    password_step(tab, owner)
    code = app.code()
    code_step(tab, code)
    expect(tab.get_by_role("heading", level=1)).to_contain_text("Directory")

    # The same code again (seen over a shoulder): refused.
    password_step(tab, owner)
    code_step(tab, code)
    expect(tab.locator("#mfa-error")).to_contain_text("already used")

    # A recovery code works once.
    code_step(tab, codes[0].upper())
    expect(tab.get_by_role("heading", level=1)).to_contain_text("Directory")
    tab.goto("/profile")
    expect(tab.locator("#mfa-status")).to_contain_text("9 recovery codes left")
    password_step(tab, owner)
    code_step(tab, codes[0])
    expect(tab.locator("#mfa-error")).to_contain_text("not right")
    actions = [
        a
        for (a,) in sso_server.sql(
            f"SELECT action FROM audit_log WHERE target_id = '{owner_id}' ORDER BY seq"
        )
    ]
    assert "account.mfa_enrolled" in actions and "account.mfa_recovery_code_used" in actions


def test_an_owner_resets_another_persons_mfa_and_their_sessions_end(
    sso_server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = sso_server.create_clinic("Reset MFA Clinic")
    owner = unique_email("owner")
    onboard_owner_with_password(sso_server, smtp_sink, clinic.id, owner)
    admin = unique_email("admin")
    admin_id = onboard_with_password(
        sso_server, smtp_sink, clinic, admin, level="admin", hasDashboardAccess=True
    )
    owner_client, _ = password_login(sso_server, owner)
    enrol_over_http(owner_client)
    admin_client, _ = password_login(sso_server, admin)
    enrol_over_http(admin_client)
    assert admin_client.get("/users").status_code == 200

    # An admin may not; the owner may (and not for themselves).
    token = admin_client.get(f"/users/{admin_id}")
    forbidden = admin_client.post(f"/users/{admin_id}/mfa/reset", data={"csrf_token": _csrf(token)})
    assert forbidden.status_code == 403
    page = owner_client.get(f"/users/{admin_id}")
    assert "Reset two-step verification" in page.text
    reset = owner_client.post(f"/users/{admin_id}/mfa/reset", data={"csrf_token": _csrf(page)})
    assert reset.status_code == 303
    redirected = admin_client.get("/users")
    assert redirected.status_code == 303 and redirected.headers["location"].startswith("/login")
    assert sso_server.sql(f"SELECT count(*) FROM mfa_totp WHERE user_id = '{admin_id}'") == [(0,)]
    assert sso_server.sql(
        f"SELECT count(*) FROM audit_log WHERE action = 'account.mfa_reset' "
        f"AND target_id = '{admin_id}'"
    ) == [(1,)]
    again, response = password_login(sso_server, admin)
    assert response.headers["location"].startswith("/account/mfa/setup")
    again.close()


def _csrf(response: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert match
    return match.group(1)


def test_the_inactivity_warning_keeps_the_page_and_idle_sessions_end(
    browser: Any, private_server: Callable[..., Server], smtp_sink: SmtpSink
) -> None:
    server = private_server(session_idle_timeout="4s")
    clinic = server.create_clinic("Idle Clinic")
    member = unique_email("member")
    onboard_with_password(server, smtp_sink, clinic, member)
    context = browser.new_context(base_url=server.base_url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    try:
        password_step(tab, member)
        expect(tab).to_have_url(re.compile(r"/users$"))
        tab.locator("#q").fill("typed but not sent")
        warning = tab.locator("#idle-warning")
        expect(warning).to_be_visible(timeout=20_000)
        tab.get_by_role("button", name="Stay signed in").click()
        expect(warning).to_be_hidden()
        expect(tab.locator("#q")).to_have_value("typed but not sent")
        cookie = next(c["value"] for c in context.cookies() if c["name"] == "avv_session")

        # No more activity: the page gives way to the login page, and the session is over.
        expect(tab).to_have_url(re.compile(r"/login\?notice=idle"), timeout=20_000)
        expect(tab.get_by_role("status")).to_contain_text("not used for a while")
        with httpx.Client(base_url=server.base_url, cookies={"avv_session": cookie}) as copy:
            response = copy.get("/users")
            assert response.status_code == 303
            assert response.headers["location"].startswith("/login")
    finally:
        context.close()
