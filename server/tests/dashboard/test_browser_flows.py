"""The dashboard in a real browser (Debian's chromium): from the owner's invitation email to
running the clinic, and the invitee's side of every link."""

from __future__ import annotations

import re
from typing import Any

from dashboard.browser_support import (
    PASSWORD,
    link_in,
    login,
    onboard_owner,
    screenshot,
)
from playwright.sync_api import expect
from support import Server, SmtpSink, invite_body, on_one_database, unique_email

pytestmark = on_one_database("sqlite")


def test_owner_from_email_to_inviting_a_colleague_who_accepts(
    page: Any, server: Server, smtp_sink: SmtpSink, backend: str
) -> None:
    clinic = server.create_clinic("St Mary Imaging")
    owner_email = unique_email("owner")
    server.cli(
        "owners",
        "invite",
        "--clinic",
        clinic.id,
        "--email",
        owner_email,
        "--first-name",
        "Olivia",
        "--last-name",
        "Okafor",
    )
    page.goto(link_in(smtp_sink.wait_for(owner_email)[0], server, "/invitations/accept"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Join St Mary Imaging on Avara Viewer"
    )
    expect(page.locator(".facts")).to_contain_text("your clinic's administrator")
    expect(page.locator(".facts")).to_contain_text("Owner")
    screenshot(page, backend, "accept-invitation")

    # A password with the person's name is refused, next to the field.
    page.locator("#f-password").fill("olivia-okafor-2024!")
    page.get_by_label("Confirm password").fill("olivia-okafor-2024!")
    page.get_by_role("button", name="Accept invitation").click()
    expect(page.locator("#f-password-error")).to_contain_text("name")
    page.locator("#f-password").fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Accept invitation").click()
    expect(page.get_by_role("status")).to_contain_text("Your invitation is accepted")
    # The password just chosen proves who they are: they are signed in at once.
    page.get_by_role("link", name="Continue to the dashboard").click()
    expect(page).to_have_url(re.compile(r"/users$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Directory")
    page.get_by_role("button", name="Log out").click()

    page.goto("/login")
    screenshot(page, backend, "login")
    login(page, owner_email)
    expect(page).to_have_url(re.compile(r"/users$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Directory")
    assert server.sql(
        f"SELECT status, last_login_at IS NOT NULL FROM users WHERE email = '{owner_email}'"
    ) == [("active", 1 if backend == "sqlite" else True)]

    # Invite a colleague: first with mistakes, shown next to the fields in the form's words.
    page.get_by_role("link", name="Invite a person").click()
    page.get_by_label("First name").fill("Sam")
    page.get_by_label("Email").fill("not-an-address")
    page.get_by_label("Phone number").fill("12-34")
    page.get_by_label("Level").select_option("admin")
    page.get_by_label("Can use the management dashboard").uncheck()
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#f-email-error")).to_contain_text("not a valid email address")
    expect(page.locator("#f-lastName-error")).to_be_visible()
    expect(page.locator("#f-phoneNumber-error")).to_contain_text("10 to 15 digits")
    expect(page.locator("#f-clinicRole-error")).to_be_visible()
    expect(page.locator("#f-hasDashboardAccess-error")).to_contain_text(
        "Administrators work in the dashboard"
    )
    screenshot(page, backend, "invite-form-errors")

    colleague = unique_email("colleague")
    page.get_by_label("Last name").fill("Rivera")
    page.get_by_label("Email").fill(colleague)
    page.get_by_label("Phone number").fill("")
    page.get_by_label("Clinic role").select_option("Radiologist")
    page.get_by_label("Level").select_option("member")
    page.get_by_label("Can use the management dashboard").check()
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text("Invitation sent")
    expect(page.locator(".facts")).to_contain_text("Dashboard by Olivia Okafor")

    mail = smtp_sink.wait_for(colleague)[0]
    assert "Olivia Okafor" in mail.part("plain")
    assert server.sql(
        f"SELECT invited_source, inviter_id IS NOT NULL FROM users WHERE email = '{colleague}'"
    ) == [("dashboard", 1 if backend == "sqlite" else True)]

    page.goto("/users")
    expect(page.get_by_role("row", name=re.compile("Sam Rivera"))).to_contain_text("Invited")
    screenshot(page, backend, "directory")
    page.goto("/api-keys")
    page.get_by_label("What is it for?").fill("PACS integration")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-secret").input_value()
    assert secret.startswith("avk_")
    page.goto("/api-keys")
    assert secret not in page.content()  # shown once only

    # The colleague accepts in their own browser session.
    colleague_page = page.context.browser.new_context(base_url=server.base_url).new_page()
    colleague_page.goto(link_in(mail, server, "/invitations/accept"))
    expect(colleague_page.locator(".facts")).to_contain_text("Olivia Okafor")
    expect(colleague_page.locator(".facts")).to_contain_text("Radiologist")
    colleague_page.locator("#f-password").fill(PASSWORD)
    colleague_page.get_by_label("Confirm password").fill(PASSWORD)
    colleague_page.get_by_role("button", name="Accept invitation").click()
    expect(colleague_page.get_by_role("status")).to_contain_text("accepted")
    colleague_page.get_by_role("link", name="Continue to the dashboard").click()
    expect(colleague_page.get_by_role("heading", level=1)).to_contain_text("Directory")
    colleague_page.context.close()
    assert server.sql(f"SELECT status FROM users WHERE email = '{colleague}'") == [("active",)]
    assert server.sql(
        "SELECT i.status FROM invitations i JOIN users u ON u.id = i.user_id "
        f"WHERE u.email = '{colleague}'"
    ) == [("accepted",)]


def test_decline(page: Any, server: Server, smtp_sink: SmtpSink, clinic: Any) -> None:
    body = invite_body()
    assert clinic.client.post("/v1/viewer/users", json=body).status_code == 201
    page.goto(link_in(smtp_sink.wait_for(body["email"])[0], server, "/invitations/accept"))
    page.get_by_role("button", name="Decline invitation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Invitation declined")
    assert server.sql(
        "SELECT i.status FROM invitations i JOIN users u ON u.id = i.user_id "
        f"WHERE u.email = '{body['email']}'"
    ) == [("rejected",)]
    page.go_back()
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("This invitation was declined")


def test_forged_and_used_links(page: Any, server: Server, smtp_sink: SmtpSink, clinic: Any) -> None:
    response = page.goto("/invitations/accept?token=" + "ab" * 32)
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("This link is not valid")
    expect(page.locator("main")).to_contain_text("your clinic's administrator")
    assert response.headers["referrer-policy"] == "no-referrer"

    body = invite_body(hasDashboardAccess=False)
    clinic.client.post("/v1/viewer/users", json=body)
    link = link_in(smtp_sink.wait_for(body["email"])[0], server, "/invitations/accept")
    page.goto(link)
    expect(page.locator("#f-password")).to_have_count(0)  # no dashboard: no password
    page.get_by_role("button", name="Accept invitation").click()
    expect(page.locator("main")).to_contain_text("does not include the management dashboard")
    response = page.goto(link)
    assert response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "This invitation was already accepted"
    )


def test_expired_link(browser: Any, backend: str, smtp_sink: SmtpSink, fresh_server: Any) -> None:
    srv = fresh_server(smtp_sink.url, invitation_ttl="1s")
    srv.start()
    clinic = srv.create_clinic("Harbor Radiology")
    email = unique_email("late")
    srv.cli(
        "owners",
        "invite",
        "--clinic",
        clinic.id,
        "--email",
        email,
        "--first-name",
        "Lee",
        "--last-name",
        "Late",
    )
    link = link_in(smtp_sink.wait_for(email)[0], srv, "/invitations/accept")
    context = browser.new_context()
    tab = context.new_page()
    tab.wait_for_timeout(1200)
    response = tab.goto(link)
    assert response.status == 410
    expect(tab.get_by_role("heading", level=1)).to_have_text("This invitation has expired")
    expect(tab.locator("main")).to_contain_text("your clinic's administrator at Harbor Radiology")
    screenshot(tab, backend, "expired-link")
    context.close()


def test_member_sees_read_only_directory_and_no_admin_pages(
    page: Any, server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = server.create_clinic("Member Clinic")
    body = invite_body(level="member", hasDashboardAccess=True)
    clinic.client.post("/v1/viewer/users", json=body)
    page.goto(link_in(smtp_sink.wait_for(body["email"])[0], server, "/invitations/accept"))
    page.locator("#f-password").fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Accept invitation").click()
    page.get_by_role("link", name="Continue to the dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Directory")
    expect(page.get_by_role("link", name="Invite a person")).to_have_count(0)
    expect(page.get_by_role("link", name="API keys")).to_have_count(0)
    for path in ("/users/new", "/users/bulk", "/api-keys"):
        response = page.goto(path)
        assert response.status == 403, path
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "You do not have access to this page"
        )
    page.goto("/profile")
    expect(page.locator(".facts")).to_contain_text(body["email"])


def test_script_in_a_name_is_shown_as_text(page: Any, server: Server, smtp_sink: SmtpSink) -> None:
    clinic = server.create_clinic("Escaping Clinic")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    evil = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
    body = invite_body(firstName=evil, lastName="Tables")
    assert clinic.client.post("/v1/viewer/users", json=body).status_code == 201
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(link_in(smtp_sink.wait_for(body["email"])[0], server, "/invitations/accept"))
    expect(page.locator(".facts")).to_contain_text("<script>window.pwned=1</script>")
    login(page, owner.email)
    page.goto("/users")
    expect(page.get_by_role("row", name=re.compile("Tables"))).to_contain_text("<script>")
    assert page.evaluate("window.pwned") is None
    assert dialogs == []
