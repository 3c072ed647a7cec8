"""Helpers of the dashboard tests: chromium settings, screenshots, and onboarding a clinic's
people through the same emails and pages a person uses."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import axe_playwright_python
import httpx
from support import Server, SmtpSink, unique_email

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
PASSWORD = "a long and private passphrase"
AXE_SOURCE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
# Runs axe-core once each page has loaded and hands the violations to the test (through a
# binding, so the dashboard's Content-Security-Policy stays as it is in production).
AXE_ON_LOAD = """
window.addEventListener('load', () => {
  if (window.top !== window) return;
  axe.run(document).then(r => window.__axeReport(location.pathname + location.search,
    r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))));
});
"""
# The same check on demand; axe refuses to run twice at once, so wait out the on-load run.
AXE_NOW = """
async () => {
  for (;;) {
    try {
      const r = await axe.run(document);
      window.__axeReport(location.pathname + location.search,
        r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')));
      return;
    } catch (e) {
      if (!String(e).includes('already running')) throw e;
      await new Promise(done => setTimeout(done, 50));
    }
  }
}
"""
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@contextlib.contextmanager
def axe_checked(
    browser: Any, width: int = 1280, height: int = 860, **options: Any
) -> Iterator[Any]:
    """A tab in a new context in which every loaded page is checked with axe-core (unless
    JavaScript is off); the context fails the test on close if any page had a violation."""
    context = browser.new_context(viewport={"width": width, "height": height}, **options)
    context.set_default_timeout(10_000)
    found: dict[str, list[str]] = {}

    def report(_source: Any, where: str, violations: list[str]) -> None:
        if violations:
            found[where] = violations

    context.expose_binding("__axeReport", report)
    context.add_init_script(AXE_SOURCE + AXE_ON_LOAD)
    tab = context.new_page()
    try:
        yield tab
        # Without JavaScript axe cannot run (nor would evaluate return): such a test checks
        # its pages in a JavaScript context too.
        if options.get("java_script_enabled", True) and tab.url != "about:blank":
            # The last page may still be loading its check: run it here and wait for it.
            tab.evaluate(AXE_NOW)
        assert not found, "axe-core violations:\n" + json.dumps(found, indent=1)
    finally:
        context.close()


def screenshot(tab: Any, backend: str, name: str) -> None:
    """Save a screenshot for the README and docs (browser tests run on one database each,
    so each is taken once a run)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def link_in(mail: Any, server: Server, path: str) -> str:
    """The link to `path` in an email, pointed at the test server instead of the public URL."""
    match = re.search(
        r"http://viewer\.test(" + re.escape(path) + r"\?token=[0-9a-f]+)", mail.part("plain")
    )
    assert match, mail.part("plain")
    return server.base_url + match.group(1)


def csrf_of(response: httpx.Response) -> str:
    match = _CSRF.search(response.text)
    assert match, response.text[:500]
    return match.group(1)


def accept_over_http(link: str, password: str | None = PASSWORD) -> httpx.Response:
    with httpx.Client() as client:
        form = client.get(link)
        assert form.status_code == 200, form.text
        data = {"token": link.rsplit("=", 1)[1], "csrf_token": csrf_of(form)}
        if password is not None:
            data.update(password=password, password_confirmation=password)
        return client.post(link.split("?")[0], data=data)


def login_over_http(server: Server, email: str, password: str = PASSWORD) -> httpx.Client:
    client = httpx.Client(base_url=server.base_url)
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form), "next": "/users"},
    )
    assert response.status_code == 303, response.text
    return client


@dataclass
class Person:
    email: str
    user_id: str


def onboard_owner(server: Server, smtp_sink: SmtpSink, clinic_id: str, **names: str) -> Person:
    """Invite an owner with the CLI and accept from the email, over plain HTTP."""
    email = unique_email("owner")
    user_id = (
        server.cli(
            "owners",
            "invite",
            "--clinic",
            clinic_id,
            "--email",
            email,
            "--first-name",
            names.get("first", "Olivia"),
            "--last-name",
            names.get("last", "Okafor"),
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    link = link_in(smtp_sink.wait_for(email)[0], server, "/invitations/accept")
    assert accept_over_http(link).status_code == 200
    return Person(email, user_id)


def login(tab: Any, email: str, password: str = PASSWORD) -> None:
    tab.goto("/login")
    tab.get_by_label("Email").fill(email)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Log in").click()
