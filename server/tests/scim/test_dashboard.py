"""What SCIM does as people see it in the dashboard: a provisioned person accepts the emailed
invitation and logs in; deactivating them over SCIM ends their session at once; the audit
page names the SCIM token as the actor; admins make and revoke tokens and change the
provisioning settings on the SCIM page."""

from __future__ import annotations

import re
import time

from dashboard.browser_support import (
    accept_over_http,
    csrf_of,
    link_in,
    login_over_http,
    onboard_owner,
)
from scim.scim_support import VIEWER, audit_rows, scim_client, scim_clinic
from support import Server, SmtpSink


def test_deactivation_over_scim_ends_the_dashboard_session(
    server: Server, smtp_sink: SmtpSink
) -> None:
    place = scim_clinic(server, "Session Clinic")
    user = place.create(**{VIEWER: {"hasDashboardAccess": True}})
    address = user["emails"][0]["value"]
    link = link_in(smtp_sink.wait_for(address)[0], server, "/invitations/accept")
    assert accept_over_http(link).status_code == 200
    assert place.client.get(f"/Users/{user['id']}").json()[VIEWER]["status"] == "active"
    browser = login_over_http(server, address)
    assert browser.get("/users").status_code == 200
    off = place.patch(user["id"], {"op": "Replace", "path": "active", "value": "False"})
    assert off.status_code == 200
    after = browser.get("/users")
    assert after.status_code in (302, 303) and "/login" in after.headers["location"]
    # Reactivated, they joined before: active at once, no new invitation.
    on = place.patch(user["id"], {"op": "Replace", "path": "active", "value": "True"})
    assert on.json()[VIEWER]["status"] == "active"
    assert len(smtp_sink.to(address)) == 1


def test_the_audit_page_names_the_scim_token(server: Server, smtp_sink: SmtpSink) -> None:
    place = scim_clinic(server, "Audit Page Clinic")
    owner = onboard_owner(server, smtp_sink, place.id)
    place.create()
    page = login_over_http(server, owner.email).get("/audit")
    assert page.status_code == 200
    assert f"The identity provider (SCIM token {place.token_id})" in page.text


def test_admins_manage_tokens_and_settings_in_the_dashboard(
    server: Server, smtp_sink: SmtpSink
) -> None:
    place = scim_clinic(server, "Dashboard SCIM Clinic")
    other = scim_clinic(server, "Other Dashboard Clinic")
    owner = onboard_owner(server, smtp_sink, place.id)
    browser = login_over_http(server, owner.email)
    shown = browser.get("/scim")
    assert shown.status_code == 200 and "http://viewer.test/scim/v2" in shown.text
    assert "tests" in shown.text  # the token made by the CLI is listed, never its secret
    assert place.token not in shown.text
    made = browser.post("/scim/tokens", data={"description": "Okta", "csrf_token": csrf_of(shown)})
    assert made.status_code == 201
    [token] = re.findall(r"scim_[A-Za-z0-9_-]{43}", made.text)
    client = scim_client(server, token)
    assert client.get("/Users").status_code == 200
    listed = browser.get("/scim")
    assert token not in listed.text and "Okta" in listed.text
    blank = browser.post("/scim/tokens", data={"description": " ", "csrf_token": csrf_of(listed)})
    assert blank.status_code == 422
    # Another clinic's token is not this admin's to revoke.
    foreign = browser.post(
        f"/scim/tokens/{other.token_id}/revoke", data={"csrf_token": csrf_of(listed)}
    )
    assert foreign.status_code == 404
    assert other.client.get("/Users").status_code == 200
    [okta_id] = [
        line.split("\t")[0]
        for line in server.cli("scim-tokens", "list", "--clinic", place.id).stdout.splitlines()
        if line.endswith("\tOkta")
    ]
    revoked = browser.post(f"/scim/tokens/{okta_id}/revoke", data={"csrf_token": csrf_of(listed)})
    assert revoked.status_code == 303
    deadline = time.monotonic() + 10
    while client.get("/Users").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.get("/Users").status_code == 401
    # Settings: refused with the field named, then saved and used.
    form = {"csrf_token": csrf_of(browser.get("/scim")), "default_clinic_role": "Surgeon"}
    bad = browser.post("/scim/settings", data={**form, "default_level": "admin"})
    assert bad.status_code == 422 and "admins must have dashboard access" in bad.text
    good = browser.post(
        "/scim/settings",
        data={**form, "default_level": "member", "activate_without_email": "on"},
    )
    assert good.status_code == 303
    user = place.create(**{VIEWER: None})
    assert user[VIEWER]["status"] == "active" and user[VIEWER]["clinicRole"] == "Surgeon"
    actions = {row[2] for row in audit_rows(server, place.id) if row[0] == "user"}
    assert {"scim_token.created", "scim_token.revoked", "scim.settings_updated"} <= actions


def test_members_cannot_open_the_scim_page(server: Server, smtp_sink: SmtpSink) -> None:
    place = scim_clinic(server, "Member SCIM Clinic")
    user = place.create(**{VIEWER: {"hasDashboardAccess": True}})
    address = user["emails"][0]["value"]
    link = link_in(smtp_sink.wait_for(address)[0], server, "/invitations/accept")
    assert accept_over_http(link).status_code == 200
    assert login_over_http(server, address).get("/scim").status_code == 403
