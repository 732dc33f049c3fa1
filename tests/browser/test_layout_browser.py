"""Staff pages on a phone and on a laptop: every agent, moderator and admin page fits a 390 px
wide screen without scrolling sideways, and an admin's main navigation stays on one line at
1280 px."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from community.core.models import Role, User
from crowdservice import agent as agent_service
from crowdservice.models import EscalationReason
from moderation import actions
from tests.browser.conftest import WatchedBrowser
from tests.conftest import PASSWORD, QA, LiveServer
from tests.crowdservice.helpers import add_webhook, escalated

pytestmark = pytest.mark.browser

# Long words and titles are what pushes a narrow page sideways.
LONG_TITLE = (
    "Roaming-data-does-not-work-in-Portugal-after-the-firmware-update-of-last-week on my phone"
)
# What a page that is too wide has in it, for the failure message.
_OVERFLOWING = """
() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  for (const element of document.querySelectorAll("body *")) {
    const box = element.getBoundingClientRect();
    if (box.width && box.right > width + 0.5) {
      const name = element.tagName.toLowerCase() + (element.id ? "#" + element.id : "") +
        (element.className && typeof element.className === "string"
          ? "." + element.className.trim().split(/\\s+/).join(".") : "");
      found.push(name + " right=" + Math.round(box.right));
    }
  }
  return found.slice(0, 15);
}
"""


def sign_in(
    page: Page, live_server: LiveServer, user: User, signed_in: str = "Signed in as"
) -> None:
    page.goto(f"{live_server.url}/login?next={quote('/')}")
    page.locator("#field-login").fill(user.username)
    page.locator("#field-password").fill(PASSWORD)
    page.locator("#field-password").press("Enter")
    expect(page.get_by_role("status")).to_contain_text(f"{signed_in} {user.display_name}.")


def staff_pages(db: Session, qa: QA, make_user: Callable[..., User]) -> tuple[User, list[str]]:
    """An admin, and the address of every staff page, each with something on it."""
    admin = make_user("admin_ada_lovelace", role=Role.ADMIN)
    asker = make_user("asker_with_a_long_username")
    item = escalated(db, qa, asker, LONG_TITLE, reason=EscalationReason.AUTHOR_REQUEST)
    qa.answer(make_user("helper"), item.thread, "Try-turning-data-roaming-off-and-on-again-twice.")
    agent_service.claim(db, admin, item)
    held = qa.ask(make_user("newcomer", trust_level=0), title=LONG_TITLE + " (held)")
    actions.set_locked(db, admin, item.thread, True, reason="Locked while support looks")
    db.commit()
    hook = add_webhook(db, item)
    assert held.id
    brand = qa.forum.brand.slug
    pages = [
        f"/b/{brand}/agent",
        f"/agent/escalations/{item.id}",
        "/agent/me",
        f"/b/{brand}/mod",
        f"/b/{brand}/mod/pending",
        f"/b/{brand}/mod/flagged",
        f"/b/{brand}/mod/users",
        f"/mod/users/{asker.username}",
        "/mod/audit",
        "/admin",
        "/admin/users",
        f"/admin/brands/{brand}/service",
        f"/admin/brands/{brand}/webhooks",
        f"/admin/brands/{brand}/webhooks/{hook.id}",
        f"/admin/brands/{brand}/moderation",
        f"/admin/brands/{brand}/search",
        "/admin/outbox",
        f"/b/{brand}/kb/queue",
        f"/b/{brand}/insights",
        f"/t/{item.thread_id}",
    ]
    return admin, pages


def test_staff_pages_fit_a_390px_screen(
    browser: WatchedBrowser,
    live_server: LiveServer,
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
) -> None:
    admin, pages = staff_pages(db, qa, make_user)
    context = browser.new_context(locale="en-GB", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server, admin)
    too_wide = {}
    for path in pages:
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == 200, path
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            too_wide[path] = (width, page.evaluate(_OVERFLOWING))
    context.close()
    assert too_wide == {}


def test_an_admins_navigation_is_one_line_at_1280px(
    browser: WatchedBrowser,
    live_server: LiveServer,
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
) -> None:
    admin, _pages = staff_pages(db, qa, make_user)
    for locale, signed_in in (("en-GB", "Signed in as"), ("es-ES", "Has iniciado sesión como")):
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.set_default_timeout(10_000)
        sign_in(page, live_server, admin, signed_in)
        for path in ("/", "/admin", f"/b/{qa.forum.brand.slug}/agent"):
            page.goto(live_server.url + path)
            entries = page.locator(".site-header .brand-mark, .site-nav > ul > li")
            middles = entries.evaluate_all(
                "items => items.map(item => Math.round(item.getBoundingClientRect().top"
                " + item.getBoundingClientRect().height / 2))"
            )
            assert len(middles) == 10, middles  # the brand and every entry an admin has
            assert max(middles) - min(middles) <= 2, (locale, path, middles)
        context.close()
