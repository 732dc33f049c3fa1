"""The support workspace in Chromium: a member's question goes to the support team from the
thread page, an agent signs in, finds it in the queue, claims it and answers it; the answer is
on the public thread as an official answer, and the asker accepts it from their own browser."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.models import Post, Role, Thread, User
from crowdservice.models import Escalation, EscalationReason, EscalationStatus
from tests.browser.conftest import PageProblems, WatchedBrowser
from tests.conftest import PASSWORD, QA, LiveServer, fresh

pytestmark = pytest.mark.browser

TITLE = "My eSIM stopped working after the update"
ANSWER = "Open **Settings > Mobile data** and turn the eSIM line off and on again."


def sign_in(page: Page, live_server: LiveServer, user: User, next_path: str) -> None:
    """Log in through the form; `next_path` may redirect on (the caller checks where)."""
    page.goto(f"{live_server.url}/login?next={quote(next_path)}")
    page.get_by_label("Username or e-mail").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("status")).to_contain_text(f"Signed in as {user.display_name}.")


def test_an_agent_answers_an_escalated_question_and_the_asker_accepts_it(
    page: Page,
    problems: PageProblems,
    browser: WatchedBrowser,
    live_server: LiveServer,
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
) -> None:
    asker = make_user("asker_ann")
    agent = make_user("agent_ada", role=Role.AGENT)
    thread = qa.ask(asker, title=TITLE)
    thread_id = thread.id
    thread_url = f"{live_server.url}/t/{thread_id}"

    # The asker calls in the support team from the thread page, in her own browser.
    asker_context = browser.new_context(locale="en-GB")
    try:
        asker_page = asker_context.new_page()
        asker_page.set_default_timeout(10_000)
        asker_problems = browser.problems.of(asker_page)
        sign_in(asker_page, live_server, asker, f"/t/{thread_id}")
        expect(asker_page).to_have_url(thread_url)
        asker_page.get_by_role("button", name="I need help from the support team").click()
        expect(asker_page.locator("#support-note")).to_contain_text(
            "A support agent has been notified."
        )
        expect(asker_page).to_have_url(thread_url)
        expect(
            asker_page.get_by_role("button", name="I need help from the support team")
        ).to_have_count(0)
        fresh(db)
        item = db.scalars(select(Escalation).where(Escalation.thread_id == thread_id)).one()
        assert (item.reason, item.status) == (
            EscalationReason.AUTHOR_REQUEST,
            EscalationStatus.OPEN,
        )
        item_id = item.id

        # The agent signs in and lands on the brand's queue.
        sign_in(page, live_server, agent, "/agent")
        expect(page).to_have_url(f"{live_server.url}/b/acme/agent")
        expect(page.get_by_role("heading", level=1)).to_have_text("Support queue")
        row = page.locator(f"#escalation-{item_id}")
        expect(row).to_contain_text(TITLE)
        expect(row).to_contain_text("left")
        expect(row).to_contain_text("Waiting for an agent")
        expect(page.locator("#count-open")).to_have_text("1")

        # Opens the item, claims it.
        row.get_by_role("link", name=TITLE).click()
        expect(page).to_have_url(f"{live_server.url}/agent/escalations/{item_id}")
        expect(page.locator("#item-title")).to_have_text(TITLE)
        expect(page.locator("#item-agent")).to_have_text("nobody yet")
        page.get_by_role("button", name="Claim").click()
        expect(page.get_by_role("status").filter(has_text="It is yours.")).to_be_visible()
        expect(page.locator("#item-agent")).to_have_text(agent.display_name)
        expect(page.get_by_role("button", name="Claim")).to_have_count(0)

        # Types the answer and submits it.
        page.get_by_label("Public answer (Markdown)").fill(ANSWER)
        page.get_by_role("button", name="Answer publicly").click()
        expect(
            page.get_by_role("status").filter(has_text="Your answer is on the thread.")
        ).to_be_visible()
        expect(page.locator("#item-status")).to_have_text("Answered by the support team")
        fresh(db)
        official = db.scalars(
            select(Post).where(Post.thread_id == thread_id, Post.is_question.is_(False))
        ).one()
        assert official.is_official and official.author_id == agent.id
        official_id = official.id
        card = page.locator(f"#post-{official_id}")
        expect(card.locator(".badge.official")).to_have_text("Official answer")

        # The public thread shows the official answer.
        page.get_by_role("link", name="Open the public thread").click()
        expect(page).to_have_url(thread_url)
        public_card = page.locator(f"#post-{official_id}")
        expect(public_card.locator(".badge.official")).to_have_text("Official answer")
        expect(public_card.locator(".post-body strong")).to_have_text("Settings > Mobile data")

        # The asker sees it and accepts it.
        asker_page.reload()
        answer_card = asker_page.locator(f"#post-{official_id}")
        expect(answer_card.locator(".badge.official")).to_have_text("Official answer")
        expect(answer_card).to_contain_text("turn the eSIM line off and on again")
        with asker_page.expect_response(
            lambda response: (
                response.request.method == "POST"
                and response.url.endswith(f"/posts/{official_id}/accept")
            )
        ) as accepted:
            answer_card.get_by_role("button", name="Accept this answer").click()
        assert accepted.value.ok
        accepted_card = asker_page.get_by_role("region", name="Accepted answer")
        expect(accepted_card).to_have_id(f"post-{official_id}")
        expect(accepted_card.locator(".badge.ok")).to_have_text("Accepted answer")
        expect(accepted_card.locator(".badge.ok svg.icon-check")).to_have_count(1)
        expect(accepted_card.locator(".badge.official")).to_have_text("Official answer")
        assert asker_problems.messages == []
    finally:
        asker_context.close()

    fresh(db)
    solved = db.get(Thread, thread_id)
    assert solved is not None and solved.accepted_post_id == official_id
    answered = db.get(Escalation, item_id)
    assert answered is not None
    assert answered.assigned_agent_id == agent.id and answered.first_response_at is not None
    assert problems.messages == []
