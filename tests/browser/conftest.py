"""Real headless Chromium (Debian's package) driven by Playwright against a live server.

Every page a browser test opens is watched: a console error, an uncaught script error or a
Content-Security-Policy violation in any of them fails the test at teardown, whether or not the
test looked. Tests open further browsers (another person, JavaScript off) with
`browser.new_context(...)`, which watches them too."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

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

# Chromium logs every HTTP error status of a request as a console error. A deliberate 4xx (a
# refused action, a 401/422 a test provokes) is an answer the tests check themselves; a 5xx or
# a network failure is a problem like any other.
_CLIENT_ERROR_STATUS = re.compile(
    r"^Failed to load resource: the server responded with a status of 4\d\d\b"
)

# Runs in every document before its own scripts (init scripts are exempt from the CSP); the
# binding is Playwright's, so the report reaches the test even if the page navigates away.
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__reportCspViolation(
    event.violatedDirective + " " + (event.blockedURI || "inline") + " at " +
    (event.sourceFile || document.location.href) + ":" + event.lineNumber
  );
});
"""


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
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


class PageProblems:
    """Script errors, console errors and CSP violations one page ran into."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not _CLIENT_ERROR_STATUS.match(message.text):
            self.errors.append(f"console error: {message.text}")

    @property
    def messages(self) -> list[str]:
        return list(self.errors)


class BrowserProblems:
    """The problems of every page in every watched context, for the teardown check."""

    def __init__(self) -> None:
        self.pages: dict[Page, PageProblems] = {}

    def watch(self, context: BrowserContext) -> BrowserContext:
        context.add_init_script(_REPORT_CSP_VIOLATIONS)
        context.expose_binding("__reportCspViolation", self._on_violation)
        context.on("page", self.of)
        for page in context.pages:
            self.of(page)
        return context

    def of(self, page: Page) -> PageProblems:
        if page not in self.pages:
            self.pages[page] = PageProblems(page)
        return self.pages[page]

    def _on_violation(self, source: dict[str, Any], report: str) -> None:
        self.of(source["page"]).errors.append(f"CSP violation: {report}")

    @property
    def messages(self) -> list[str]:
        return [message for problems in self.pages.values() for message in problems.messages]

    def take(self) -> list[str]:
        """The problems so far, forgotten afterwards (for a test that provokes one on purpose)."""
        taken = self.messages
        for problems in self.pages.values():
            problems.errors.clear()
        return taken


class WatchedBrowser:
    """The session's Chromium, handing out contexts whose pages are watched."""

    def __init__(self, browser: Browser, problems: BrowserProblems) -> None:
        self._browser = browser
        self.problems = problems

    def new_context(self, **options: Any) -> BrowserContext:
        return self.problems.watch(self._browser.new_context(**options))


@pytest.fixture
def browser_problems() -> Iterator[BrowserProblems]:
    watched = BrowserProblems()
    yield watched
    # Contexts are closed by now (the fixtures using this one are torn down first), so every
    # event a page sent has arrived.
    found = watched.messages
    if found:
        pytest.fail(
            "the browser reported problems:\n" + "\n".join(f"  - {item}" for item in found),
            pytrace=False,
        )


@pytest.fixture
def browser(chromium: Browser, browser_problems: BrowserProblems) -> WatchedBrowser:
    return WatchedBrowser(chromium, browser_problems)


@pytest.fixture
def page(browser: WatchedBrowser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB")
    new_page = context.new_page()
    new_page.set_default_timeout(10_000)
    yield new_page
    context.close()


@pytest.fixture
def problems(page: Page, browser_problems: BrowserProblems) -> PageProblems:
    """The main page's problems, for tests that check them at a given moment."""
    return browser_problems.of(page)
