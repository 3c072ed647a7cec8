"""Helpers of the security tests: a clinic's people onboarded through the emails and pages a
person uses, and a dashboard session that posts forms as a browser would (with its CSRF token)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from dashboard.browser_support import accept_over_http, csrf_of, link_in, login_over_http
from support import Clinic, Server, SmtpSink, invite_body


@dataclass
class Signed:
    """A person of the clinic, signed in to the dashboard."""

    email: str
    user_id: str
    session: httpx.Client

    def post_form(self, path: str, data: dict[str, str]) -> httpx.Response:
        token = csrf_of(self.session.get("/users"))
        return self.session.post(path, data={**data, "csrf_token": token})


def onboard(server: Server, smtp_sink: SmtpSink, clinic: Clinic, level: str) -> Signed:
    """An admin or member invited with the clinic's API key who accepts and signs in."""
    body = invite_body(level=level, hasDashboardAccess=True)
    response = clinic.client.post("/v1/viewer/users", json=body)
    assert response.status_code == 201, response.text
    link = link_in(smtp_sink.wait_for(body["email"])[0], server, "/invitations/accept")
    assert accept_over_http(link).status_code == 200
    return Signed(body["email"], response.json()["userId"], login_over_http(server, body["email"]))


def edit_form(**overrides: str) -> dict[str, str]:
    """The edit form as the browser sends it (ticked boxes are "on", unticked ones absent)."""
    data = {
        "firstName": "Edited",
        "lastName": "Person",
        "clinicRole": "Doctor",
        "level": "member",
        "canManageStudies": "on",
        "hasDashboardAccess": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v != ""}
