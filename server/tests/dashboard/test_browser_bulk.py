"""The directory's bulk actions: ticking people, confirming in a dialog or on a page, each
person through the same flow in their own transaction, and the audit trail it leaves."""

from __future__ import annotations

import re
from typing import Any

from dashboard.browser_support import (
    accept_over_http,
    axe_checked,
    csrf_of,
    link_in,
    login,
    login_over_http,
    onboard_owner,
)
from playwright.sync_api import expect
from support import Server, SmtpSink, invite_body, on_one_database

pytestmark = on_one_database("sqlite")


def test_bulk_revoke_confirms_refuses_the_owner_and_audits_each(
    browser: Any, page: Any, server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = server.create_clinic("Bulk Imaging")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    other_owner = onboard_owner(server, smtp_sink, clinic.id, first="Oscar", last="Owens")
    max_body = invite_body(firstName="Max", lastName="Moreno", level="member")
    ann_body = invite_body(firstName="Ann", lastName="Adams", level="member")
    kept_body = invite_body(firstName="Kim", lastName="Kept", level="member")
    ids = {}
    for body in (max_body, ann_body, kept_body):
        ids[body["firstName"]] = clinic.client.post("/v1/viewer/users", json=body).json()["userId"]
    link = link_in(smtp_sink.wait_for(max_body["email"])[0], server, "/invitations/accept")
    assert accept_over_http(link).status_code == 200

    # Members see no checkboxes, and cannot post a bulk action.
    member = login_over_http(server, max_body["email"])
    directory = member.get("/users")
    assert 'name="user"' not in directory.text and "Select all" not in directory.text
    refused = member.post(
        "/users/selected",
        data={"action": "revoke", "user": ids["Ann"], "csrf_token": csrf_of(directory)},
    )
    assert refused.status_code == 403
    assert server.sql(f"SELECT status FROM users WHERE id = '{ids['Ann']}'") == [("invited",)]

    login(page, owner.email)
    page.goto("/users")
    for name in ("Max Moreno", "Ann Adams", "Oscar Owens"):
        page.get_by_label(f"Select {name}").check()
    page.get_by_label("With the selected people").select_option(label="Revoke access")
    page.get_by_role("button", name="Review…").click()
    dialog = page.get_by_role("dialog", name="Revoke the access of 2 people?")
    expect(dialog).to_contain_text("can no longer log in")
    expect(dialog).to_contain_text("Max Moreno")
    expect(dialog).to_contain_text("Oscar Owens (the clinic's owner)")
    expect(dialog.get_by_role("button", name="Yes, revoke access")).to_be_focused()
    dialog.get_by_role("button", name="Yes, revoke access").click()
    expect(page.get_by_role("status")).to_have_text(
        "2 people's access revoked; 1 refused: Oscar Owens (the clinic's owner)."
    )
    for name, status in (("Max Moreno", "Revoked"), ("Ann Adams", "Revoked"),
                         ("Oscar Owens", "Active"), ("Kim Kept", "Invited")):
        expect(page.get_by_role("row", name=re.compile(name)).locator(".badge")).to_have_text(
            status
        )
    # Max's session ended with his access.
    assert member.get("/users").status_code == 303

    page.get_by_role("link", name="Audit log", exact=True).click()
    entries = page.locator(".audit-entry").filter(has_text="revoked the access of")
    expect(entries).to_have_count(2)
    for name in ("Max Moreno", "Ann Adams"):
        sentence = f"Olivia Okafor revoked the access of {name}."
        expect(entries.filter(has_text=sentence)).to_have_count(1)
    expect(page.locator(".audit-entry").filter(has_text="access of Oscar Owens")).to_have_count(0)
    assert server.sql(f"SELECT status FROM users WHERE id = '{other_owner.user_id}'") == [
        ("active",)
    ]

    # The confirmation page itself, checked by axe here where JavaScript runs.
    page.goto(f"/users/selected?action=revoke&user={ids['Kim']}&user={other_owner.user_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke the access of 1 person?")
    expect(page.locator("main")).to_contain_text("Oscar Owens (the clinic's owner)")

    # Without JavaScript: "select all on this page" works and the confirmation is a page.
    with axe_checked(browser, base_url=server.base_url, java_script_enabled=False) as plain:
        login(plain, owner.email)
        plain.goto("/users?q=Kim")
        plain.get_by_label("Select all on this page").check()
        plain.get_by_label("With the selected people").select_option(
            label="Resend invitation (those still invited)"
        )
        plain.get_by_role("button", name="Review…").click()
        expect(plain).to_have_url(re.compile(r"/users/selected\?"))
        expect(plain.get_by_role("heading", level=1)).to_have_text(
            "Resend the invitation to 1 person?"
        )
        plain.get_by_role("button", name="Yes, resend the invitations").click()
        status = plain.get_by_role("status")
        expect(status).to_have_text(
            re.compile(r"^(Invitation resent to 1 person|No invitation was resent; 1 refused: "
                       r"Kim Kept \(sent only moments ago; try again in a few minutes\))\.$")
        )
        resent = status.inner_text().startswith("Invitation resent")
    # Kim was invited moments ago: the resend cooldown (60 s) usually refuses her, as the
    # single resend would; when it has passed, she gets a second email.
    emails = 2 if resent else 1
    assert len(smtp_sink.wait_for(kept_body["email"], count=emails)) == emails
