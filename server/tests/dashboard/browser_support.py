"""Helpers of the dashboard tests: chromium settings, screenshots, and onboarding a clinic's
people through the same emails and pages a person uses."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def screenshot(tab: Any, backend: str, name: str) -> None:
    """Save a screenshot for the README (once, from the SQLite run)."""
    if backend == "sqlite":
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
