"""The tests' OpenID Provider: panva's oidc-provider (npm, installed by `make test-deps`) run
by node on a free loopback port, restartable with other signing keys (IdP key rotation) or
with ID tokens that are already expired."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from joserfc.jwk import RSAKey
from support import free_port

PROVIDER_DIR = Path(__file__).resolve().parent / "provider"
NODE = shutil.which("node") or "/usr/bin/node"
CLIENT_ID = "avara-viewer-tests"
# Any login and password pass the provider's development interactions.
ANY_PASSWORD = "whatever-the-idp-asks"


def new_signing_key() -> dict[str, Any]:
    kid = "key-" + secrets.token_hex(4)
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
    return key.as_dict(private=True)


class OpenIdProvider:
    def __init__(self, workdir: Path) -> None:
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            raise AssertionError("oidc-provider is not installed: run `make test-deps` (npm ci)")
        self.workdir = workdir
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id = CLIENT_ID
        self.client_secret = "test-client-secret-" + secrets.token_hex(16)
        self.keys: list[dict[str, Any]] = [new_signing_key()]
        self.id_token_ttl = 3600
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "provider.log"

    @property
    def kids(self) -> list[str]:
        return [str(key["kid"]) for key in self.keys]

    def start(self) -> None:
        jwks = self.workdir / "jwks.json"
        jwks.write_text(json.dumps({"keys": self.keys}))
        env = dict(
            os.environ,
            PROVIDER_PORT=str(self.port),
            PROVIDER_JWKS_FILE=str(jwks),
            PROVIDER_CLIENT_ID=self.client_id,
            PROVIDER_CLIENT_SECRET=self.client_secret,
            PROVIDER_ID_TOKEN_TTL=str(self.id_token_ttl),
        )
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [NODE, str(PROVIDER_DIR / "provider.mjs")],
                cwd=PROVIDER_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"provider exited:\n{self.log_path.read_text()}")
            try:
                discovery = httpx.get(self.issuer + "/.well-known/openid-configuration", timeout=1)
                if discovery.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"provider did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def rotate_keys(self) -> str:
        """Sign with a new key from now on; the old ones leave the JWKS."""
        self.keys = [new_signing_key()]
        self.restart()
        return self.kids[0]

    def issue_expired_id_tokens(self, expired: bool) -> None:
        self.id_token_ttl = -600 if expired else 3600
        self.restart()

    def jwks(self) -> dict[str, Any]:
        return httpx.get(self.issuer + "/jwks", timeout=5).json()  # type: ignore[no-any-return]


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


def sign_in_over_http(authorization_url: str, login: str, redirect_prefix: str) -> str:
    """Go through the provider's login and consent pages as a browser would, with plain HTTP;
    returns the redirect back to us (`redirect_prefix?code=…&state=…`)."""
    with httpx.Client(timeout=10) as browser:
        url = authorization_url
        for _ in range(12):
            response = browser.get(url)
            if response.status_code in (302, 303):
                url = urljoin(url, response.headers["location"])
                if url.startswith(redirect_prefix):
                    return url
                continue
            assert response.status_code == 200, response.text[:500]
            action = _FORM_ACTION.search(response.text)
            assert action, response.text[:500]
            form = (
                {"prompt": "login", "login": login, "password": ANY_PASSWORD}
                if 'name="login"' in response.text
                else {"prompt": "consent"}
            )
            posted = browser.post(urljoin(url, action.group(1)), data=form)
            assert posted.status_code in (302, 303), posted.text[:500]
            url = urljoin(url, posted.headers["location"])
            if url.startswith(redirect_prefix):
                return url
    raise AssertionError("the provider never redirected back")
