"""Questions and answers in Chromium: asking with a live preview, answering, voting, accepting,
"this helped me too", keyboard use, the same actions without JavaScript, and notifications."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, Request, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from community import threads
from community.core.activity_models import HelpfulMark, Vote
from community.core.models import (
    Brand,
    Forum,
    Notification,
    NotificationKind,
    Post,
    Role,
    Thread,
    ThreadKind,
    ThreadStatus,
    User,
)
from community.core.schemas import AnswerIn, AskIn
from moderation import actions as moderation_actions
from moderation.models import Flag, FlagReason
from tests.browser.conftest import PageProblems, WatchedBrowser
from tests.conftest import PASSWORD, LiveServer, announce_published, fresh

pytestmark = pytest.mark.browser

TITLE = "How do I move my number to an eSIM?"
UPVOTE = "Upvote: this is useful"


# --- setup helpers ---------------------------------------------------------------------------


@pytest.fixture
def acme_forum(db: Session) -> Forum:
    brand = Brand(slug="acme", name="Acme", description="", theme={}, default_locale="en")
    db.add(brand)
    db.flush()
    forum = Forum(brand_id=brand.id, slug="mobile", name="Mobile", description="Phones", position=0)
    db.add(forum)
    db.commit()
    return forum


def ask(db: Session, author: User, forum: Forum, title: str = TITLE) -> Thread:
    thread = threads.ask(
        db,
        author,
        forum,
        AskIn(
            title=title,
            body="I have a new phone and want to keep my number.",
            kind=ThreadKind.QUESTION,
            tags=["esim"],
        ),
        locale="en",
    )
    db.commit()
    return thread


def answer(db: Session, author: User, thread: Thread, body: str) -> Post:
    post = threads.answer(db, author, thread, AnswerIn(body=body))
    db.commit()
    announce_published(db)  # the worker's job right after (the live server runs no worker)
    return post


def question_of(db: Session, thread_id: int) -> Post:
    return db.scalars(select(Post).where(Post.thread_id == thread_id, Post.is_question)).one()


def thread_row(db: Session, thread_id: int) -> Thread:
    """The thread as the server left it."""
    fresh(db)
    thread = db.get(Thread, thread_id)
    assert thread is not None
    return thread


def reputation_of(db: Session, user_id: int) -> int:
    fresh(db)
    user = db.get(User, user_id)
    assert user is not None
    return user.reputation


@contextmanager
def second_browser(browser: WatchedBrowser, *, javascript: bool = True) -> Iterator[PageProblems]:
    """Another person: a new context (own cookies) whose page records its problems too."""
    context = browser.new_context(locale="en-GB", java_script_enabled=javascript)
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        yield browser.problems.of(page)
    finally:
        context.close()


def sign_in(page: Page, live_server: LiveServer, user: User, next_path: str = "/") -> None:
    """Log in through the form and land on `next_path`."""
    page.goto(f"{live_server.url}/login?next={quote(next_path)}")
    page.get_by_label("Username or e-mail").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("status")).to_contain_text(f"Signed in as {user.display_name}.")
    expect(page).to_have_url(re.compile(re.escape(live_server.url + next_path) + "(#.*)?$"))


def page_csrf_token(page: Page) -> str | None:
    """The token the page was served with (htmx sends it from <body hx-headers>)."""
    return page.locator('meta[name="csrf-token"]').get_attribute("content")


def vote_post(post_id: int) -> Callable[[Request], bool]:
    return lambda request: (
        request.method == "POST" and request.url.endswith(f"/posts/{post_id}/vote")
    )


# --- 1. asking -------------------------------------------------------------------------------


def test_ask_with_a_live_preview(
    page: Page,
    problems: PageProblems,
    live_server: LiveServer,
    make_user: Callable[..., User],
    acme_forum: Forum,
    db: Session,
) -> None:
    ann = make_user("asker_ann")
    sign_in(page, live_server, ann, "/b/acme/ask/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ask the community")

    page.get_by_label("Forum", exact=True).select_option(label="Mobile")
    page.get_by_label("Title").fill(TITLE)
    with page.expect_request(lambda request: request.url.endswith("/preview")) as previewed:
        page.get_by_label("Details (Markdown)").fill(
            "It says **bold** things.\n\n<script>window.previewRan = true</script>"
        )
    assert previewed.value.headers.get("x-csrf-token") == page_csrf_token(page)
    preview = page.locator("#ask-preview")
    expect(preview.locator("strong")).to_have_text("bold")
    expect(preview).to_contain_text("<script>window.previewRan = true</script>")
    expect(preview.locator("script")).to_have_count(0)
    assert page.evaluate("window.previewRan === undefined")

    page.get_by_label("This is a").select_option("question")
    page.get_by_label("Tags (optional)").fill("eSIM, porting")
    page.get_by_role("button", name="Post your question").click()

    expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/t/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    expect(page.get_by_role("status")).to_contain_text("Your question is posted.")
    thread_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_role("region", name="Question").locator("strong")).to_have_text("bold")

    thread = thread_row(db, thread_id)
    assert thread.title == TITLE
    assert thread.author_id == ann.id
    assert thread.kind == ThreadKind.QUESTION
    assert thread.forum_id == acme_forum.id
    assert sorted(tag.name for tag in thread.tags) == ["esim", "porting"]
    question = question_of(db, thread_id)
    assert "**bold**" in question.body_source
    assert "<script>" not in question.body_html
    assert problems.messages == []


# --- 2. answering, voting and accepting with htmx --------------------------------------------


def test_answer_vote_and_accept_in_place(
    page: Page,
    problems: PageProblems,
    browser: WatchedBrowser,
    live_server: LiveServer,
    make_user: Callable[..., User],
    acme_forum: Forum,
    db: Session,
) -> None:
    ann, ben, cat = make_user("asker_ann"), make_user("helper_ben"), make_user("early_cat")
    thread = ask(db, ann, acme_forum)
    thread_id = thread.id
    question_id = question_of(db, thread_id).id
    early = answer(db, cat, thread, "Restart the phone first.")
    thread_url = f"{live_server.url}/t/{thread_id}"

    # Ben answers through the form (with its live preview).
    sign_in(page, live_server, ben, f"/t/{thread_id}")
    page.get_by_label("Answer (Markdown)").fill("Open the app: **Account > SIM > eSIM**.")
    expect(page.locator("#answer-preview strong")).to_have_text("Account > SIM > eSIM")
    page.get_by_role("button", name="Post your answer").click()
    expect(page.get_by_role("status")).to_contain_text("Your answer is posted.")
    fresh(db)
    ben_post = db.scalars(
        select(Post).where(Post.thread_id == thread_id, Post.author_id == ben.id)
    ).one()
    expect(page).to_have_url(f"{thread_url}#post-{ben_post.id}")
    expect(page.locator(f"#post-{ben_post.id}")).to_contain_text("Account > SIM > eSIM")

    # Ben upvotes the question in place: no navigation, an htmx request with the CSRF header.
    url_before = page.url
    page.evaluate("window.samePage = true")
    widget = page.locator(f"#vote-{question_id}")
    upvote = widget.get_by_role("button", name=UPVOTE)
    expect(widget.locator(".score")).to_have_text("0")
    expect(upvote).to_have_attribute("aria-pressed", "false")
    with page.expect_request(vote_post(question_id)) as posted:
        upvote.click()
    request = posted.value
    assert request.headers.get("hx-request") == "true"
    assert request.headers.get("x-csrf-token") == page_csrf_token(page)
    expect(widget.locator(".score")).to_have_text("1")
    expect(upvote).to_have_attribute("aria-pressed", "true")
    assert page.url == url_before
    assert page.evaluate("window.samePage") is True
    assert reputation_of(db, ann.id) == 5  # an upvote on a question

    # Clicking again retracts the vote.
    with page.expect_request(vote_post(question_id)):
        upvote.click()
    expect(widget.locator(".score")).to_have_text("0")
    expect(upvote).to_have_attribute("aria-pressed", "false")
    assert page.url == url_before
    assert page.evaluate("window.samePage") is True
    fresh(db)
    assert db.scalars(select(Vote).where(Vote.post_id == question_id)).all() == []
    assert reputation_of(db, ann.id) == 0
    assert problems.messages == []

    # Ann accepts Ben's answer in her own browser.
    ben_reputation = reputation_of(db, ben.id)
    with second_browser(browser) as ann_side:
        ann_page = ann_side.page
        sign_in(ann_page, live_server, ann, f"/t/{thread_id}")
        answers = ann_page.locator("#answers .post")
        expect(answers).to_have_count(2)
        expect(answers.first).to_have_id(f"post-{early.id}")  # equal scores: oldest first
        expect(ann_page.get_by_role("region", name="Accepted answer")).to_have_count(0)

        ann_page.evaluate("window.samePage = true")
        with ann_page.expect_request(
            lambda request: (
                request.method == "POST" and request.url.endswith(f"/posts/{ben_post.id}/accept")
            )
        ) as accepted:
            ann_page.locator(f"#post-{ben_post.id}").get_by_role(
                "button", name="Accept this answer"
            ).click()
        assert accepted.value.headers.get("hx-request") == "true"
        assert accepted.value.headers.get("x-csrf-token") == page_csrf_token(ann_page)
        accepted_card = ann_page.get_by_role("region", name="Accepted answer")
        expect(accepted_card).to_have_id(f"post-{ben_post.id}")
        expect(accepted_card.locator(".badge.ok")).to_have_text("Accepted answer")
        expect(accepted_card.locator(".badge.ok svg.icon-check")).to_have_count(1)
        expect(accepted_card.get_by_role("button", name="Unaccept")).to_be_visible()
        expect(answers.first).to_have_id(f"post-{ben_post.id}")  # the accepted one comes first
        expect(answers).to_have_count(2)
        assert ann_page.evaluate("window.samePage") is True

        ann_page.reload()
        expect(ann_page.locator("header.page-head")).to_contain_text("Solved")
        expect(ann_page.get_by_role("region", name="Accepted answer")).to_have_id(
            f"post-{ben_post.id}"
        )
        assert ann_side.messages == []

    solved = thread_row(db, thread_id)
    assert solved.accepted_post_id == ben_post.id
    assert solved.status == ThreadStatus.SOLVED
    assert reputation_of(db, ben.id) == ben_reputation + 15
    assert problems.messages == []


def test_accepting_in_place_updates_the_solved_badge(
    page: Page,
    problems: PageProblems,
    live_server: LiveServer,
    make_user: Callable[..., User],
    acme_forum: Forum,
    db: Session,
) -> None:
    ann, ben = make_user("asker_ann"), make_user("helper_ben")
    thread = ask(db, ann, acme_forum)
    thread_id = thread.id
    reply = answer(db, ben, thread, "Open the app: Account > SIM > eSIM.")

    sign_in(page, live_server, ann, f"/t/{thread_id}")
    status = page.locator("header.page-head #thread-status")
    expect(status).to_have_text("")
    page.evaluate("window.samePage = true")

    with page.expect_response(
        lambda response: response.url.endswith(f"/posts/{reply.id}/accept")
    ) as accepted:
        page.locator(f"#post-{reply.id}").get_by_role("button", name="Accept this answer").click()
    assert accepted.value.request.headers.get("hx-request") == "true"
    expect(page.get_by_role("region", name="Accepted answer")).to_have_id(f"post-{reply.id}")
    expect(status).to_contain_text("Solved")  # without a reload
    expect(page.locator("#thread-status")).to_have_count(1)

    with page.expect_response(lambda response: response.url.endswith(f"/t/{thread_id}/unaccept")):
        page.get_by_role("button", name="Unaccept").click()
    expect(page.get_by_role("region", name="Accepted answer")).to_have_count(0)
    expect(status).to_have_text("")
    assert page.evaluate("window.samePage") is True
    assert thread_row(db, thread_id).status != ThreadStatus.SOLVED
    assert problems.messages == []


def test_a_refused_action_in_place_says_why(
    page: Page,
    problems: PageProblems,
    live_server: LiveServer,
    make_user: Callable[..., User],
    acme_forum: Forum,
    db: Session,
) -> None:
    ann, ben = make_user("asker_ann"), make_user("helper_ben")
    moderator = make_user("mod_maya", role=Role.MODERATOR)
    thread = ask(db, ann, acme_forum)
    thread_id = thread.id
    reply = answer(db, ben, thread, "Open the app: Account > SIM > eSIM.")
    sign_in(page, live_server, ann, f"/t/{thread_id}")

    # A moderator locks the thread while Ann is reading it.
    moderation_actions.set_locked(db, moderator, thread_row(db, thread_id), True, reason=None)
    db.commit()

    with page.expect_response(
        lambda response: response.url.endswith(f"/posts/{reply.id}/accept")
    ) as refused:
        page.locator(f"#post-{reply.id}").get_by_role("button", name="Accept this answer").click()
    assert refused.value.status == 403
    expect(page.get_by_role("alert")).to_have_text("This thread is locked.")
    expect(page.get_by_role("region", name="Accepted answer")).to_have_count(0)
    assert thread_row(db, thread_id).accepted_post_id is None
    # An answer, not a script failure: nothing on the console.
    assert problems.messages == []


# --- 3. keyboard only ------------------------------------------------------------------------


def test_vote_and_mark_helpful_with_the_keyboard(
    page: Page,
    problems: PageProblems,
    live_server: LiveServer,
    make_user: Callable[..., User],
    acme_forum: Forum,
    db: Session,
) -> None:
    ann, ben, kim = make_user("asker_ann"), make_user("helper_ben"), make_user("keys_kim")
    thread = ask(db, ann, acme_forum)
    thread_id = thread.id
    reply = answer(db, ben, thread, "Open the app: Account > SIM > eSIM.")
    sign_in(page, live_server, kim, f"/t/{thread_id}")

    widget = page.locator(f"#vote-{reply.id}")
    upvote = widget.get_by_role("button", name=UPVOTE)
    upvote.focus()
    expect(upvote).to_be_focused()
    with page.expect_request(vote_post(reply.id)):
        page.keyboard.press("Enter")
    expect(widget.locator(".score")).to_have_text("1")
    expect(upvote).to_have_attribute("aria-pressed", "true")
    expect(upvote).to_be_focused()  # the swap keeps the keyboard user's place
    fresh(db)
    vote = db.scalars(select(Vote).where(Vote.post_id == reply.id)).one()
    assert (vote.user_id, vote.value) == (kim.id, 1)

    helpful = page.locator("#helpful")
    toggle = helpful.get_by_role("button", name="This helped me too")
    expect(helpful).to_contain_text("0 people found this helpful")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.focus()
    expect(toggle).to_be_focused()
    page.keyboard.press("Space")
    expect(helpful).to_contain_text("1 person found this helpful")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(toggle).to_be_focused()
    assert thread_row(db, thread_id).helpful_count == 1
    assert db.scalars(
        select(HelpfulMark.user_id).where(HelpfulMark.thread_id == thread_id)
    ).all() == [kim.id]

    # Space again (focus never left the button) takes the mark back.
    page.keyboard.press("Space")
    expect(helpful).to_contain_text("0 people found this helpful")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    assert thread_row(db, thread_id).helpful_count == 0
    assert db.scalars(select(HelpfulMark).where(HelpfulMark.thread_id == thread_id)).all() == []
    assert problems.messages == []


# --- 4. without JavaScript -------------------------------------------------------------------


def test_vote_and_accept_without_javascript(
    browser: WatchedBrowser,
    live_server: LiveServer,
    make_user: Callable[..., User],
    acme_forum: Forum,
    db: Session,
) -> None:
    ann, ben = make_user("asker_ann"), make_user("helper_ben")
    thread = ask(db, ann, acme_forum)
    thread_id = thread.id
    question_id = question_of(db, thread_id).id
    reply = answer(db, ben, thread, "Open the app: Account > SIM > eSIM.")
    thread_url = f"{live_server.url}/t/{thread_id}"

    with second_browser(browser, javascript=False) as ben_side:
        ben_page = ben_side.page
        sign_in(ben_page, live_server, ben, f"/t/{thread_id}")
        widget = ben_page.locator(f"#vote-{question_id}")
        expect(widget.locator(".score")).to_have_text("0")
        with ben_page.expect_request(vote_post(question_id)) as posted:
            widget.get_by_role("button", name=UPVOTE).click()
        assert posted.value.headers.get("hx-request") is None  # a plain form post
        expect(ben_page).to_have_url(f"{thread_url}#post-{question_id}")
        expect(widget.locator(".score")).to_have_text("1")
        expect(widget.get_by_role("button", name=UPVOTE)).to_have_attribute("aria-pressed", "true")
        assert ben_side.messages == []

    fresh(db)
    vote = db.scalars(select(Vote).where(Vote.post_id == question_id)).one()
    assert (vote.user_id, vote.value) == (ben.id, 1)
    ben_reputation = reputation_of(db, ben.id)

    with second_browser(browser, javascript=False) as ann_side:
        ann_page = ann_side.page
        sign_in(ann_page, live_server, ann, f"/t/{thread_id}")
        expect(ann_page.locator("header.page-head")).not_to_contain_text("Solved")
        with ann_page.expect_request(
            lambda request: (
                request.method == "POST" and request.url.endswith(f"/posts/{reply.id}/accept")
            )
        ) as accepted:
            ann_page.locator(f"#post-{reply.id}").get_by_role(
                "button", name="Accept this answer"
            ).click()
        assert accepted.value.headers.get("hx-request") is None
        expect(ann_page).to_have_url(thread_url)
        expect(ann_page.get_by_role("region", name="Accepted answer")).to_have_id(
            f"post-{reply.id}"
        )
        expect(ann_page.locator("header.page-head")).to_contain_text("Solved")
        assert ann_side.messages == []

    solved = thread_row(db, thread_id)
    assert solved.accepted_post_id == reply.id
    assert reputation_of(db, ben.id) == ben_reputation + 15


# --- 5. notifications ------------------------------------------------------------------------


def test_mention_notification_leads_to_the_answer(
    page: Page,
    problems: PageProblems,
    live_server: LiveServer,
    make_user: Callable[..., User],
    acme_forum: Forum,
    db: Session,
) -> None:
    ann, ben = make_user("asker_ann"), make_user("helper_ben")
    thread = ask(db, ann, acme_forum)
    thread_id = thread.id
    reply = answer(db, ben, thread, "@asker_ann open the app: Account > SIM > eSIM.")

    sign_in(page, live_server, ann, "/")
    bell = page.locator("#notification-count")
    expect(bell.locator(".count")).to_have_text("1")
    expect(bell).to_have_attribute("aria-label", "1 unread notification")

    bell.click()
    expect(page).to_have_url(f"{live_server.url}/notifications")
    expect(page.get_by_role("heading", level=1)).to_have_text("Notifications")
    expect(page.locator(".notification-list li.unread")).to_have_count(1)
    page.get_by_role("button", name=f"{ben.display_name} mentioned you in “{TITLE}”").click()

    expect(page).to_have_url(f"{live_server.url}/t/{thread_id}#post-{reply.id}")
    target = page.locator(f"#post-{reply.id}")
    expect(target).to_contain_text("open the app: Account > SIM > eSIM.")
    expect(target.get_by_role("link", name="@asker_ann")).to_have_attribute("href", "/u/asker_ann")
    expect(page.locator("#notification-count .count")).to_have_count(0)

    page.reload()
    expect(page.locator("#notification-count")).to_have_attribute(
        "aria-label", "0 unread notifications"
    )
    expect(page.locator("#notification-count .count")).to_have_count(0)

    fresh(db)
    notification = db.scalars(select(Notification).where(Notification.user_id == ann.id)).one()
    assert notification.kind == NotificationKind.MENTION
    assert notification.post_id == reply.id
    assert notification.read_at is not None
    assert problems.messages == []


def test_flagging_a_post_in_place_loads_its_form_when_the_menu_opens(
    page: Page,
    problems: PageProblems,
    live_server: LiveServer,
    make_user: Callable[..., User],
    acme_forum: Forum,
    db: Session,
) -> None:
    ann, ben, cat = make_user("asker_ann"), make_user("helper_ben"), make_user("reader_cat")
    thread = ask(db, ann, acme_forum)
    thread_id = thread.id
    reply = answer(db, ben, thread, "Buy cheap watches at my shop, best prices.")

    sign_in(page, live_server, cat, f"/t/{thread_id}")
    page.evaluate("window.samePage = true")
    menu = page.locator(f"#flag-{reply.id}")
    expect(menu.get_by_role("radio")).to_have_count(0)  # not in the page until asked for
    with page.expect_response(
        lambda response: response.url.endswith(f"/posts/{reply.id}/flag")
    ) as loaded:
        menu.locator("summary").click()
    assert loaded.value.request.method == "GET"
    assert loaded.value.request.headers.get("hx-request") == "true"
    menu.get_by_label("Spam", exact=True).check()
    with page.expect_response(
        lambda response: (
            response.request.method == "POST" and response.url.endswith(f"/posts/{reply.id}/flag")
        )
    ):
        menu.get_by_role("button", name="Send flag").click()
    expect(page.get_by_role("status").filter(has_text="Thanks: a moderator")).to_be_visible()
    assert page.evaluate("window.samePage") is True
    fresh(db)
    flags = db.scalars(select(Flag).where(Flag.post_id == reply.id)).all()
    assert [(flag.flagger_id, flag.reason) for flag in flags] == [(cat.id, FlagReason.SPAM)]
    assert problems.messages == []
