"""The dashboard's webhook pages in the browser (add an endpoint to a loopback receiver, see its
secret once, send a test event and see it delivered, rotate, disable and delete, each with
axe-core finding nothing), and the email the clinic's admins get when an endpoint answering
410 is disabled."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import axe_playwright_python
import pytest
from dashboard.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    accept_over_http,
    csrf_of,
    link_in,
    login,
    login_over_http,
    onboard_owner,
)
from playwright.sync_api import expect
from support import Clinic, Server, SmtpSink, invite_body, on_one_database
from webhooks.receiver import Receiver, subscribe, wait_until

pytestmark = on_one_database("postgresql")

AXE_SOURCE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
# Runs axe-core on each page once loaded and hands the violations to the test through a
# binding, so the dashboard's Content-Security-Policy stays as in production.
AXE_ON_LOAD = """
window.addEventListener('load', () => {
  if (window.top !== window) return;
  axe.run(document).then(r => window.__axeReport(location.pathname,
    r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))));
});
"""


# Per module (see dashboard/conftest.py: sync Playwright owns the main thread's loop).
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _checked_tab(browser: Any, server: Server) -> tuple[Any, dict[str, list[str]]]:
    """A tab in whose pages axe-core runs on load; the reports land in the returned dict."""
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    reports: dict[str, list[str]] = {}
    context.expose_binding(
        "__axeReport", lambda _source, path, found: reports.setdefault(path, []).extend(found)
    )
    context.add_init_script(AXE_SOURCE)
    context.add_init_script(AXE_ON_LOAD)
    return context.new_page(), reports


def _reload_until(tab: Any, locator: Any, text: str) -> None:
    """Reload until the locator shows the text (deliveries happen after the page loaded)."""

    def shown() -> bool:
        tab.reload()
        return text in locator.inner_text()

    wait_until(shown, what=f"{text!r} on {tab.url}")


def test_endpoint_lifecycle_in_the_dashboard(
    browser: Any, hooks_server: Server, smtp_sink: SmtpSink, receiver: Receiver
) -> None:
    clinic = hooks_server.create_clinic("Harbour Imaging")
    owner = onboard_owner(hooks_server, smtp_sink, clinic.id)
    tab, reports = _checked_tab(browser, hooks_server)
    login(tab, owner.email)

    tab.get_by_role("link", name="Webhooks").click()
    expect(tab.get_by_role("heading", level=1)).to_have_text("Webhooks")
    # A refused address names the field, and nothing is created.
    tab.get_by_label("URL").fill("ftp://example.org/hooks")
    tab.get_by_role("button", name="Add endpoint").click()
    expect(tab.get_by_role("alert")).to_contain_text("URL")
    expect(tab.get_by_role("cell", name="No endpoints yet.")).to_be_visible()

    tab.get_by_label("URL").fill(receiver.url)
    tab.get_by_label("Description").fill("PACS bridge")
    tab.get_by_role("checkbox", name="user.invited").uncheck()
    tab.get_by_role("button", name="Add endpoint").click()
    secret = tab.get_by_label(re.compile("Signing secret for")).input_value()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]{32,}", secret), secret
    receiver.secrets = [secret]
    row = tab.locator("tbody tr", has_text=receiver.url)
    expect(row).to_contain_text("PACS bridge")
    expect(row).to_contain_text("Enabled")
    expect(row).not_to_contain_text("user.invited,")
    # Shown once: the list page no longer carries it.
    tab.goto("/webhooks")
    assert secret not in tab.content()

    tab.get_by_role("link", name=receiver.url).click()
    tab.get_by_role("button", name="Send a test event").click()
    expect(tab.get_by_role("status")).to_contain_text("test event was queued")
    receiver.wait_for_types("webhook.test")
    deliveries = tab.get_by_role("table")
    _reload_until(tab, deliveries, "Succeeded")
    expect(deliveries).to_contain_text("200")

    # Rotate, confirmed: a new secret, shown once; deliveries verify with it.
    tab.get_by_role("link", name="Rotate secret").click()
    tab.get_by_role("button", name="Rotate secret").click()
    rotated = tab.get_by_label(re.compile("Signing secret for")).input_value()
    assert rotated.startswith("whsec_") and rotated != secret
    receiver.secrets = [rotated]
    tab.get_by_role("button", name="Retry the delivery of webhook.test").click()
    expect(tab.get_by_role("status")).to_contain_text("queued to be sent again")
    receiver.wait_for_types("webhook.test", "webhook.test")

    tab.get_by_role("link", name="Disable").click()
    tab.get_by_role("link", name="Cancel").click()
    expect(tab.get_by_role("button", name="Send a test event")).to_be_visible()
    tab.get_by_role("link", name="Disable").click()
    tab.get_by_role("button", name="Disable endpoint").click()
    expect(tab.locator(".facts")).to_contain_text("Disabled in the dashboard.")
    expect(tab.get_by_role("button", name="Send a test event")).to_have_count(0)

    tab.get_by_role("link", name="Delete").click()
    tab.get_by_role("button", name="Delete endpoint").click()
    expect(tab.get_by_role("status")).to_contain_text("The endpoint was deleted")
    expect(tab.get_by_role("cell", name="No endpoints yet.")).to_be_visible()
    assert clinic.client.get("/v1/viewer/webhook-endpoints").json()["endpoints"] == []

    # Every change is in the audit trail with the owner as actor.
    audit = tab.request.get("/audit.csv")
    assert audit.status == 200
    rows = [r for r in csv.DictReader(io.StringIO(audit.text())) if "webhook" in str(r)]
    actions = {row.get("action") or row.get("event") for row in rows}
    for action in (
        "webhook_endpoint.created",
        "webhook_endpoint.secret_rotated",
        "webhook_delivery.retried",
        "webhook_endpoint.updated",
        "webhook_endpoint.deleted",
    ):
        assert action in actions, (action, rows)
    assert all(owner.user_id in str(row) for row in rows), rows

    wait_until(lambda: len(reports) >= 4, what="axe reports")
    tab.context.close()
    assert all(not found for found in reports.values()), reports


def test_endpoint_answering_410_is_disabled_and_admins_are_told(
    hooks_server: Server, smtp_sink: SmtpSink, hooks_clinic: Clinic, receiver: Receiver
) -> None:
    owner = onboard_owner(hooks_server, smtp_sink, hooks_clinic.id)
    receiver.answer = lambda received, n: (410, {}, 0.0)
    url = receiver.url + "?team=a&b=<c>"
    endpoint = subscribe(hooks_clinic, receiver, url=url)
    path = f"/v1/viewer/webhook-endpoints/{endpoint['endpointId']}"
    assert hooks_clinic.client.post(f"{path}/test").status_code == 200

    def disabled() -> dict[str, Any] | None:
        got: dict[str, Any] = hooks_clinic.client.get(path).json()
        return None if got["enabled"] else got

    found = wait_until(disabled, what="the endpoint disabled")
    assert found["disabledReason"] == "The endpoint answered 410 Gone."
    # The first is the owner's invitation.
    mail = smtp_sink.wait_for(owner.email, count=2)[-1]
    assert "webhook endpoint of Webhook Clinic was disabled" in mail.message["subject"]
    text, html = mail.part("plain"), mail.part("html")
    for body in (text, html):
        assert "The endpoint answered 410 Gone." in body
        assert f"/webhooks/{endpoint['endpointId']}" in body
    assert url in text
    assert "?team=a&amp;b=&lt;c&gt;" in html and "<c>" not in html


def test_pages_refuse_members_other_clinics_and_forged_forms(
    hooks_server: Server, smtp_sink: SmtpSink, hooks_clinic: Clinic, receiver: Receiver
) -> None:
    endpoint = subscribe(hooks_clinic, receiver)
    page_path = f"/webhooks/{endpoint['endpointId']}"
    body = invite_body(level="member")
    assert hooks_clinic.client.post("/v1/viewer/users", json=body).status_code == 201
    link = link_in(smtp_sink.wait_for(body["email"])[0], hooks_server, "/invitations/accept")
    assert accept_over_http(link).status_code == 200
    member = login_over_http(hooks_server, body["email"])
    assert member.get("/webhooks").status_code == 403
    assert member.get(page_path).status_code == 403
    member.close()

    other = hooks_server.create_clinic("Elsewhere Imaging")
    stranger = onboard_owner(hooks_server, smtp_sink, other.id)
    session = login_over_http(hooks_server, stranger.email)
    try:
        listing = session.get("/webhooks")
        assert listing.status_code == 200 and receiver.url not in listing.text
        assert session.get(page_path).status_code == 404
        token = csrf_of(listing)
        for action in ("delete", "disable", "rotate", "test"):
            answer = session.post(f"{page_path}/{action}", data={"csrf_token": token})
            assert answer.status_code == 404, (action, answer.text[:300])
        # Without the CSRF token the owner's own form is refused too.
        mine = session.post("/webhooks", data={"url": receiver.url, "eventTypes": "user.invited"})
        assert mine.status_code == 403
    finally:
        session.close()
    got = hooks_clinic.client.get(f"/v1/viewer/webhook-endpoints/{endpoint['endpointId']}")
    assert got.json()["enabled"] is True
