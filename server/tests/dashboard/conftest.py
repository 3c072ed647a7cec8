"""Fixtures of the dashboard tests: Debian's chromium driven by Playwright (sync API), with
axe-core run on every page a test's tab loads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard.browser_support import CHROMIUM, CHROMIUM_ARGS, axe_checked
from support import Server


# Per module, not per session: while sync Playwright runs, its event loop is the running loop
# of the main thread, and the other tests' asyncio.run() calls would fail after this module.
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
def page(browser: Any, server: Server) -> Iterator[Any]:
    with axe_checked(browser, base_url=server.base_url) as tab:
        yield tab
