"""The list pages cost the same number of SQL statements for 3 items as for 30: whatever a
page shows per item is loaded in a fixed number of queries, not one (or more) per item. The
pages read most (a thread, a forum's question list, search) cost at most six statements for
a visitor and for a signed-in member, whatever the number of answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from community import voting
from community.core.db import make_session_factory
from community.core.models import Notification, Post, PostComment, Role, Thread, User
from community.core.settings import Settings
from community.worker import Worker
from crowdservice import agent
from moderation import queue
from moderation.models import FlagReason
from tests.conftest import (
    PASSWORD,
    QA,
    announce_published,
    csrf_token,
    drain,
    fresh,
    log_in,
)
from tests.crowdservice.helpers import escalated

UserFactory = Callable[..., User]
FEW, MANY = 3, 30
# Round trips to PostgreSQL were 61% of the thread page's busy time under load (issue 14).
PAGE_BUDGET = 6


@pytest.fixture
def browser(client: TestClient) -> TestClient:
    """The suite's app: strict queries (a template's lazy load fails the page) and no view
    flush on a timer, whose statements would land in the counts (tests/conftest.py)."""
    return client


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _statements(browser: TestClient, engine: Engine, path: str) -> list[str]:
    # A first request fills the per-app caches (the site's brand) so both counts leave them out.
    assert browser.get(path).status_code == 200
    with counting(engine) as statements:
        page = browser.get(path)
    assert page.status_code == 200, page.text[:500]
    return statements


def _same_for_few_and_many(
    browser: TestClient, engine: Engine, path: str, add: Callable[[int], None]
) -> None:
    add(FEW)
    few = _statements(browser, engine, path)
    add(MANY - FEW)
    many = _statements(browser, engine, path)
    assert len(many) == len(few), "\n".join(many)


def _members(make_user: UserFactory, count: int, role: Role = Role.MEMBER) -> list[User]:
    return [make_user(f"m{uuid.uuid4().hex[:8]}", role=role) for _ in range(count)]


def _signed_in(browser: TestClient, make_user: UserFactory, role: Role) -> User:
    user = make_user(f"{role.value}{uuid.uuid4().hex[:6]}", role=role)
    log_in(browser, user.username, PASSWORD)
    return user


def test_question_list(browser: TestClient, engine: Engine, qa: QA, make_user: UserFactory) -> None:
    def add(count: int) -> None:
        for asker in _members(make_user, count):
            qa.ask(asker, title=f"Roaming question from {asker.username}", tags=["roaming"])

    _same_for_few_and_many(browser, engine, "/b/acme/mobile", add)


def test_search_page(
    browser: TestClient,
    engine: Engine,
    settings: Settings,
    qa: QA,
    make_user: UserFactory,
) -> None:
    worker = Worker(settings, make_session_factory(engine))

    def add(count: int) -> None:
        for asker in _members(make_user, count):
            qa.ask(asker, title=f"Roaming charges abroad for {asker.username}")
        drain(worker)

    path = "/b/acme/search?scope=community&q=roaming"
    _same_for_few_and_many(browser, engine, path, add)
    # A real search, showing more than the first few results.
    page = browser.get(path).text
    assert "reduced mode" not in page
    assert page.count("<mark>Roaming</mark> charges abroad for") > FEW


def test_thread_page(browser: TestClient, engine: Engine, qa: QA, make_user: UserFactory) -> None:
    thread = qa.ask(make_user("asker"))

    def add(count: int) -> None:
        for helper in _members(make_user, count):
            qa.answer(helper, thread)

    _same_for_few_and_many(browser, engine, f"/t/{thread.id}", add)


def _within_budget(browser: TestClient, engine: Engine, path: str, who: str) -> None:
    # SQLite's explicit BEGIN is left out, as psycopg's is on PostgreSQL (the driver sends it,
    # so the listener never sees it): the budget counts the same statements on both.
    statements = [s for s in _statements(browser, engine, path) if s.strip() != "BEGIN"]
    assert len(statements) <= PAGE_BUDGET, f"{who} {path}:\n" + "\n".join(statements)


def test_read_pages_cost_at_most_six_statements_for_visitors_and_members(
    browser: TestClient, engine: Engine, db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"), title="Roaming stopped after the update")
    helpers = _members(make_user, 3)
    pages = (f"/t/{thread.id}", "/b/acme/mobile", "/b/acme/search?scope=community&q=roaming")
    answers: list[Post] = []
    for count in (1, 50):
        while len(answers) < count:
            answers.append(qa.answer(helpers[len(answers) % len(helpers)], thread))
        browser.cookies.clear()
        for path in pages:
            _within_budget(browser, engine, path, f"a visitor, {count} answers:")
        member = _signed_in(browser, make_user, Role.MEMBER)
        # The member's own marks are part of the page (votes, helped, watching).
        voting.cast_vote(db, member, answers[0].id, 1)
        db.commit()
        for path in pages:
            _within_budget(browser, engine, path, f"a member, {count} answers:")


def test_agent_queue(
    browser: TestClient, engine: Engine, db: Session, qa: QA, make_user: UserFactory
) -> None:
    _signed_in(browser, make_user, Role.AGENT)

    def add(count: int) -> None:
        for asker in _members(make_user, count):
            escalated(db, qa, asker, f"No signal since Monday for {asker.username}")

    _same_for_few_and_many(browser, engine, "/b/acme/agent", add)


def test_agent_queue_longer_than_a_page_costs_the_same_within_the_budget(
    browser: TestClient, engine: Engine, db: Session, qa: QA, make_user: UserFactory
) -> None:
    """A page of the queue and its counts, whatever the queue's length: the counts are one
    grouped statement and the page one more, never a row per escalation."""
    _signed_in(browser, make_user, Role.AGENT)
    made = 0
    counted: dict[int, list[int]] = {}
    for size in (FEW, agent.PAGE_SIZE + 10):
        for asker in _members(make_user, size - made):
            escalated(db, qa, asker, f"No signal since Monday for {asker.username}")
        made = size
        for path in ("/b/acme/agent", "/b/acme/agent?page=2", "/b/acme/agent?scope=breached"):
            _within_budget(browser, engine, path, f"an agent, {size} escalations:")
        pages = ("/b/acme/agent", "/b/acme/agent?page=2")
        counted[size] = [len(_statements(browser, engine, path)) for path in pages]
    assert counted[FEW] == counted[agent.PAGE_SIZE + 10]


def test_moderation_queue(
    browser: TestClient, engine: Engine, db: Session, qa: QA, make_user: UserFactory
) -> None:
    _signed_in(browser, make_user, Role.MODERATOR)
    thread: Thread = qa.ask(make_user("asker"))
    flagger = make_user("flagger")

    def add(count: int) -> None:
        for helper in _members(make_user, count):
            answer = qa.answer(helper, thread, f"Buy cheap watches from {helper.username}.")
            queue.flag(db, flagger, answer, FlagReason.SPAM, note="see this")
            db.commit()

    _same_for_few_and_many(browser, engine, "/b/acme/mod/flagged", add)


def test_a_signed_in_reader_s_user_row_is_read_once(
    browser: TestClient, engine: Engine, qa: QA, make_user: UserFactory
) -> None:
    """The row the viewer was loaded from serves the page too: three statements in all for a
    member's thread page, none of them a second read of the user."""
    thread = qa.ask(make_user("asker"), title="Roaming stopped after the update")
    _signed_in(browser, make_user, Role.MEMBER)
    path = f"/t/{thread.id}"
    assert browser.get(path).status_code == 200
    with counting(engine) as statements:
        page = browser.get(path)
    assert page.status_code == 200
    assert "Post your answer" in page.text  # served as the member, not as a visitor
    user_reads = [s for s in statements if s.lstrip().startswith("SELECT users.")]
    assert not user_reads, "\n".join(user_reads)
    # The viewer; the thread with its KB banner; the posts with the member's marks. SQLite's
    # BEGIN aside (psycopg sends PostgreSQL's itself).
    sent = [s for s in statements if s.strip() != "BEGIN"]
    assert len(sent) == 3, "\n".join(sent)
    # A write attaches the same row: no second read of the user either.
    token = csrf_token(browser, path)
    with counting(engine) as statements:
        watched = browser.post(
            f"/t/{thread.id}/watch", data={"csrf_token": token}, follow_redirects=False
        )
    assert watched.status_code == 303, watched.text[:300]
    assert not [s for s in statements if s.lstrip().startswith("SELECT users.")]


