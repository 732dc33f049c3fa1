"""Writes that race on a unique key: the second writer waits for the first and then uses its row,
instead of failing on the unique index and losing the post it was saving."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from community import threads
from community.core.activity_models import ThreadWatch
from community.core.db import begin_write, make_session_factory
from community.core.models import Forum, Post, Tag, Thread, User
from community.core.schemas import AnswerIn, AskIn
from tests.conftest import QA, fresh


def _wait_until_blocked(engine: Engine, timeout: float = 10) -> None:
    """Until another connection waits on a lock (PostgreSQL), or a moment (SQLite, whose
    second writer waits in BEGIN IMMEDIATE, which no view shows)."""
    if engine.dialect.name != "postgresql":
        time.sleep(0.5)
        return
    deadline = time.monotonic() + timeout
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            if waiting:
                return
            connection.rollback()
            time.sleep(0.02)
    raise AssertionError("the second writer never waited for the first")


def _overlap(
    engine: Engine, first: Callable[[Session], object], second: Callable[[Session], object]
) -> list[str]:
    """`first` writes and holds its transaction open while `second` runs into the same key;
    then `first` commits. Returns how each ended."""
    factory = make_session_factory(engine)
    outcomes = ["", ""]

    def run_second() -> None:
        with factory() as session:
            begin_write(session)
            try:
                second(session)
                session.commit()
                outcomes[1] = "ok"
            except Exception as exc:
                session.rollback()
                outcomes[1] = f"{type(exc).__name__}: {exc}"

    with factory() as session:
        begin_write(session)
        first(session)
        session.flush()
        racer = threading.Thread(target=run_second)
        racer.start()
        _wait_until_blocked(engine)
        session.commit()
        outcomes[0] = "ok"
    racer.join(timeout=60)
    assert not racer.is_alive()
    return outcomes


def test_one_member_answering_twice_at_once_keeps_both_answers(
    engine: Engine, db: Session, qa: QA, make_user: Callable[..., User]
) -> None:
    thread = qa.ask(make_user("asker"))
    member_id, thread_id = make_user("fast_fingers").id, thread.id

    def answer(body: str) -> Callable[[Session], object]:
        def run(session: Session) -> None:
            member = session.get(User, member_id)
            target = session.get(Thread, thread_id)
            assert member is not None and target is not None
            threads.answer(session, member, target, AnswerIn(body=body))

        return run

    outcomes = _overlap(
        engine,
        answer("Restart the phone, then toggle airplane mode."),
        answer("Also check that the SIM is not locked by a PIN."),
    )
    assert outcomes == ["ok", "ok"]
    fresh(db)
    bodies = set(
        db.scalars(
            select(Post.body_source).where(Post.thread_id == thread_id, Post.author_id == member_id)
        )
    )
    assert bodies == {
        "Restart the phone, then toggle airplane mode.",
        "Also check that the SIM is not locked by a PIN.",
    }
    watches = db.scalar(
        select(func.count()).where(
            ThreadWatch.thread_id == thread_id, ThreadWatch.user_id == member_id
        )
    )
    assert watches == 1


def test_watching_twice_at_once_is_one_watch(
    engine: Engine, db: Session, qa: QA, make_user: Callable[..., User]
) -> None:
    thread = qa.ask(make_user("asker"))
    member_id, thread_id = make_user("watcher").id, thread.id

    def watch(session: Session) -> None:
        member = session.get(User, member_id)
        target = session.get(Thread, thread_id)
        assert member is not None and target is not None
        threads.watch(session, member, target)

    assert _overlap(engine, watch, watch) == ["ok", "ok"]
    fresh(db)
    assert threads.is_watching(db, member_id, thread_id)


def test_two_questions_creating_the_same_new_tag_at_once_share_it(
    engine: Engine, db: Session, forum: Forum, make_user: Callable[..., User]
) -> None:
    forum_id = forum.id
    first_id, second_id = make_user("first_asker").id, make_user("second_asker").id

    def ask(author_id: int, title: str) -> Callable[[Session], object]:
        def run(session: Session) -> None:
            author = session.get(User, author_id)
            target = session.get(Forum, forum_id)
            assert author is not None and target is not None
            data = AskIn(title=title, body=f"{title} Details follow here.", kind="question",
                         tags=["esim-transfer"])  # fmt: skip
            threads.ask(session, author, target, data, locale="en")

        return run

    outcomes = _overlap(
        engine,
        ask(first_id, "Moving my eSIM to a new phone fails"),
        ask(second_id, "eSIM transfer stuck on activating"),
    )
    assert outcomes == ["ok", "ok"]
    fresh(db)
    tags = list(db.scalars(select(Tag).where(Tag.name == "esim-transfer")))
    assert len(tags) == 1
    assert (
        db.scalar(select(func.count()).select_from(Thread).where(Thread.forum_id == forum_id)) == 2
    )


def test_answers_racing_a_first_answer_never_wait_for_each_other_in_a_cycle(
    engine: Engine, db: Session, qa: QA, make_user: Callable[..., User]
) -> None:
    """A thread's first answers change its status, which locks the thread's row before the
    commit; a later answer, which found the thread answered, locks the thread's row and then
    the waiting outbox event about the thread at its commit. Were the event written before the
    thread's counters, the later answer would hold the event and wait for the thread while the
    racing one held the thread and waited for the event (PostgreSQL: deadlock detected, and one
    answer lost)."""
    thread_id = qa.ask(make_user("asker")).id
    ids = {name: make_user(name).id for name in ("first", "racing", "later")}
    factory = make_session_factory(engine)
    outcomes: dict[str, str] = {}
    racing_answered, racing_may_commit = threading.Event(), threading.Event()

    def answer(session: Session, name: str) -> None:
        target = session.get_one(Thread, thread_id)
        member = session.get_one(User, ids[name])
        threads.answer(session, member, target, AnswerIn(body=f"Reset the APN, says {name}."))

    def answer_and_commit(name: str, before_commit: Callable[[], None] | None = None) -> None:
        with factory() as session:
            try:
                begin_write(session)
                answer(session, name)
                if before_commit is not None:
                    before_commit()
                session.commit()
                outcomes[name] = "ok"
            except Exception as exc:
                session.rollback()
                outcomes[name] = f"{type(exc).__name__}: {exc}"

    def hold_racing_open() -> None:
        racing_answered.set()
        assert racing_may_commit.wait(60)

    with factory() as session:
        begin_write(session)
        answer(session, "first")  # the thread becomes answered: its row locked until commit
        racing = threading.Thread(target=answer_and_commit, args=("racing", hold_racing_open))
        racing.start()
        _wait_until_blocked(engine)  # it read the thread open, and waits to change its status
        session.commit()
        outcomes["first"] = "ok"
    assert racing_answered.wait(60)  # it changed the status: the thread's row is its own now
    later = threading.Thread(target=answer_and_commit, args=("later",))
    later.start()
    _wait_until_blocked(engine)  # at its commit, waiting for the racing answer's thread row
    racing_may_commit.set()
    for worker in (racing, later):
        worker.join(timeout=60)
        assert not worker.is_alive()
    assert outcomes == {"first": "ok", "racing": "ok", "later": "ok"}
    fresh(db)
    stored = db.get_one(Thread, thread_id)
    assert stored.reply_count == 3
    assert db.scalar(select(func.count()).select_from(Post).where(Post.thread_id == thread_id)) == 4
