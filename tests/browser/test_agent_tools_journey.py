"""The agent tools end to end in Chromium, as the people who use them would: an agent continues
an escalated thread in private (the public thread only says so), answers with a saved reply,
and publishes a known issue; a member sees its banner, gets it first among the suggestions
while asking, asks to be told, and is told when the agent marks it fixed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from community.core.db import make_session_factory
from community.core.models import Notification, NotificationKind, Post, Role, User
from community.core.settings import Settings
from community.worker import Worker
from crowdservice.followup.models import PrivateConversation
from crowdservice.known_issues.models import KnownIssue, KnownIssueFollower
from crowdservice.saved_replies import service as saved_replies
from crowdservice.saved_replies.models import SavedReply
from tests.browser.conftest import WatchedBrowser
from tests.browser.test_agent_browser import sign_in
from tests.conftest import QA, LiveServer, drain, fresh
from tests.crowdservice.helpers import escalated

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"
PRIVATE_REQUEST = "Please send us the order number 7741-22 and your postcode here."
ISSUE_TITLE = "Sign-in fails with error 502 since this morning"


@pytest.fixture
def worker(settings: Settings, engine: Engine) -> Worker:
    return Worker(settings, make_session_factory(engine))


def test_private_follow_up_saved_reply_and_a_known_issue_from_banner_to_fix_notice(
    page: Page,
    browser: WatchedBrowser,
    live_server: LiveServer,
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
    worker: Worker,
    backend: str,
) -> None:
    def screenshot(on: Page, name: str) -> None:
        if backend == "sqlite":  # once per run: the pictures in docs/
            DOCS.mkdir(exist_ok=True)
            on.screenshot(path=str(DOCS / name), full_page=True)

    admin = make_user("lead_lin", role=Role.ADMIN)
    agent = make_user("agent_ada", role=Role.AGENT)
    customer = make_user("mia")
    brand = qa.forum.brand
    saved_replies.create_reply(
        db, admin, brand,
        saved_replies.ReplyFields(
            title="Ask for the order number", locale="en", action="ask_details",
            body="Hi {author_name}, we have continued “{thread_title}” in private.",
        ),
    )  # fmt: skip
    db.commit()
    item = escalated(db, qa, customer, "My parcel never arrived")
    thread_id = item.thread_id
    base = live_server.url

    # 1. The agent continues the thread in private from the workspace.
    sign_in(page, live_server, agent, f"/agent/escalations/{item.id}")
    page.locator("#followup-start summary").click()
    page.get_by_label("First message to the author").fill(PRIVATE_REQUEST)
    page.get_by_role("button", name="Continue in private").click()
    expect(page.locator("main")).to_contain_text(PRIVATE_REQUEST)
    fresh(db)
    conversation = db.scalars(select(PrivateConversation)).one()
    assert page.url == f"{base}/private/{conversation.id}"
    screenshot(page, "private-follow-up.png")

    # 2. Back on the item, a saved reply fills the answer box and asks for details.
    page.goto(f"{base}/agent/escalations/{item.id}")
    search = page.get_by_role("searchbox", name="Saved replies")
    search.fill("order number")
    matches = page.locator("#saved-reply-matches li")
    expect(matches).to_have_count(1)
    matches.first.get_by_role("link", name="Insert").click()
    expect(page.locator("#agent-body")).to_have_value(
        "Hi mia, we have continued “My parcel never arrived” in private."
    )
    screenshot(page, "saved-reply-inserted.png")
    page.locator("#answer-box").get_by_role("button").first.click()
    expect(page.locator("main")).to_contain_text("waiting", ignore_case=True)

    # The public thread says where the conversation went, never what was written there.
    anonymous = browser.new_context(locale="en-GB").new_page()
    anonymous.goto(f"{base}/t/{thread_id}")
    expect(anonymous.locator("main")).to_contain_text("Continued in private with the support team.")
    expect(anonymous.locator("main")).to_contain_text("we have continued")
    assert "7741-22" not in anonymous.content()
    anonymous.context.close()

    # 3. The agent publishes a known issue.
    page.goto(f"{base}/b/{brand.slug}/agent/known-issues")
    page.get_by_label("Title").fill(ISSUE_TITLE)
    page.get_by_label("Summary").fill("Use the mobile app meanwhile: it is not affected.")
    page.get_by_label("Status").select_option("identified")
    page.get_by_label("Match terms").fill("502, cannot sign in")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(ISSUE_TITLE)
    fresh(db)
    issue = db.scalars(select(KnownIssue)).one()

    # 4. The member: the private message's notice, the banner, the suggestion while asking.
    member_context = browser.new_context(locale="en-GB")
    member = member_context.new_page()
    member.set_default_timeout(10_000)
    sign_in(member, live_server, customer, "/notifications")
    expect(member.locator("main")).to_contain_text(
        "The support team wrote to you in private about “My parcel never arrived”"
    )
    member.goto(f"{base}/b/{brand.slug}")
    banner = member.get_by_role("region", name="Known issues").first
    expect(banner).to_contain_text(ISSUE_TITLE)
    member.goto(f"{base}/b/{brand.slug}/ask/new")
    member.locator("#field-title").fill("Error 502 every time I try to log in")
    suggestion = member.locator(".known-issue-suggestion")
    expect(suggestion).to_have_count(1)
    expect(suggestion).to_contain_text(ISSUE_TITLE)
    # Known issues come before the answers that may help.
    expect(member.locator("#suggestions > div").first).to_have_class(
        "suggestions known-issue-suggestions"
    )
    screenshot(member, "known-issue-suggestion.png")
    suggestion.get_by_role("button", name="Notify me when it is fixed").click()
    expect(suggestion).to_contain_text("We will tell you when it is fixed.")
    fresh(db)
    assert db.get(KnownIssueFollower, (issue.id, customer.id)) is not None

    # 5. The agent marks it fixed; the worker tells the member once.
    page.goto(f"{base}/agent/known-issues/{issue.id}")
    page.locator("#update-status").select_option("fixed")
    page.locator("#update-body").fill("A configuration change was rolled back.")
    page.get_by_role("button", name="Post the update").click()
    expect(page.locator("main")).to_contain_text("A configuration change was rolled back.")
    drain(worker)
    member.goto(f"{base}/notifications")
    expect(member.locator("main")).to_contain_text(f"Fixed: “{ISSUE_TITLE}”")
    member_context.close()
    fresh(db)
    fixed_notices = db.scalars(
        select(Notification).where(
            Notification.user_id == customer.id, Notification.kind == NotificationKind.KNOWN_ISSUE
        )
    ).all()
    assert len(fixed_notices) == 1
    # The saved reply went out as the agent's public answer and was counted once.
    answers = db.scalars(select(Post.body_source).where(Post.thread_id == thread_id)).all()
    assert any("we have continued" in body for body in answers)
    assert db.scalars(select(SavedReply.usage_count)).one() == 1
    # The private words are on the conversation's page only: not in any post of the thread.
    assert not any("7741-22" in body for body in answers)