def test_a_thread_without_comments_reads_no_comments(
    browser: TestClient, engine: Engine, db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"), title="Roaming stopped after the update")
    answer = qa.answer(make_user("helper"), thread, "Turn data roaming on again.")
    path = f"/t/{thread.id}"
    for who in ("a visitor", "a member"):
        if who == "a member":
            _signed_in(browser, make_user, Role.MEMBER)
        statements = _statements(browser, engine, path)
        assert not [s for s in statements if s.startswith("SELECT post_comments.")], who
    db.add(PostComment(post_id=answer.id, body_html="<p>Worked for me.</p>", score=2))
    db.commit()
    with counting(engine) as statements:
        page = browser.get(path)
    assert len([s for s in statements if s.startswith("SELECT post_comments.")]) == 1
    assert "Worked for me." in page.text


# --- writes ----------------------------------------------------------------------------------

# The two writes of issue 14 (bench/bench_writes.py times them) cost the same whatever the thread's
# size and however many people watch it. A vote: the session with the member (the route attaches
# that row), the post with its thread and the member's vote, the vote, the reputation event, the
# post's counters, the milestone's outbox event, and at commit the thread's search event (found
# waiting or added, one INSERT) and the author's reputation. A new answer: the session with the
# member, the thread, the filters (recent posts, blocked patterns), the post (inserted visible:
# it passed them), the watch, and at commit the thread's counters, two outbox events in one
# executemany (the thread's search update, and the announcement that has the worker tell the
# asker and the watchers, and record an invited expert's answer), and last the forum's counters,
# the row every answer in the forum locks (community.core.at_commit). Nothing in either reads or
# writes a row per watcher.
VOTE_BUDGET, ANSWER_BUDGET = 8, 9


def _write(engine: Engine, send: Callable[[], Any]) -> list[str]:
    with counting(engine) as statements:
        response = send()
    assert response.status_code in (200, 303), response.text[:500]
    # As for the pages: SQLite's explicit BEGIN (IMMEDIATE, for a write) is left out.
    return [s for s in statements if not s.strip().startswith("BEGIN")]


def test_a_vote_and_a_new_answer_cost_the_same_on_a_small_and_a_big_thread(
    browser: TestClient, engine: Engine, db: Session, qa: QA, make_user: UserFactory
) -> None:
    member = _signed_in(browser, make_user, Role.MEMBER)
    helpers = _members(make_user, MANY)
    warm, small, big = (qa.ask(make_user(f"asker{n}")) for n in range(3))
    last: dict[int, Post] = {}
    for thread, count in ((warm, 1), (small, FEW), (big, MANY)):
        for helper in helpers[:count]:  # answering watches the thread: all hear of new answers
            last[thread.id] = qa.answer(helper, thread)
    token = csrf_token(browser, f"/t/{small.id}")
    costs: dict[int, tuple[list[str], list[str]]] = {}
    for thread in (warm, small, big):  # the first fills the app's caches (the brand, filters)
        vote = _write(
            engine,
            lambda thread=thread: browser.post(
                f"/posts/{last[thread.id].id}/vote",
                data={"value": "1"},
                headers={"HX-Request": "true", "X-CSRF-Token": token},
            ),
        )
        answer = _write(
            engine,
            lambda thread=thread: browser.post(
                f"/t/{thread.id}/answers",
                data={"body": f"Reset the network settings of thread {thread.id}."},
                headers={"X-CSRF-Token": token},
                follow_redirects=False,
            ),
        )
        costs[thread.id] = (vote, answer)
    (small_vote, small_answer), (big_vote, big_answer) = costs[small.id], costs[big.id]
    assert len(big_vote) == len(small_vote) <= VOTE_BUDGET, "\n".join(big_vote)
    assert len(big_answer) == len(small_answer) <= ANSWER_BUDGET, "\n".join(big_answer)
    for write in (*big_vote, *big_answer):
        assert not write.lstrip().startswith(("SELECT users", "INSERT INTO notifications")), write
        assert "expert_invitations" not in write, write  # the worker's, after the announcement
    # The forum's row, which every answer in the forum locks, is written last: held from its
    # UPDATE to the COMMIT only, after the thread's counters and the outbox events about it.
    assert big_answer[-1].lstrip().startswith("UPDATE forums"), big_answer
    assert big_answer[-2].lstrip().startswith("INSERT INTO outbox_events"), big_answer
    assert big_answer[-3].lstrip().startswith("UPDATE threads"), big_answer
    # The answer passed the filters, so it was inserted visible, not inserted and then updated.
    assert not [s for s in big_answer if s.lstrip().startswith("UPDATE posts")], big_answer
    # ... and once the worker announced it, the big thread's asker and all its watchers heard
    # of the member's answer.
    announce_published(db)
    fresh(db)
    mine = db.scalars(
        select(Post.id).where(Post.thread_id == big.id, Post.author_id == member.id)
    ).one()
    told = db.scalars(select(Notification.user_id).where(Notification.post_id == mine)).all()
    assert sorted(told) == sorted([big.author_id, *(h.id for h in helpers)])
