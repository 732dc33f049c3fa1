"""Known issues in Chromium: the banner on a phone (readable, no sideways scrolling, a link to
the issue), and the follow button swapped in place by htmx."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.models import Brand, Role, User
from crowdservice.known_issues import service
from crowdservice.known_issues.forms import IssueForm
from crowdservice.known_issues.models import KnownIssueFollower
from tests.browser.conftest import WatchedBrowser
from tests.browser.test_layout_browser import sign_in
from tests.conftest import QA, LiveServer, fresh

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_banner_on_a_phone_and_following_with_htmx(
    browser: WatchedBrowser,
    live_server: LiveServer,
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
    backend: str,
) -> None:
    brand = db.get(Brand, qa.forum.brand_id)
    assert brand is not None
    member = make_user("mia")

    context = browser.new_context(locale="en-GB", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server, member)
    agent = make_user("agnes", role=Role.AGENT)
    service.publish(
        db, agent, brand,
        IssueForm(title="Sign-in fails with error 502 for some customers since this morning",
                  summary="Use the mobile app meanwhile: it is not affected.",
                  status="identified"),
    )  # fmt: skip
    db.commit()
    # This process's banner cache is dropped by the agents' routes; the service is called
    # directly here, so the test drops it.
    delattr(live_server.app.state, "known_issue_banners")
    page.goto(f"{live_server.url}/b/{brand.slug}")
    banner = page.locator("section.known-issue-banner")
    expect(banner).to_be_visible()
    # A landmark region named for what it holds, not a live region: it is there when the page
    # loads and must not be read out again on every update of the page.
    expect(page.get_by_role("region", name="Known issues")).to_be_visible()
    expect(banner).to_contain_text("Identified")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    if backend == "sqlite":
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "known-issue-banner-phone.png"))

    banner.get_by_role("link", name="Sign-in fails with error 502").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sign-in fails")
    page.get_by_role("button", name="Notify me when it is fixed").click()
    expect(page.get_by_role("button", name="Stop following")).to_be_visible()
    fresh(db)
    assert db.scalars(select(KnownIssueFollower.user_id)).all() == [member.id]
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()
