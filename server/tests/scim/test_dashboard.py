"""What SCIM does as people see it in the dashboard: a provisioned person accepts the emailed
invitation and logs in; deactivating them over SCIM ends their session at once; the audit
page names the SCIM token as the actor."""

from __future__ import annotations

from dashboard.browser_support import accept_over_http, link_in, login_over_http, onboard_owner
from scim.scim_support import VIEWER, scim_clinic
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
    assert f"SCIM token <code>{place.token_id}</code>" in page.text
