"""Running the clinic from the browser: invitations (resend, revoke), edit, revoke access and
reactivate, and the audit trail with its CSV download."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dashboard.browser_support import (
    PASSWORD,
    accept_over_http,
    link_in,
    login,
    login_over_http,
    onboard_owner,
    screenshot,
)
from playwright.sync_api import expect
from support import Server, SmtpSink, invite_body, on_one_database

pytestmark = on_one_database("sqlite")


def test_invitations_resend_and_revoke(
    page: Any, server: Server, smtp_sink: SmtpSink, backend: str
) -> None:
    clinic = server.create_clinic("Lakeside Imaging")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    kept, dropped = (
        invite_body(firstName="Kim", lastName="Kept"),
        invite_body(firstName="Dee", lastName="Dropped"),
    )
    for body in (kept, dropped):
        assert clinic.client.post("/v1/viewer/users", json=body).status_code == 201
    dropped_link = link_in(smtp_sink.wait_for(dropped["email"])[0], server, "/invitations/accept")
    first_link = link_in(smtp_sink.wait_for(kept["email"])[0], server, "/invitations/accept")

    login(page, owner.email)
    page.get_by_role("link", name="Invitations").click()
    expect(page.get_by_role("row", name=re.compile("Kim Kept"))).to_contain_text(
        "Delivered to mail server"
    )
    screenshot(page, backend, "invitations")

    page.get_by_role("link", name=f"Revoke the invitation to {dropped['email']}").click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, revoke the invitation").click()
    expect(page.get_by_role("status")).to_contain_text("Invitation revoked")
    invitee = page.context.browser.new_context().new_page()
    response = invitee.goto(dropped_link)
    assert response.status == 410
    expect(invitee.locator("main")).to_contain_text("This invitation was withdrawn")
    invitee.context.close()

    page.get_by_role("button", name=f"Resend the invitation to {kept['email']}").click()
    if page.get_by_role("status").count():
        new_link = link_in(
            smtp_sink.wait_for(kept["email"], count=2)[-1], server, "/invitations/accept"
        )
        assert new_link != first_link
        assert accept_over_http(new_link).status_code == 200
    else:  # the resend cooldown refused it: the page says why
        expect(page.get_by_role("heading", level=1)).to_be_visible()


def test_edit_revoke_reactivate_and_audit(
    page: Any, server: Server, smtp_sink: SmtpSink, backend: str
) -> None:
    clinic = server.create_clinic("Northside Imaging")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    body = invite_body(firstName="Max", lastName="Moreno", level="member")
    user_id = clinic.client.post("/v1/viewer/users", json=body).json()["userId"]
    assert (
        accept_over_http(
            link_in(smtp_sink.wait_for(body["email"])[0], server, "/invitations/accept")
        ).status_code
        == 200
    )
    member_session = login_over_http(server, body["email"])
    assert member_session.get("/users").status_code == 200

    login(page, owner.email)
    page.goto(f"/users/{user_id}")
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Phone number").fill("5551234567")
    page.get_by_label("Clinic role").select_option("Cardiologist")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("Changes saved")
    expect(page.locator(".facts")).to_contain_text("Cardiologist")

    page.get_by_role("link", name="Revoke access").click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, revoke access").click()
    expect(page.get_by_role("status")).to_contain_text("Access revoked")
    # Revocation ends the member's session at once.
    assert member_session.get("/users").status_code == 303
    page.get_by_role("button", name="Reactivate").click()
    expect(page.get_by_role("status")).to_contain_text("Access restored")
    login_over_http(server, body["email"], PASSWORD)

    page.get_by_role("link", name="Audit log", exact=True).click()
    entries = page.locator(".audit-entry")
    for sentence in (
        "Olivia Okafor changed the details of Max Moreno.",
        "Olivia Okafor revoked the access of Max Moreno.",
        "Max Moreno accepted their invitation.",
    ):
        expect(entries.filter(has_text=sentence)).to_have_count(1)
    expect(entries.filter(has_text="changed the details")).to_contain_text(
        "Clinic role: was Radiologist → now Cardiologist"
    )
    screenshot(page, backend, "audit")
    page.get_by_label("What happened").select_option(label="Access revoked")
    page.get_by_role("button", name="Apply").click()
    expect(entries).to_have_count(1)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("seq,createdAt,actorType,actorId,action")
    assert "user.access_revoked" in text and "user.updated" not in text
