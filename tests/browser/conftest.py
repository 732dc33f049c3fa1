"""Real headless Chromium (Debian's package) driven by Playwright against a live server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `bash scripts/system-deps.sh` "
            "(or set CHROMIUM_PATH)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


# Recorded in every document before its own scripts run (init scripts are exempt from CSP).
_RECORD_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  const seen = JSON.parse(sessionStorage.getItem("csp-violations") || "[]");
  seen.push(event.violatedDirective + " " + event.blockedURI);
  sessionStorage.setItem("csp-violations", JSON.stringify(seen));
});
"""


class PageProblems:
    """Script errors, console errors and CSP violations a page ran into. HTTP statuses are not
    problems here ("Failed to load resource" for a deliberate 401/422): tests check those."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.add_init_script(_RECORD_CSP_VIOLATIONS)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    @property
    def messages(self) -> list[str]:
        violations = self.page.evaluate(
            "JSON.parse(sessionStorage.getItem('csp-violations') || '[]')"
        )
        return self.errors + [f"CSP violation: {item}" for item in violations]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB")
    new_page = context.new_page()
    new_page.set_default_timeout(10_000)
    yield new_page
    context.close()


@pytest.fixture
def problems(page: Page) -> PageProblems:
    return PageProblems(page)
