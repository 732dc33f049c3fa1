"""The review queue in Chromium, keyboard only: a moderator clears ten held posts with j/k and
single-key decisions (focus following along), handles several at once by selecting them with x
and submitting the bulk form, and in the flagged queue dismisses flags with r while removing a
post asks first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote

import pytest
from playwright.sync_api import Dialog, Page, Request, Response, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from community import voting
from community.core.audit import AuditLog
from community.core.models import (
    Forum,
    Notification,
    NotificationKind,
    Post,
    Role,
    Thread,
    User,
    Visibility,
)
from community.core.notifications import describe
from moderation import decisions, queue
from moderation.models import Flag, FlagReason, FlagStatus, ItemStatus, Queue, QueueItem
from tests.browser.conftest import PageProblems, WatchedBrowser
from tests.conftest import PASSWORD, QA, LiveServer, fresh

pytestmark = pytest.mark.browser

UserFactory = Callable[..., User]

QUEUE_PATH = "/b/acme/mod/pending"
REJECT_REASON = "Please ask this in the billing forum."


# --- helpers ---------------------------------------------------------------------------------


@dataclass
class Traffic:
    """Every response the page received, and every dialog it opened. Prompts are answered
    with `replies` in turn, then with REJECT_REASON."""

    replies: list[str] = field(default_factory=list)
    # Answers to confirm dialogs in turn (then: cancel).
    confirms: list[bool] = field(default_factory=list)
    responses: list[tuple[int, str]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("response", self._on_response)
        page.on("dialog", self._on_dialog)

    def _on_response(self, response: Response) -> None:
        self.responses.append((response.status, f"{response.request.method} {response.url}"))

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        if dialog.type == "prompt":
            dialog.accept(self.replies.pop(0) if self.replies else REJECT_REASON)
        elif dialog.type == "confirm" and self.confirms and self.confirms.pop(0):
            dialog.accept()
        else:
            dialog.dismiss()

    @property
    def server_errors(self) -> list[tuple[int, str]]:
        return [(status, what) for status, what in self.responses if status >= 500]


@pytest.fixture
def traffic(page: Page) -> Traffic:
    watcher = Traffic()
    watcher.watch(page)
    return watcher


def held_questions(qa: QA, make_user: UserFactory, count: int) -> list[QueueItem]:
    """`count` brand-new members each ask a first question, which the filters hold."""
    for index in range(1, count + 1):
        newcomer = make_user(f"newcomer{index:02d}", trust_level=0)
        thread = qa.ask(newcomer, title=f"Question number {index} from a new member")
        assert thread.visibility == Visibility.PENDING
    fresh(qa.db)
    items = list(
        qa.db.scalars(
            select(QueueItem).where(QueueItem.queue == Queue.PENDING).order_by(QueueItem.id)
        )
    )
    assert len(items) == count
    assert all(item.status == ItemStatus.OPEN for item in items)
    return items


def sign_in_with_keys(page: Page, live_server: LiveServer, user: User, next_path: str) -> None:
    """Log in by typing into the form and pressing Enter; land on `next_path`."""
    page.goto(f"{live_server.url}/login?next={quote(next_path)}")
    page.get_by_label("Username or e-mail").focus()
    page.keyboard.type(user.username)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(f"Signed in as {user.display_name}.")
    expect(page).to_have_url(live_server.url + next_path)
    # The queue's keys work once its deferred script has run, before DOMContentLoaded: a key
    # pressed earlier (a loaded machine) would be lost, as a person's would.
    page.wait_for_load_state("domcontentloaded")


def resolving(item_id: int, decision: str) -> Callable[[Request], bool]:
    return lambda request: (
        request.method == "POST" and request.url.endswith(f"/mod/items/{item_id}/{decision}")
    )


def resolved(item_id: int, decision: str) -> Callable[[Response], bool]:
    return lambda response: resolving(item_id, decision)(response.request)


def decide(page: Page, key: str, item_id: int, decision: str, handled_as: str) -> None:
    """Press the decision's key on the focused item and see it replaced by its outcome."""
    item = page.locator(f"#item-{item_id}")
    expect(item).to_be_focused()
    with page.expect_response(resolved(item_id, decision)) as answered:
        page.keyboard.press(key)
    assert answered.value.status == 200
    assert answered.value.request.headers.get("hx-request") == "true"
    expect(item).to_have_attribute("data-handled", "")
    expect(item).to_have_text(f"Handled: {handled_as}.")


