"""Fixtures of the sign-in tests: one real OpenID Provider for the whole session, a server
per database that enforces MFA and whose public URL is its own address (the provider sends
the browser back to it), and Debian's chromium."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard.browser_support import CHROMIUM, CHROMIUM_ARGS
from sso.provider_support import OpenIdProvider
from support import Server, SmtpSink


@pytest.fixture(scope="session")
def openid_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIdProvider]:
    provider = OpenIdProvider(tmp_path_factory.mktemp("openid-provider"))
    provider.start()
    yield provider
    provider.stop()


def signin_server(backend: str, data_dir: Path, smtp_url: str, **settings: str) -> Server:
    """A server as deployed: MFA policies enforced, public URL = where it listens."""
    srv = Server(backend, data_dir, smtp_url, mfa_enforced="true", **settings)
    srv.env["AVARA_VIEWER_PUBLIC_URL"] = srv.base_url
    srv.start()
    return srv


@pytest.fixture(scope="session")
def sso_server(
    backend: str, smtp_sink: SmtpSink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    srv = signin_server(backend, tmp_path_factory.mktemp(f"signin-{backend}"), smtp_sink.url)
    yield srv
    srv.destroy()


def pytest_configure(config: pytest.Config) -> None:
    from playwright.sync_api import expect

    # Sign-ins go through two servers and several redirects: wait longer than the default 5 s
    # for what a page shows on a loaded machine (still bounded).
    expect.set_options(timeout=15_000)


# Per module, as in the dashboard tests: sync Playwright owns the main thread's event loop.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `make test-deps` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def tab(browser: Any, sso_server: Server) -> Iterator[Any]:
    context = browser.new_context(
        base_url=sso_server.base_url, viewport={"width": 1280, "height": 860}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def private_server(
    backend: str, smtp_sink: SmtpSink, tmp_path: Path
) -> Iterator[Callable[..., Server]]:
    """Servers of one test, with settings of their own (a short idle timeout, a proxy)."""
    made: list[Server] = []

    def make(**settings: str) -> Server:
        srv = signin_server(backend, tmp_path / f"srv{len(made)}", smtp_sink.url, **settings)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.destroy()
