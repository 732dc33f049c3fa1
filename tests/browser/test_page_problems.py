"""The guard every browser test runs under (tests/browser/conftest.py): a console error, an
uncaught script error or a Content-Security-Policy violation in a watched page is caught."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Route

from tests.browser.conftest import BrowserProblems
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser


def test_console_errors_script_errors_and_csp_violations_are_caught(
    page: Page, browser_problems: BrowserProblems, live_server: LiveServer
) -> None:
    # A page on the site's origin, under the policy the site really sends, doing what it forbids.
    served = page.goto(live_server.url + "/healthz")
    assert served is not None
    policy = served.headers["content-security-policy"]
    nonce_match = re.search(r"'nonce-([^']+)'", policy)
    assert nonce_match is not None
    nonce = nonce_match.group(1)
    body = f"""<!doctype html><html><head><title>guard</title></head><body>
<p style="color: red">an inline style</p>
<script>window.inlineRan = true;</script>
<script nonce="{nonce}">
  console.error("logged on purpose");
  setTimeout(function () {{ throw new Error("thrown on purpose"); }});
</script>
</body></html>"""

    def serve(route: Route) -> None:
        route.fulfill(
            status=200,
            headers={"content-type": "text/html", "content-security-policy": policy},
            body=body,
        )

    page.route(live_server.url + "/guard-check", serve)
    page.goto(live_server.url + "/guard-check")
    assert page.evaluate("window.inlineRan === undefined")

    def seen() -> str:
        return "\n".join(browser_problems.messages)

    for _ in range(100):
        found = seen()
        if all(
            part in found
            for part in ("style-src-attr", "script-src-elem", "logged on purpose", "thrown on")
        ):
            break
        page.wait_for_timeout(50)
    caught = browser_problems.take()
    assert any(item.startswith("CSP violation: style-src-attr inline") for item in caught)
    assert any(item.startswith("CSP violation: script-src-elem inline") for item in caught)
    assert "console error: logged on purpose" in caught
    assert any(item.startswith("pageerror: ") and "thrown on purpose" in item for item in caught)
    # Taken and forgotten: this test itself ends clean.
    assert browser_problems.messages == []
