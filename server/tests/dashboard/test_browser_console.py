"""What a clinic's owner meets in the admin console (issue 15): form errors in plain words,
confirmations before destructive actions, a readable audit log, API keys, directory and
invitations tools, bulk CSV, narrow screens and the keyboard."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from dashboard.browser_support import (
    accept_over_http,
    axe_checked,
    link_in,
    login,
    onboard_owner,
    screenshot,
)
from playwright.sync_api import expect
from support import Server, SmtpSink, invite_body, on_one_database, unique_email

pytestmark = on_one_database("sqlite")


def test_form_errors_speak_the_forms_words(
    page: Any, server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = server.create_clinic("Plain Words Imaging")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    login(page, owner.email)
    page.goto("/users/new")
    page.get_by_role("button", name="Send invitation").click()
    errors = {
        "firstName": "Enter the first name.",
        "lastName": "Enter the last name.",
        "email": "Enter the email address the invitation should go to.",
        "clinicRole": "Choose the person's clinic role from the list",
        "level": "Choose Member or Administrator.",
    }
    for name, text in errors.items():
        expect(page.locator(f"#f-{name}-error")).to_contain_text(text)
    shown = " ".join(page.locator(".error-text").all_inner_texts())
    for validator_text in ("Radiologist", "'admin' or 'member'", "surrounding spaces"):
        assert validator_text not in shown
    expect(page.get_by_role("alert")).to_contain_text("Please correct 5 fields")
    # The summary's links take the keyboard to the field.
    page.get_by_role("link", name=re.compile("^Level:")).click()
    expect(page.get_by_label("Level")).to_be_focused()

    page.get_by_label("Email").fill("someone@@clinic")
    page.get_by_label("Phone number").fill("+1 555 0100")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#f-email-error")).to_contain_text("not a valid email address")
    expect(page.locator("#f-phoneNumber-error")).to_contain_text("10 to 15 digits only")
    expect(page.locator("#f-phoneNumber-error")).to_contain_text("or leave it empty")


def test_destructive_actions_confirm_with_a_dialog_or_a_page(
    browser: Any, page: Any, server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = server.create_clinic("Careful Imaging")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    body = invite_body(firstName="Rita", lastName="Revoked", level="member")
    user_id = clinic.client.post("/v1/viewer/users", json=body).json()["userId"]
    login(page, owner.email)

    # With JavaScript: a dialog that says what will happen; Cancel changes nothing.
    page.goto(f"/users/{user_id}")
    page.get_by_role("link", name="Revoke access").click()
    dialog = page.get_by_role("dialog", name="Revoke Rita Revoked's access?")
    expect(dialog).to_contain_text("can no longer log in")
    expect(dialog.get_by_role("button", name="Yes, revoke access")).to_be_focused()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("h1 .badge")).to_have_text("Invited")
    page.reload()
    expect(page.locator("h1 .badge")).to_have_text("Invited")

    # API key: the dialog names the key by its description and its prefix.
    page.goto("/api-keys")
    page.get_by_label("What is it for?").fill("Scheduling sync")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-secret").input_value()
    page.get_by_role("link", name="Revoke the key Scheduling sync").click()
    dialog = page.get_by_role("dialog", name="Revoke the API key “Scheduling sync”?")
    expect(dialog).to_contain_text(secret[:16] + "…")
    expect(dialog).to_contain_text("cannot be undone")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert clinic.client.get("/v1/viewer/users").status_code == 200

    # The confirmation page itself (checked by axe here, where JavaScript runs).
    page.goto(f"/users/{user_id}/revoke")
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke Rita Revoked's access?")

    # Without JavaScript: the same link opens a confirmation page; only its POST revokes.
    with axe_checked(browser, base_url=server.base_url, java_script_enabled=False) as plain:
        login(plain, owner.email)
        plain.goto(f"/users/{user_id}")
        plain.get_by_role("link", name="Revoke access").click()
        expect(plain).to_have_url(re.compile(rf"/users/{user_id}/revoke$"))
        expect(plain.get_by_role("heading", level=1)).to_have_text(
            "Revoke Rita Revoked's access?"
        )
        expect(plain.locator("main")).to_contain_text("you can reactivate them later")
        plain.get_by_role("link", name="Cancel").click()
        expect(plain.locator("h1 .badge")).to_have_text("Invited")
        plain.get_by_role("link", name="Revoke access").click()
        plain.get_by_role("button", name="Yes, revoke access").click()
        expect(plain.get_by_role("status")).to_contain_text("Access revoked")
        expect(plain.locator("h1 .badge")).to_have_text("Revoked")

        plain.goto("/api-keys")
        plain.get_by_role("link", name="Revoke the key Scheduling sync").click()
        expect(plain.get_by_role("heading", level=1)).to_contain_text("Scheduling sync")
        plain.get_by_role("button", name="Yes, revoke the key").click()
        expect(plain.get_by_role("status")).to_contain_text("API key was revoked")
    revoked = httpx.get(
        server.base_url + "/v1/viewer/users", headers={"Authorization": f"Bearer {secret}"}
    )
    assert revoked.status_code == 401


def test_resend_too_soon_and_reactivating_someone_who_never_accepted(
    page: Any, server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = server.create_clinic("Patient Imaging")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    body = invite_body(firstName="Nia", lastName="Neverjoined", level="member")
    user_id = clinic.client.post("/v1/viewer/users", json=body).json()["userId"]
    smtp_sink.wait_for(body["email"])
    login(page, owner.email)

    page.goto("/invitations")
    page.get_by_role("button", name=f"Resend the invitation to {body['email']}").click()
    expect(page).to_have_url(re.compile(r"/invitations\?"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Invitations")
    expect(page.get_by_role("alert")).to_contain_text("sent only moments ago")
    expect(page.get_by_role("alert")).to_contain_text("you can resend it in about 1 minute")

    page.goto(f"/users/{user_id}")
    page.get_by_role("link", name="Revoke access").click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, revoke access").click()
    page.get_by_role("button", name="Reactivate").click()
    expect(page.get_by_role("status")).to_contain_text("they were sent a new invitation")
    expect(page.locator("h1 .badge")).to_have_text("Invited")
    assert len(smtp_sink.wait_for(body["email"], count=2)) == 2


def test_audit_log_reads_as_sentences(
    page: Any, server: Server, smtp_sink: SmtpSink, backend: str
) -> None:
    clinic = server.create_clinic("Readable Imaging")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    body = invite_body(firstName="Abe", lastName="Audited", level="member")
    user_id = clinic.client.post("/v1/viewer/users", json=body).json()["userId"]
    assert (
        clinic.client.patch(
            f"/v1/viewer/users/{user_id}", json={"canManageStudies": False, "level": "admin"}
        ).status_code
        == 200
    )
    login(page, owner.email)
    page.goto("/audit")
    entries = page.locator(".audit-entry")
    invited = entries.filter(has_text="invited Abe Audited")
    expect(invited).to_contain_text("The API key “tests” invited Abe Audited.")
    changed = entries.filter(has_text="changed the details of Abe Audited")
    expect(changed).to_contain_text("Level: was Member → now Administrator")
    expect(changed).to_contain_text("Can manage studies: was Yes → now No")
    expect(changed.get_by_role("link", name="Abe Audited")).to_have_attribute(
        "href", f"/users/{user_id}"
    )
    # When: the server's UTC time, shown in the reader's zone with the zone's name.
    when = changed.locator("time")
    assert re.match(r"\d{4}-\d\d-\d\dT", when.get_attribute("datetime") or "")
    expect(when).to_have_text(re.compile(r"\d{4}.*\d\d:\d\d.*(UTC|GMT)"))
    main = page.locator("main").inner_text()
    for raw in ('"before"', "api_key", "inv_", "user.invited"):
        assert raw not in main, main

    # Filters by person and by what happened, in words; clearing them.
    page.get_by_label("About").select_option(label="Abe Audited")
    page.get_by_label("What happened").select_option(label="Details changed")
    page.get_by_role("button", name="Apply").click()
    expect(entries).to_have_count(1)
    page.get_by_label("To").fill("2001-01-31")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("main")).to_contain_text("No entries match these filters.")
    page.get_by_role("link", name="Clear filters").first.click()
    expect(page).to_have_url(re.compile(r"/audit$"))
    assert entries.count() >= 3


def test_api_keys_show_last_use_prefix_and_copy_the_secret(
    page: Any, server: Server, smtp_sink: SmtpSink, backend: str
) -> None:
    clinic = server.create_clinic("Keyed Imaging")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    login(page, owner.email)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/api-keys")
    page.get_by_label("What is it for?").fill("PACS integration")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-secret").input_value()
    page.get_by_role("button", name="Copy").click()
    expect(page.locator(".copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    screenshot(page, backend, "api-keys")

    row = page.get_by_role("row", name=re.compile("PACS integration"))
    expect(row).to_contain_text(secret[:16] + "…")
    assert secret[16:] not in page.locator("table").inner_text()

    auth = {"Authorization": f"Bearer {secret}"}
    for _ in range(5):
        assert httpx.get(server.base_url + "/v1/viewer/users", headers=auth).status_code == 200
    # Recorded off the request's path: poll the database a bounded number of times.
    for _ in range(100):
        [(first,)] = server.sql(
            f"SELECT last_used_at FROM api_keys WHERE lookup = '{secret[4:16]}'"
        )
        if first is not None:
            break
        page.wait_for_timeout(100)
    assert first is not None
    page.goto("/api-keys")
    expect(row).not_to_contain_text("—")
    # Within the minute, more use is not written again.
    for _ in range(5):
        assert httpx.get(server.base_url + "/v1/viewer/users", headers=auth).status_code == 200
    page.goto("/api-keys")
    assert server.sql(f"SELECT last_used_at FROM api_keys WHERE lookup = '{secret[4:16]}'") == [
        (first,)
    ]


def test_members_do_not_see_colleagues_phones_or_logins(
    browser: Any, page: Any, server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = server.create_clinic("Private Imaging")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    colleague = invite_body(firstName="Pat", lastName="Phone", phoneNumber="5551234567")
    colleague_id = clinic.client.post("/v1/viewer/users", json=colleague).json()["userId"]
    member = invite_body(firstName="Mo", lastName="Member", phoneNumber="5559876543")
    clinic.client.post("/v1/viewer/users", json=member)
    assert accept_over_http(
        link_in(smtp_sink.wait_for(member["email"])[0], server, "/invitations/accept")
    ).status_code == 200

    login(page, member["email"])
    expect(page.get_by_role("columnheader", name="Last login")).to_have_count(0)
    page.goto(f"/users/{colleague_id}")
    expect(page.locator(".facts")).to_contain_text(colleague["email"])
    expect(page.locator(".facts")).not_to_contain_text("5551234567")
    expect(page.locator(".facts")).not_to_contain_text("Last login")
    page.goto("/profile")  # their own details they do see, from their account page
    page.get_by_role("link", name="Your directory entry").click()
    expect(page.locator(".facts")).to_contain_text("5559876543")

    with axe_checked(browser, base_url=server.base_url) as admin:
        login(admin, owner.email)
        admin.goto(f"/users/{colleague_id}")
        expect(admin.locator(".facts")).to_contain_text("5551234567")


def test_phone_width_shows_everything_and_the_keyboard_reaches_it(
    browser: Any, server: Server, smtp_sink: SmtpSink, backend: str
) -> None:
    clinic = server.create_clinic("Pocket Imaging")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    body = invite_body(firstName="Kai", lastName="Keyboard")
    clinic.client.post("/v1/viewer/users", json=body)
    with axe_checked(browser, width=390, height=844, base_url=server.base_url) as phone:
        login(phone, owner.email)
        for path in ("/users", "/invitations", "/api-keys", "/audit"):
            phone.goto(path)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
        phone.goto("/invitations")
        row = phone.get_by_role("row", name=re.compile("Kai Keyboard"))
        expect(row.locator(".badge").first).to_be_visible()
        expect(row.get_by_role("button", name=re.compile("Resend"))).to_be_visible()
        expect(row.get_by_role("link", name=re.compile("Revoke"))).to_be_visible()
        label = row.locator('td[data-label="Email delivery"]').evaluate(
            "e => getComputedStyle(e, '::before').content"
        )
        assert "Email delivery" in label
        screenshot(phone, backend, "invitations-phone")

        # Keyboard only: Tab to the revoke link, Enter opens the dialog, Enter confirms.
        phone.goto("/invitations")
        revoke = phone.get_by_role("link", name=f"Revoke the invitation to {body['email']}")
        for _ in range(60):
            phone.keyboard.press("Tab")
            if revoke.evaluate("e => e === document.activeElement"):
                break
        expect(revoke).to_be_focused()
        phone.keyboard.press("Enter")
        dialog = phone.get_by_role("dialog")
        expect(dialog.get_by_role("button", name="Yes, revoke the invitation")).to_be_focused()
        phone.keyboard.press("Enter")
        expect(phone.get_by_role("status")).to_contain_text("Invitation revoked")


def test_bulk_csv_template_semicolons_suggestions_and_count(
    page: Any, server: Server, smtp_sink: SmtpSink, tmp_path: Any
) -> None:
    clinic = server.create_clinic("Bulk Imaging")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    login(page, owner.email)
    page.goto("/users/bulk")
    with page.expect_download() as download:
        page.get_by_role("link", name="template file (CSV)").click()
    template = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert template[0].startswith("email,firstName,lastName,clinicRole,level")
    assert len(template) == 2

    first, second = unique_email("bulk"), unique_email("bulk")
    sheet = tmp_path / "people.csv"
    sheet.write_text(
        "Email;First name;Last name;Clinic role;Level\n"
        f"{first};Una;One;Radiologist;member\n"
        f"{second};Tom;Two;radiolgist;member\n",
        encoding="utf-8",
    )
    page.get_by_label("CSV file").set_input_files(str(sheet))
    page.get_by_role("button", name="Preview").click()
    problem = page.get_by_role("row", name=re.compile("Tom Two"))
    expect(problem).to_contain_text("Clinic role is not a clinic role; did you mean “Radiologist”?")

    sheet.write_text(sheet.read_text(encoding="utf-8").replace("radiolgist", "Radiologist"))
    page.get_by_role("link", name="Upload another file").click()
    page.get_by_label("CSV file").set_input_files(str(sheet))
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Send 2 invitations").click()
    expect(page.get_by_role("status")).to_have_text(
        "2 invitations sent. Each person gets an email now."
    )
    smtp_sink.wait_for(second)


def test_directory_sorts_searches_pages_exports_and_person_history(
    page: Any, server: Server, smtp_sink: SmtpSink, backend: str
) -> None:
    clinic = server.create_clinic("Sorted Imaging")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    for first, last in (("Zed", "Zimmer"), ("Amy", "Abbott"), ("Mia", "Moss")):
        body = invite_body(firstName=first, lastName=last, phoneNumber="5550001111")
        assert clinic.client.post("/v1/viewer/users", json=body).status_code == 201
    login(page, owner.email)
    expect(page.locator(".pagination")).to_contain_text("1–4 of 4")

    page.get_by_role("link", name="Name").click()
    names = page.locator("tbody th[scope=row]").all_inner_texts()
    assert names == sorted(names, key=lambda n: n.split()[-1]), names
    expect(page.get_by_role("columnheader", name=re.compile("Name"))).to_have_attribute(
        "aria-sort", "ascending"
    )
    page.get_by_role("link", name=re.compile("^Name")).click()
    assert page.locator("tbody th[scope=row]").first.inner_text() == "Zed Zimmer"

    page.get_by_label("Search", exact=True).fill("moss")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator(".pagination")).to_contain_text("1–1 of 1")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("firstName,middleName,lastName,suffix1,suffix2,email,phoneNumber")
    assert len(lines) == 2 and lines[1].startswith("Mia,,Moss,")

    page.get_by_label("Search", exact=True).fill("nobody-by-this-name")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("main")).to_contain_text("No one matches these filters.")
    page.get_by_role("link", name="Clear filters").last.click()
    expect(page.locator("tbody tr")).to_have_count(4)

    # A person's page: their invitation, its delivery, and their history in words.
    page.get_by_role("link", name="Mia Moss").click()
    invitation = page.get_by_role("region", name="Invitation")
    expect(invitation).to_contain_text("Sent")
    expect(invitation).to_contain_text(re.compile("Delivered to the mail server|Queued"))
    history = page.get_by_role("region", name="History")
    expect(history).to_contain_text("The API key “tests” invited Mia Moss.")
    screenshot(page, backend, "person")

    # Invitations: search and counts.
    page.goto("/invitations")
    expect(page.get_by_role("heading", level=1)).to_contain_text("4 invitations")
    page.get_by_label("Search", exact=True).fill("MOSS")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.get_by_role("heading", level=1)).to_contain_text("1 invitation match")
    expect(page.locator(".pagination")).to_contain_text("1–1 of 1")
