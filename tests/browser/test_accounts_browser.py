"""A person in Chromium: sign up, sign out, sign in; an admin changes a role with htmx."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from community.core.models import Role, User
from community.worker import Worker
from tests.browser.conftest import PageProblems, WatchedBrowser
from tests.community.accounts.helpers import links_to, path_of
from tests.conftest import PASSWORD, Inbox, LiveServer, drain, fresh

pytestmark = pytest.mark.browser


def test_sign_up_sign_out_and_sign_in(
    page: Page,
    problems: PageProblems,
    live_server: LiveServer,
    mail_worker: Callable[[], Worker],
    smtp: tuple[Inbox, int],
) -> None:
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Username", exact=True).fill("browser_bea")
    page.get_by_label("E-mail").fill("bea@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("We sent a link to bea@example.com")
    # Confirm-first: the e-mailed link's button confirms the address, then the password signs
    # in (a link handed to someone else must not sign them in to this account).
    drain(mail_worker())
    page.goto(live_server.url + path_of(links_to(smtp[0], "bea@example.com")[0]))
    page.get_by_role("button", name="Confirm my address").click()
    expect(page.get_by_role("status")).to_contain_text("Your address is confirmed. Sign in")
    page.get_by_label("Username or e-mail").fill("browser_bea")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("status")).to_contain_text("Signed in as browser_bea")

    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    session = cookies["community_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"

    # The person's own links sit in the account menu under their name.
    menu = page.locator(".account-menu summary")
    expect(menu).to_contain_text("browser_bea")
    expect(page.get_by_role("button", name="Log out")).to_be_hidden()
    menu.click()
    profile = page.get_by_role("link", name="Your profile")
    expect(profile).to_have_attribute("href", "/u/browser_bea")
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Log out")).to_be_hidden()
    menu.click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_contain_text("You are signed out.")
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Username or e-mail").fill("bea@example.com")
    page.get_by_label("Password").fill("wrong-password-0")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("status")).to_contain_text("Signed in as browser_bea.")
    assert problems.messages == []


def test_admin_changes_a_role_in_place_with_htmx(
    page: Page,
    problems: PageProblems,
    live_server: LiveServer,
    make_user: Callable[..., User],
    db: Session,
) -> None:
    make_user("chief", role=Role.ADMIN)
    target = make_user("lee")
    page.goto(live_server.url + "/login")
    page.get_by_label("Username or e-mail").fill("chief")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Admin").click()
    expect(page).to_have_url(live_server.url + "/admin")
    page.get_by_role("link", name="Users and roles").click()
    expect(page).to_have_url(live_server.url + "/admin/users")

    page.get_by_label("Role of lee").select_option("agent")
    with page.expect_request(lambda request: request.method == "POST") as posted:
        page.locator(f"#user-{target.id}").get_by_role("button", name="Save").click()
    request = posted.value
    assert request.headers.get("hx-request") == "true"
    assert request.headers.get("x-csrf-token")  # htmx sent the token from hx-headers
    expect(page.locator(f"#user-{target.id}")).to_contain_text("lee is now Agent.")
    assert page.url == live_server.url + "/admin/users"  # swapped in place, no navigation
    fresh(db)
    assert db.get(User, target.id).role == Role.AGENT  # type: ignore[union-attr]

    page.get_by_label("Search users").fill("chi")
    expect(page.locator("#user-table")).not_to_contain_text("@lee")
    expect(page.locator("#user-table")).to_contain_text("@chief")
    assert problems.messages == []


def test_pages_read_without_javascript(
    browser: WatchedBrowser, live_server: LiveServer, make_user: Callable[..., User]
) -> None:
    make_user("priya")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(live_server.url + "/u/priya")
        expect(page.get_by_role("heading", level=1)).to_have_text("priya")
        page.goto(live_server.url + "/login")
        page.get_by_label("Username or e-mail").fill("priya")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("status")).to_contain_text("Signed in as priya.")
    finally:
        context.close()