# --- 1. clearing the queue -------------------------------------------------------------------


def test_moderator_clears_ten_items_with_the_keyboard_alone(
    page: Page,
    problems: PageProblems,
    traffic: Traffic,
    live_server: LiveServer,
    make_user: UserFactory,
    qa: QA,
    forum: Forum,
    db: Session,
) -> None:
    items = held_questions(qa, make_user, 10)
    ids = [item.id for item in items]
    post_of = {item.id: item.post_id for item in items}
    moderator = make_user("mod_maya", role=Role.MODERATOR)

    sign_in_with_keys(page, live_server, moderator, QUEUE_PATH)
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("Waiting for approval")
    expect(heading.locator(".badge")).to_have_text("10")
    listed = page.locator("[data-mod-queue] > [data-item]")
    expect(listed).to_have_count(10)
    assert listed.evaluate_all("items => items.map(item => Number(item.dataset.item))") == ids

    def item(number: int) -> str:
        return f"#item-{ids[number - 1]}"

    # j focuses the first item; a approves it and focus moves on to the next.
    page.keyboard.press("j")
    expect(page.locator(item(1))).to_be_focused()
    decide(page, "a", ids[0], "approve", "approved")
    expect(page.locator(item(2))).to_be_focused()
    # The heading's count and the queue tabs follow without a reload.
    expect(heading.locator(".badge")).to_have_text("9")
    expect(page.get_by_role("link", name="Waiting for approval (9)")).to_be_visible()
    decide(page, "a", ids[1], "approve", "approved")

    # Skip item 3, hide item 4; focus goes to item 5. k returns to item 3 (handled ones are
    # stepped over); after deleting it, focus jumps the handled item 4 and lands on item 5.
    expect(page.locator(item(3))).to_be_focused()
    page.keyboard.press("j")
    expect(page.locator(item(4))).to_be_focused()
    decide(page, "h", ids[3], "hide", "hidden")
    expect(page.locator(item(5))).to_be_focused()
    page.keyboard.press("k")
    expect(page.locator(item(3))).to_be_focused()
    decide(page, "d", ids[2], "delete", "deleted")
    expect(page.locator(item(5))).to_be_focused()

    # r asks for the reason sent to the author (a prompt, answered from the keyboard); a blank
    # answer asks again instead of sending a rejection the server refuses.
    traffic.replies = ["   "]
    with page.expect_request(resolving(ids[4], "reject")) as rejecting:
        decide(page, "r", ids[4], "reject", "rejected")
    assert traffic.dialogs == [
        "prompt: Reject: why? (sent to the author)",
        "prompt: Reject: a reason is needed. Why? (sent to the author)",
    ]
    assert parse_qs(rejecting.value.post_data or "")["reason"] == [REJECT_REASON]

    for number in range(6, 11):
        expect(page.locator(item(number))).to_be_focused()
        decide(page, "a", ids[number - 1], "approve", "approved")
    # Every item now says what became of it; focus rests on the last note, and with nothing
    # left to act on, further keys do nothing.
    expect(page.locator("[data-mod-queue] > li")).to_have_text(
        [f"Handled: {word}." for word in ("approved", "approved", "deleted", "hidden", "rejected")]
        + ["Handled: approved."] * 5
    )
    expect(page.locator("[data-mod-queue] [data-item]")).to_have_count(0)
    expect(page.locator(item(10))).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("a")
    expect(page.locator(item(10))).to_be_focused()
    expect(heading.locator(".badge")).to_have_text("0")
    assert len([what for _, what in traffic.responses if "/mod/items/" in what]) == 10

    page.reload()
    expect(page.get_by_text("Nothing waiting here")).to_be_visible()
    expect(heading.locator(".badge")).to_have_text("0")
    expect(page.get_by_role("link", name="Waiting for approval (0)")).to_be_visible()

    # --- what the server recorded ---
    expected = {
        ids[0]: ("approve", Visibility.VISIBLE, "post.shown", None),
        ids[1]: ("approve", Visibility.VISIBLE, "post.shown", None),
        ids[2]: ("delete", Visibility.DELETED, "post.deleted", None),
        ids[3]: ("hide", Visibility.HIDDEN, "post.hidden", None),
        ids[4]: ("reject", Visibility.DELETED, "post.deleted", REJECT_REASON),
        **dict.fromkeys(ids[5:], ("approve", Visibility.VISIBLE, "post.shown", None)),
    }
    fresh(db)
    rows = {row.id: row for row in db.scalars(select(QueueItem).where(QueueItem.id.in_(ids)))}
    entries = db.scalars(select(AuditLog).where(AuditLog.actor_id == moderator.id)).all()
    audit = {entry.target_id: entry for entry in entries}
    assert len(entries) == len(audit) == 10  # one row per action, one action per post
    for item_id, (resolution, visibility, action, reason) in expected.items():
        row = rows[item_id]
        assert (row.status, row.resolution, row.resolved_by_id) == (
            ItemStatus.RESOLVED,
            resolution,
            moderator.id,
        ), item_id
        assert row.resolved_at is not None
        post = db.get(Post, post_of[item_id])
        assert post is not None
        assert post.visibility == visibility, item_id
        assert post.thread.visibility == visibility, item_id
        entry = audit[str(post.id)]
        assert (entry.action, entry.target_type, entry.reason) == (action, "post", reason)
        assert entry.actor_role == Role.MODERATOR.value

    approved = [item_id for item_id, outcome in expected.items() if outcome[0] == "approve"]
    refreshed_forum = db.get(Forum, forum.id)
    assert refreshed_forum is not None
    assert refreshed_forum.thread_count == len(approved) == 7
    assert refreshed_forum.post_count == 7
    visible_threads = db.scalars(
        select(Thread.id).where(Thread.visibility == Visibility.VISIBLE)
    ).all()
    assert len(visible_threads) == 7

    # The rejected author is told why.
    rejected_post = db.get(Post, post_of[ids[4]])
    assert rejected_post is not None
    told = db.scalars(
        select(Notification).where(
            Notification.user_id == rejected_post.author_id,
            Notification.kind == NotificationKind.MODERATION,
        )
    ).one()
    assert REJECT_REASON in describe(told)

    assert traffic.server_errors == []
    assert problems.messages == []


