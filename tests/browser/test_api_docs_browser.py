"""The API reference page in Chromium: Swagger UI from our own origin lists the operations,
under the site's Content-Security-Policy, asking nothing of any other host."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.conftest import PageProblems
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser


def test_api_docs_work_offline_under_the_site_csp(
    page: Page, problems: PageProblems, live_server: LiveServer
) -> None:
    hosts: set[str] = set()

    def record(request: Request) -> None:
        hosts.add(urlsplit(request.url).netloc)

    page.on("request", record)
    response = page.goto(live_server.url + "/docs")
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "cdn" not in csp
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/me").first).to_be_visible()
    assert hosts == {urlsplit(live_server.url).netloc}, hosts
    assert problems.messages == []
