"""The knowledge base in Chromium: suggestions while asking (and the deflection they record),
search as you type, and an agent turning a thread into a published article that a reader
finds and rates."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, Request, expect
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community import voting
from community.core.db import make_session_factory
from community.core.models import Role, Thread, User
from community.core.settings import Settings
from community.worker import Worker
from kb.models import Article, ArticleStatus, DeflectionEvent
from tests.browser.conftest import BrowserProblems, PageProblems, WatchedBrowser
from tests.conftest import PASSWORD, QA, LiveServer, drain, fresh

pytestmark = pytest.mark.browser

UserFactory = Callable[..., User]

ROUTER_TITLE = "Router reboots every night at midnight"
ROUTER_FIX = "Turn off the scheduled reboot under Settings > Power."
E_MAIL = "maria@example.com"


# --- helpers ---------------------------------------------------------------------------------


def solved_and_indexed(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
    title: str = ROUTER_TITLE,
) -> Thread:
    """A community solution: an accepted answer with two upvotes, promoted and indexed."""
    asker, helper = make_user("router_asker"), make_user("router_helper")
    thread = qa.ask(
        asker, title=title, body="It restarts at 00:00 sharp, every night.", tags=["router"]
    )
    reply = qa.answer(helper, thread, ROUTER_FIX)
    for index in range(2):
        voting.cast_vote(db, make_user(f"router_fan{index}"), reply.id, 1)
    voting.accept(db, asker, reply.id)
    db.commit()
    drain(Worker(settings, make_session_factory(engine)))
    return thread


def sign_in(page: Page, live_server: LiveServer, user: User, next_path: str = "/") -> None:
    """Log in through the form and land on `next_path`."""
    page.goto(f"{live_server.url}/login?next={quote(next_path)}")
    page.get_by_label("Username or e-mail").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("status")).to_contain_text(f"Signed in as {user.display_name}.")
    expect(page).to_have_url(re.compile(re.escape(live_server.url + next_path) + "(#.*)?$"))


@contextmanager
def second_browser(browser: WatchedBrowser) -> Iterator[PageProblems]:
    """Another person: a new context (own cookies) whose page records its problems too."""
    context = browser.new_context(locale="en-GB")
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        yield browser.problems.of(page)
    finally:
        context.close()


def page_csrf_token(page: Page) -> str | None:
    return page.locator('meta[name="csrf-token"]').get_attribute("content")


def deflections(db: Session, *, attempts: int = 25) -> list[DeflectionEvent]:
    """The deflection rows, waiting a little: sendBeacon is fire-and-forget."""
    rows: list[DeflectionEvent] = []
    for _ in range(attempts):
        fresh(db)
        rows = list(db.scalars(select(DeflectionEvent)))
        if rows:
            return rows
        time.sleep(0.2)
    return rows


def article_from(db: Session, thread_id: int) -> Article:
    fresh(db)
    return db.scalars(select(Article).where(Article.source_thread_id == thread_id)).one()


def is_search(request: Request) -> bool:
    return request.method == "GET" and "/b/acme/search?" in request.url


# --- 1. self-service while asking ------------------------------------------------------------


def test_a_suggestion_while_asking_opens_in_a_new_tab_and_records_a_deflection(
    page: Page,
    problems: PageProblems,
    browser_problems: BrowserProblems,
    live_server: LiveServer,
    make_user: UserFactory,
    qa: QA,
    db: Session,
    settings: Settings,
    engine: Engine,
) -> None:
    thread = solved_and_indexed(db, qa, make_user, settings, engine)
    thread_id = thread.id
    member = make_user("member_mo")
    typed = "router keeps rebooting at night"

    sign_in(page, live_server, member, "/b/acme/ask/new")
    ask_url = page.url
    title = page.get_by_label("Title")
    with page.expect_response(
        lambda response: "/b/acme/kb/suggest?" in response.url and "night" in response.url
    ):
        title.press_sequentially(typed, delay=15)
    suggestions = page.locator("#suggestions").get_by_role("region", name="Answers that may help")
    link = suggestions.get_by_role("link", name=ROUTER_TITLE)
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", f"/t/{thread_id}")
    expect(link).to_have_attribute("target", "_blank")

    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.set_default_timeout(10_000)
    tab.wait_for_load_state()
    expect(tab).to_have_url(f"{live_server.url}/t/{thread_id}")
    # The tab's context is watched, so the tab was from its first load (console, CSP).
    tab_problems = browser_problems.of(tab)
    expect(tab.get_by_role("heading", level=1)).to_have_text(ROUTER_TITLE)
    expect(tab.get_by_role("region", name="Accepted answer")).to_contain_text(ROUTER_FIX)

    rows = deflections(db)
    assert len(rows) == 1, "the click on the suggestion recorded no deflection"
    event = rows[0]
    assert event.user_id == member.id
    assert event.entry_type == "solution"
    assert event.entry_id == thread_id
    assert event.query == typed

    # The question being written is still there in the first tab.
    assert page.url == ask_url
    expect(title).to_have_value(typed)
    assert tab_problems.messages == []
    tab.close()
    assert problems.messages == []


# --- 2. search as you type -------------------------------------------------------------------


def test_search_as_you_type_updates_the_results_in_place(
    page: Page,
    problems: PageProblems,
    live_server: LiveServer,
    make_user: UserFactory,
    qa: QA,
    db: Session,
    settings: Settings,
    engine: Engine,
) -> None:
    thread_id = solved_and_indexed(db, qa, make_user, settings, engine).id

    page.goto(f"{live_server.url}/b/acme/search")
    expect(page.locator("#results")).to_contain_text("Type a few words about your problem")
    page.evaluate("window.samePage = true")
    box = page.get_by_role("searchbox", name="Search")
    with page.expect_request(is_search) as searched:
        box.press_sequentially("router rebot", delay=15)
    assert searched.value.headers.get("hx-request") == "true"

    results = page.locator("#results")
    link = results.get_by_role("link", name=ROUTER_TITLE)
    expect(link).to_have_attribute("href", f"/t/{thread_id}")
    expect(link.locator("mark").first).to_have_text(re.compile("router", re.IGNORECASE))
    expect(results).to_contain_text("1 result")
    expect(page).to_have_url(re.compile(r"/b/acme/search\?(.*&)?q=router(\+|%20)rebot(&|$)"))
    expect(box).to_have_value("router rebot")
    expect(page.get_by_role("heading", level=1)).to_have_text("Search")
    expect(page.locator("#results")).to_have_count(1)  # swapped, not nested
    assert page.evaluate("window.samePage") is True  # no full navigation
    assert problems.messages == []


# --- 3. an agent curates, a reader rates ------------------------------------------------------


def test_agent_writes_redacts_and_publishes_an_article_that_a_reader_rates(
    page: Page,
    problems: PageProblems,
    browser: WatchedBrowser,
    live_server: LiveServer,
    make_user: UserFactory,
    qa: QA,
    db: Session,
    settings: Settings,
    engine: Engine,
) -> None:
    asker, helper = make_user("router_asker"), make_user("router_helper")
    thread = qa.ask(
        asker,
        title=ROUTER_TITLE,
        body=f"It restarts at 00:00 sharp. If you know more, write to {E_MAIL} please.",
        tags=["router"],
    )
    thread_id = thread.id
    qa.answer(helper, thread, ROUTER_FIX)
    agent = make_user("agent_ada", role=Role.AGENT)

    # The agent starts from the thread page.
    sign_in(page, live_server, agent, f"/t/{thread_id}")
    page.get_by_role("link", name="Write a KB article from this thread").click()
    expect(page).to_have_url(f"{live_server.url}/b/acme/kb/new?thread={thread_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("New knowledge base article")
    warning = page.get_by_role("alert")
    expect(warning).to_contain_text("personal data")
    expect(warning.locator("code").first).to_have_text(E_MAIL)
    expect(page.get_by_label("Title")).to_have_value(ROUTER_TITLE)
    expect(page.get_by_label("Article (Markdown)")).to_contain_text(E_MAIL)
    expect(page.get_by_role("button", name="Save as it is")).to_be_visible()
    expect(page.get_by_role("button", name="Save draft")).to_have_count(0)

    page.get_by_role("button", name="Redact and save").click()
    expect(page.get_by_role("status")).to_contain_text("The draft is saved.")
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/kb/articles/\d+$"))
    article_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_role("heading", level=1)).to_have_text(ROUTER_TITLE)
    expect(page.locator(".kb-article")).not_to_contain_text(E_MAIL)
    expect(page.locator(".kb-article")).to_contain_text(ROUTER_FIX)

    draft = article_from(db, thread_id)
    assert draft.id == article_id
    assert draft.status == ArticleStatus.DRAFT
    for text in (draft.title, draft.summary, draft.body_source, draft.body_html):
        assert E_MAIL not in text
    assert "[e-mail removed]" in draft.body_source
    assert ROUTER_FIX in draft.body_source

    curation = page.get_by_role("region", name="Curation")
    expect(curation.get_by_role("button", name="Send for review")).to_be_visible()
    curation.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("The status is updated.")
    expect(page).to_have_url(f"{live_server.url}/kb/articles/{article_id}")
    expect(curation).to_contain_text("Status: Published")
    assert article_from(db, thread_id).status == ArticleStatus.PUBLISHED
    assert problems.messages == []

    drain(Worker(settings, make_session_factory(engine)))

    # A reader (no account) finds it through search and says it helped.
    with second_browser(browser) as reader:
        reader_page = reader.page
        reader_page.goto(f"{live_server.url}/b/acme/search")
        with reader_page.expect_request(is_search):
            reader_page.get_by_role("searchbox", name="Search").press_sequentially(
                "router reboots midnight", delay=15
            )
        found = reader_page.locator("#results").get_by_role("link", name=ROUTER_TITLE)
        expect(found).to_have_attribute("href", f"/kb/articles/{article_id}")
        found.click()
        expect(reader_page).to_have_url(f"{live_server.url}/kb/articles/{article_id}")
        expect(reader_page.get_by_role("heading", level=1)).to_have_text(ROUTER_TITLE)
        expect(reader_page.locator(".kb-article")).not_to_contain_text(E_MAIL)

        feedback = reader_page.locator("#feedback")
        expect(feedback.get_by_role("group", name="Was this helpful?")).to_be_visible()
        reader_page.evaluate("window.samePage = true")
        with reader_page.expect_request(
            lambda request: (
                request.method == "POST"
                and request.url.endswith(f"/kb/articles/{article_id}/feedback")
            )
        ) as sent:
            feedback.get_by_role("button", name="Yes").click()
        assert sent.value.headers.get("hx-request") == "true"
        assert sent.value.headers.get("x-csrf-token") == page_csrf_token(reader_page)
        expect(feedback.get_by_role("status")).to_have_text("Thank you for your feedback.")
        expect(feedback.locator("form")).to_have_count(0)
        expect(reader_page.locator("#feedback")).to_have_count(1)
        assert reader_page.url == f"{live_server.url}/kb/articles/{article_id}"
        assert reader_page.evaluate("window.samePage") is True
        assert reader.messages == []

    rated = article_from(db, thread_id)
    assert (rated.helpful_yes, rated.helpful_no) == (1, 0)
    assert problems.messages == []