# --- 2. bulk: select with x, submit the bulk form from the keyboard ---------------------------


def test_select_three_with_x_and_approve_them_in_bulk(
    page: Page,
    problems: PageProblems,
    traffic: Traffic,
    live_server: LiveServer,
    make_user: UserFactory,
    qa: QA,
    forum: Forum,
    db: Session,
) -> None:
    items = held_questions(qa, make_user, 4)
    ids = [item.id for item in items]
    moderator = make_user("mod_maya", role=Role.MODERATOR)
    sign_in_with_keys(page, live_server, moderator, QUEUE_PATH)

    boxes = [page.locator(f"#item-{item_id} input[type=checkbox]") for item_id in ids]
    for number in range(3):
        page.keyboard.press("j")
        expect(page.locator(f"#item-{ids[number]}")).to_be_focused()
        page.keyboard.press("x")
        expect(boxes[number]).to_be_checked()
    expect(boxes[3]).not_to_be_checked()
    # x again unselects, x once more selects: a toggle.
    page.keyboard.press("x")
    expect(boxes[2]).not_to_be_checked()
    page.keyboard.press("x")
    expect(boxes[2]).to_be_checked()

    # Back to the first item, then Shift+Tab into the bulk form just above the list.
    page.keyboard.press("k")
    page.keyboard.press("k")
    expect(page.locator(f"#item-{ids[0]}")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Apply")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.locator("#bulk-reason")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    decision = page.get_by_label("With the selected items:")
    expect(decision).to_be_focused()
    page.keyboard.press("ArrowDown")  # the select takes keys: not a queue shortcut
    expect(decision).to_have_value("reject")
    page.keyboard.press("ArrowUp")
    expect(decision).to_have_value("approve")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Apply")).to_be_focused()
    with page.expect_response(
        lambda response: (
            response.request.method == "POST" and response.url.endswith("/mod/items/bulk")
        )
    ) as posted:
        page.keyboard.press("Enter")
    assert posted.value.status == 303

    expect(page).to_have_url(live_server.url + QUEUE_PATH)
    expect(page.locator(".flash")).to_have_text("3 handled.")
    expect(page.get_by_role("heading", level=1).locator(".badge")).to_have_text("1")
    expect(page.locator("[data-mod-queue] > [data-item]")).to_have_count(1)
    expect(page.locator(f"#item-{ids[3]}")).to_be_visible()

    fresh(db)
    rows = {row.id: row for row in db.scalars(select(QueueItem).where(QueueItem.id.in_(ids)))}
    for item_id in ids[:3]:
        row = rows[item_id]
        assert (row.status, row.resolution, row.resolved_by_id) == (
            ItemStatus.RESOLVED,
            "approve",
            moderator.id,
        )
        post = db.get(Post, row.post_id)
        assert post is not None and post.thread.visibility == Visibility.VISIBLE
    assert rows[ids[3]].status == ItemStatus.OPEN
    assert (
        db.scalars(select(AuditLog.action).where(AuditLog.actor_id == moderator.id)).all()
        == ["post.shown"] * 3
    )
    refreshed_forum = db.get(Forum, forum.id)
    assert refreshed_forum is not None and refreshed_forum.thread_count == 3

    assert traffic.dialogs == []
    assert traffic.server_errors == []
    assert problems.messages == []


def test_the_reject_prompt_speaks_the_moderators_language(
    browser: WatchedBrowser,
    live_server: LiveServer,
    make_user: UserFactory,
    qa: QA,
    db: Session,
) -> None:
    [item] = held_questions(qa, make_user, 1)
    moderator = make_user("mod_maya", role=Role.MODERATOR)
    context = browser.new_context(locale="es-ES")
    page = context.new_page()
    page.set_default_timeout(10_000)
    traffic = Traffic(replies=[""])
    traffic.watch(page)
    page.goto(f"{live_server.url}/login?next={quote(QUEUE_PATH)}")
    page.locator("#field-login").fill(moderator.username)
    page.locator("#field-password").fill(PASSWORD)
    page.locator("#field-password").press("Enter")
    expect(page).to_have_url(live_server.url + QUEUE_PATH)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Esperando aprobación")
    page.wait_for_load_state("domcontentloaded")  # the keys' deferred script has run (see above)

    page.keyboard.press("j")
    expect(page.locator(f"#item-{item.id}")).to_be_focused()
    with page.expect_response(resolved(item.id, "reject")) as answered:
        page.keyboard.press("r")
    assert answered.value.status == 200
    expect(page.locator(f"#item-{item.id}")).to_have_attribute("data-handled", "")
    assert traffic.dialogs == [
        "prompt: Rechazar: ¿por qué? (se enviará al autor)",
        "prompt: Rechazar: hace falta un motivo. ¿Por qué? (se enviará al autor)",
    ]
    context.close()


# --- 3. another moderator got there first ----------------------------------------------------


def test_an_item_someone_else_handled_says_so_in_place(
    page: Page,
    problems: PageProblems,
    traffic: Traffic,
    live_server: LiveServer,
    make_user: UserFactory,
    qa: QA,
    db: Session,
) -> None:
    first, second = held_questions(qa, make_user, 2)
    first_id, second_id = first.id, second.id
    moderator = make_user("mod_maya", role=Role.MODERATOR)
    colleague = make_user("mod_colin", role=Role.MODERATOR)
    sign_in_with_keys(page, live_server, moderator, QUEUE_PATH)
    page.keyboard.press("j")
    expect(page.locator(f"#item-{first_id}")).to_be_focused()

    # Colin hides the first item while Maya is looking at it.
    decisions.resolve(db, colleague, first, decisions.Decision.HIDE)
    db.commit()

    with page.expect_response(resolved(first_id, "approve")) as answered:
        page.keyboard.press("a")
    assert answered.value.status == 409
    item = page.locator(f"#item-{first_id}")
    expect(item.get_by_role("alert")).to_have_text(
        f"Already handled by {colleague.display_name} (hidden)."
    )
    expect(item).to_be_focused()
    expect(item).not_to_have_attribute("data-handled", "")

    # Maya moves on to the next item and carries on.
    page.keyboard.press("j")
    decide(page, "a", second_id, "approve", "approved")

    fresh(db)
    handled = db.get(QueueItem, first_id)
    assert handled is not None
    assert (handled.resolution, handled.resolved_by_id) == ("hide", colleague.id)
    assert db.scalars(select(AuditLog.action).where(AuditLog.actor_id == moderator.id)).all() == [
        "post.shown"
    ]
    assert traffic.server_errors == []
    # A refused action is an answer, not a script error: nothing on the console.
    assert problems.messages == []


# --- 4. the flagged queue: r keeps the post, removing it asks first ----------------------------


def test_in_the_flagged_queue_r_dismisses_the_flags_and_removing_a_post_asks_first(
    page: Page,
    problems: PageProblems,
    traffic: Traffic,
    live_server: LiveServer,
    make_user: UserFactory,
    qa: QA,
    db: Session,
) -> None:
    answers = []
    for name in ("ana", "ben"):
        asker = make_user(f"asker_{name}")
        thread = qa.ask(asker, title=f"Router keeps restarting at night ({name})")
        answer = qa.answer(make_user(f"helper_{name}"), thread, f"Update the firmware ({name}).")
        voting.accept(db, asker, answer.id)  # accepted answers, as in the field report
        queue.flag(db, make_user(f"flagger_{name}"), answer, FlagReason.OFF_TOPIC)
        db.commit()
        answers.append(answer)
    fresh(db)
    items = list(
        db.scalars(select(QueueItem).where(QueueItem.queue == Queue.FLAGGED).order_by(QueueItem.id))
    )
    ids = [item.id for item in items]
    moderator = make_user("mod_maya", role=Role.MODERATOR)
    sign_in_with_keys(page, live_server, moderator, "/b/acme/mod/flagged")
    expect(page.locator("#shortcuts-help")).to_contain_text(
        "r Dismiss flags, h Hide post, d Remove post (asks first)"
    )

    page.keyboard.press("j")
    decide(page, "r", ids[0], "approve", "flags dismissed")

    # d asks; cancelling sends nothing and leaves the post and its item as they were.
    item = page.locator(f"#item-{ids[1]}")
    expect(item).to_be_focused()
    page.keyboard.press("d")
    expect(item).not_to_have_attribute("data-handled", "")
    assert traffic.dialogs == [
        "confirm: Remove this post for everyone? Its author and the members who flagged it are "
        "told; a moderator can restore it from the thread."
    ]
    assert not [what for _, what in traffic.responses if what.endswith(f"/{ids[1]}/delete")]
    traffic.confirms = [True]
    with page.expect_request(resolving(ids[1], "delete")) as removing:
        decide(page, "d", ids[1], "delete", "post removed")
    assert parse_qs(removing.value.post_data or "")["confirm"] == ["1"]

    fresh(db)
    kept, removed = (db.get(Post, answer.id) for answer in answers)
    assert kept is not None and kept.visibility == Visibility.VISIBLE
    assert removed is not None and removed.visibility == Visibility.DELETED
    assert sorted(db.scalars(select(Flag.status)).all()) == sorted(
        [FlagStatus.REJECTED, FlagStatus.UPHELD]
    )
    assert traffic.server_errors == []
    assert problems.messages == []
