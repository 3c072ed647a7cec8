"""/docs in a browser that can reach nothing but the server (as on hospital networks that
block CDNs): Swagger UI loads from the package and shows the API's operations."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect
from support import Server, on_one_database

pytestmark = on_one_database("sqlite")


def test_docs_load_with_every_other_host_blocked(browser: Any, server: Server) -> None:
    context = browser.new_context(base_url=server.base_url)
    context.set_default_timeout(15_000)
    outside: list[str] = []
    csp_errors: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith(server.base_url):
            request_route.continue_()
        else:
            outside.append(url)
            request_route.abort()

    context.route("**/*", route)
    tab = context.new_page()
    tab.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    response = tab.goto("/docs")
    assert response.status == 200
    expect(tab.get_by_role("heading", name="Avara Viewer API")).to_be_visible()
    expect(tab.locator(".opblock-summary-path").first).to_be_visible()
    expect(tab.locator("#swagger-ui")).to_contain_text("/v1/viewer/users")
    assert outside == []
    assert csp_errors == []
    context.close()
