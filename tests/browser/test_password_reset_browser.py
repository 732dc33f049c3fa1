"""A member who forgot their password, in Chromium: "Forgot password?" on the login page, the
address, the link from the real SMTP server's inbox, a new password, the login page, signed in
with the new password; the old one no longer works. Screenshot: docs/password-reset.png."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from community.core.models import User
from community.worker import Worker
from tests.browser.conftest import PageProblems
from tests.community.accounts.helpers import links_to, path_of
from tests.conftest import PASSWORD, Inbox, LiveServer, drain

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"
NEW_PASSWORD = "violet-tundra-mosaic-9"


def _sign_in(page: Page, login: str, password: str) -> None:
    page.get_by_label("Username or e-mail").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_a_member_resets_a_forgotten_password(
    page: Page,
    problems: PageProblems,
    live_server: LiveServer,
    make_user: Callable[..., User],
    mail_worker: Callable[[], Worker],
    smtp: tuple[Inbox, int],
) -> None:
    inbox, _port = smtp
    make_user("priya")
    page.goto(live_server.url + "/login")
    page.get_by_role("link", name="Forgot password?").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    page.get_by_label("E-mail").fill("priya@example.com")
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("status")).to_contain_text("If an account uses that address")

    drain(mail_worker())
    links = links_to(inbox, "priya@example.com")
    assert len(links) == 1
    page.goto(live_server.url + path_of(links[0]))
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password").fill("correcthorsebatterystaple")
    page.get_by_role("button", name="Set my new password").click()
    expect(page.locator("#error-password")).to_contain_text("most common")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "password-reset.png"), full_page=True)
    page.get_by_role("button", name="Set my new password").click()

    expect(page).to_have_url(live_server.url + "/login")
    expect(page.get_by_role("status")).to_contain_text("Password changed: sign in with it.")
    _sign_in(page, "priya", PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text("not right")
    _sign_in(page, "priya", NEW_PASSWORD)
    expect(page.get_by_role("status")).to_contain_text("Signed in as priya.")

    # The link worked once.
    page.goto(live_server.url + path_of(links[0]))
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    assert problems.messages == [] or all("410" in message for message in problems.messages)
