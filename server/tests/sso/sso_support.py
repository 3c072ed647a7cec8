"""Helpers of the sign-in tests: a clinic connected to the test OpenID Provider, people
onboarded through the same emails and pages a person uses, and codes of their authenticator
app computed here (pyotp) as the app would."""

from __future__ import annotations

import html
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx
import pyotp
from dashboard.browser_support import PASSWORD, accept_over_http, csrf_of
from sso.provider_support import OpenIdProvider, sign_in_over_http
from support import Clinic, Server, SmtpSink, invite_body

KEY = re.compile(r'<code id="mfa-key" class="secret-key">([A-Z2-7]+)</code>')
RECOVERY = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")


def new_domain() -> str:
    return f"h{uuid.uuid4().hex[:10]}.example"


def address(domain: str, who: str = "dr") -> str:
    return f"{who}.{uuid.uuid4().hex[:8]}@{domain}"


@dataclass
class SsoClinic:
    clinic: Clinic
    domain: str

    @property
    def id(self) -> str:
        return self.clinic.id


def sso_clinic(
    server: Server, provider: OpenIdProvider, *extra: str, name: str = "SSO Imaging"
) -> SsoClinic:
    """A clinic whose email domain signs in through the test provider."""
    clinic = server.create_clinic(name)
    domain = new_domain()
    server.cli(
        "sso",
        "configure",
        "--clinic",
        clinic.id,
        "--issuer",
        provider.issuer,
        "--client-id",
        provider.client_id,
        "--client-secret",
        provider.client_secret,
        "--domain",
        domain,
        *extra,
    )
    return SsoClinic(clinic, domain)


def invite(clinic: Clinic, email: str, **fields: Any) -> str:
    response = clinic.client.post("/v1/viewer/users", json=invite_body(email=email, **fields))
    assert response.status_code == 201, response.text
    return str(response.json()["userId"])


def link_in(mail: Any, server: Server, path: str) -> str:
    """The link to `path` in an email (these servers' public URL is their own address)."""
    public = server.env["AVARA_VIEWER_PUBLIC_URL"]
    match = re.search(re.escape(public + path) + r"\?token=[0-9a-f]+", mail.part("plain"))
    assert match, mail.part("plain")
    return match.group(0)


def onboard_with_password(
    server: Server, smtp_sink: SmtpSink, clinic: Clinic, email: str, **fields: Any
) -> str:
    """Invite over the API and accept from the email with a password; the user id."""
    user_id = invite(clinic, email, **fields)
    link = link_in(smtp_sink.wait_for(email)[0], server, "/invitations/accept")
    assert accept_over_http(link).status_code == 200
    return user_id


def onboard_owner_with_password(
    server: Server, smtp_sink: SmtpSink, clinic_id: str, email: str
) -> str:
    user_id = (
        server.cli(
            "owners",
            "invite",
            "--clinic",
            clinic_id,
            "--email",
            email,
            "--first-name",
            "Olivia",
            "--last-name",
            "Okafor",
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    link = link_in(smtp_sink.wait_for(email)[0], server, "/invitations/accept")
    assert accept_over_http(link).status_code == 200
    return user_id


@dataclass
class Authenticator:
    """A person's authenticator app. A server accepts each time-step's code once (and one
    step of drift either way), so after a code is used the app's next one is taken."""

    key: str
    last_step: int | None = None

    def code(self) -> str:
        while True:
            step = int(time.time()) // 30
            candidate = step if self.last_step is None else max(step, self.last_step + 1)
            if candidate <= step + 1:
                self.last_step = candidate
                return pyotp.TOTP(self.key).generate_otp(candidate)
            time.sleep(1)


def post_form(client: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    """POST a dashboard form with the CSRF token of the page it lives on."""
    token = csrf_of(client.get(path))
    return client.post(path, data={**data, "csrf_token": token})


def password_login(
    server: Server, email: str, password: str = PASSWORD, **headers: str
) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=server.base_url, headers=headers)
    token = csrf_of(client.get("/login"))
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    return client, response


def enrol_over_http(client: httpx.Client) -> tuple[Authenticator, list[str]]:
    """On the enrolment page: read the key, type the app's code; (app, recovery codes)."""
    setup = client.get("/account/mfa/setup")
    assert setup.status_code == 200, setup.text[:300]
    app = Authenticator(KEY.search(setup.text).group(1))  # type: ignore[union-attr]
    done = client.post(
        "/account/mfa/setup", data={"code": app.code(), "csrf_token": csrf_of(setup)}
    )
    assert done.status_code == 200, done.text[:500]
    codes = RECOVERY.findall(done.text)
    assert len(codes) == 10
    return app, codes


def provider_link(response: httpx.Response) -> str:
    """The provider's authorization URL on the "continuing to your organisation" page."""
    assert response.status_code == 200, response.text[:500]
    match = re.search(r'id="to-provider" href="([^"]+)"', response.text)
    assert match, response.text[:500]
    return html.unescape(match.group(1))


def sso_login_over_http(
    server: Server, provider: OpenIdProvider, email: str, login: str | None = None
) -> tuple[httpx.Client, httpx.Response]:
    """The login page with an address of an SSO domain, the provider's pages, the callback:
    (the browser's client, the callback's answer)."""
    client = httpx.Client(base_url=server.base_url)
    token = csrf_of(client.get("/login"))
    to_provider = client.post("/login", data={"email": email, "password": "", "csrf_token": token})
    callback = server.base_url + "/auth/oidc/callback"
    back = sign_in_over_http(provider_link(to_provider), login or email, callback)
    return client, client.get(urljoin(server.base_url, back))
