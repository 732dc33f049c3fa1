"""Votes, accepted answers, helpful marks and reputation, including exact counts under load."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from community import threads, voting
from community.core.activity_models import HelpfulMark, ReputationEvent, Vote
from community.core.db import make_session_factory
from community.core.errors import NotFound, PermissionDenied
from community.core.models import (
    Forum,
    Notification,
    NotificationKind,
    Post,
    Role,
    Thread,
    ThreadStatus,
    User,
    Visibility,
)
from community.core.schemas import AnswerIn
from community.core.settings import Settings
from community.worker import Worker
from tests.conftest import QA, drain, fresh, run_concurrently

UserFactory = Callable[..., User]


def _rep(db: Session, user: User) -> int:
    fresh(db)
    found = db.get(User, user.id)
    assert found is not None
    return found.reputation


def _post(db: Session, post: Post) -> Post:
    fresh(db)
    found = db.get(Post, post.id)
    assert found is not None
    return found


def test_vote_change_retract_and_reputation(db: Session, qa: QA, make_user: UserFactory) -> None:
    asker, helper, voter = make_user("asker"), make_user("helper"), make_user("voter")
    thread = qa.ask(asker)
    reply = qa.answer(helper, thread)
    question = db.scalars(select(Post).where(Post.is_question.is_(True))).one()

    steps = [
        (1, 1, 1, 0, 10),
        (1, 1, 1, 0, 10),
        (-1, -1, 0, 1, -2),
        (0, 0, 0, 0, 0),
        (1, 1, 1, 0, 10),
    ]
    for value, score, up, down, reputation in steps:
        result = voting.cast_vote(db, voter, reply.id, value)
        db.commit()
        assert result.my_vote == value
        stored = _post(db, reply)
        assert (stored.score, stored.upvotes, stored.downvotes) == (score, up, down)
        assert _rep(db, helper) == reputation
    assert db.scalar(select(func.count()).select_from(Vote)) == 1

    voting.cast_vote(db, voter, question.id, 1)
    db.commit()
    assert _rep(db, asker) == 5  # questions earn +5 per upvote
    fresh(db)
    assert db.get(Thread, thread.id).score == 1  # type: ignore[union-attr]


def test_no_voting_on_own_post_hidden_post_or_locked_thread(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    from community.core.clock import utcnow

    asker, voter = make_user("asker"), make_user("voter")
    moderator = make_user("moddy", role=Role.MODERATOR)
    thread = qa.ask(asker)
    question = db.scalars(select(Post)).one()
    with pytest.raises(PermissionDenied):
        voting.cast_vote(db, asker, question.id, 1)
    db.rollback()
    with pytest.raises(NotFound):
        voting.cast_vote(db, voter, 999_999, 1)
    db.rollback()
    thread.locked_at = utcnow()
    db.commit()
    with pytest.raises(PermissionDenied):
        voting.cast_vote(db, voter, question.id, 1)
    db.rollback()
    voting.cast_vote(db, moderator, question.id, 1)  # staff may act on locked threads
    db.commit()
    question.visibility = Visibility.HIDDEN
    db.commit()
    with pytest.raises(NotFound):
        voting.cast_vote(db, voter, question.id, 1)
    with pytest.raises(PermissionDenied):
        voting.cast_vote(db, voter, question.id, 2)


def test_accept_rules_and_reputation(db: Session, qa: QA, make_user: UserFactory) -> None:
    asker, first, second, other = (make_user(n) for n in ("asker", "first", "second", "other"))
    agent = make_user("lee", role=Role.AGENT)
    thread = qa.ask(asker)
    a1, a2 = qa.answer(first, thread), qa.answer(second, thread)
    question = db.scalars(select(Post).where(Post.is_question.is_(True))).one()

    with pytest.raises(PermissionDenied):
        voting.accept(db, other, a1.id)
    db.rollback()
    with pytest.raises(PermissionDenied):
        voting.accept(db, asker, question.id)  # the question is not an answer
    db.rollback()

    voting.accept(db, asker, a1.id)
    db.commit()
    assert (_rep(db, first), _rep(db, asker)) == (15, 2)
    fresh(db)
    assert db.get(Thread, thread.id).status == ThreadStatus.SOLVED  # type: ignore[union-attr]

    voting.accept(db, asker, a1.id)  # again: nothing changes
    db.commit()
    assert (_rep(db, first), _rep(db, asker)) == (15, 2)

    voting.accept(db, agent, a2.id)  # support staff may accept too; the choice moves
    db.commit()
    assert (_rep(db, first), _rep(db, second), _rep(db, asker), _rep(db, agent)) == (0, 15, 0, 2)

    voting.unaccept(db, asker, thread.id)
    db.commit()
    fresh(db)
    stored = db.get(Thread, thread.id)
    assert stored is not None
    assert (stored.accepted_post_id, stored.status) == (None, ThreadStatus.ANSWERED)
    assert (_rep(db, second), _rep(db, agent)) == (0, 0)
    reasons = [
        event.reason for event in db.scalars(select(ReputationEvent).order_by(ReputationEvent.id))
    ]
    assert reasons.count("accepted") == 2 and reasons.count("unaccepted") == 2


def test_accepting_your_own_answer_earns_nothing(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    thread = qa.ask(asker)
    own = qa.answer(asker, thread, "Solved it myself: restart the router.")
    voting.accept(db, asker, own.id)
    db.commit()
    assert _rep(db, asker) == 0
    fresh(db)
    assert db.get(Thread, thread.id).accepted_post_id == own.id  # type: ignore[union-attr]
    assert db.scalars(select(Notification)).first() is None


def test_helpful_marks(db: Session, qa: QA, make_user: UserFactory) -> None:
    asker, reader = make_user("asker"), make_user("reader")
    thread = qa.ask(asker)
    with pytest.raises(PermissionDenied):
        voting.set_helpful(db, asker, thread.id, helpful=True)
    db.rollback()
    for helpful, count in [(True, 1), (True, 1), (False, 0), (False, 0), (True, 1)]:
        voting.set_helpful(db, reader, thread.id, helpful=helpful)
        db.commit()
        fresh(db)
        assert db.get(Thread, thread.id).helpful_count == count  # type: ignore[union-attr]
    assert db.scalar(select(func.count()).select_from(HelpfulMark)) == 1


def test_vote_milestones_notify_the_author_once(
    db: Session, qa: QA, make_user: UserFactory, worker: Worker
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    voters = [make_user(f"voter{index}") for index in range(5)]
    thread = qa.ask(asker)
    reply = qa.answer(helper, thread)

    def milestones() -> list[int]:
        fresh(db)
        return [
            n.data["milestone"]
            for n in db.scalars(
                select(Notification)
                .where(Notification.kind == NotificationKind.VOTE_MILESTONE)
                .order_by(Notification.id)
            )
        ]

    for voter in voters:
        voting.cast_vote(db, voter, reply.id, 1)
        db.commit()
    voting.cast_vote(db, voters[0], reply.id, 0)  # back to 4 ...
    voting.cast_vote(db, voters[0], reply.id, 1)  # ... and 5 again: no second notice
    db.commit()
    assert milestones() == []  # the vote only records it; the worker tells the author
    drain(worker)
    assert milestones() == [1, 5]
    assert _kinds_of(db, helper) == ["vote_milestone", "vote_milestone"]


def _kinds_of(db: Session, user: User) -> list[str]:
    fresh(db)
    rows = db.scalars(select(Notification.kind).where(Notification.user_id == user.id))
    return sorted(kind.value for kind in rows)


@pytest.fixture
def worker(settings: Settings, engine: Engine) -> Worker:
    return Worker(settings, make_session_factory(engine))


# --- concurrency -----------------------------------------------------------------------------


def _concurrently(engine: Engine, actions: list[Callable[[Session], object]]) -> list[str]:
    return [code for code, _message in run_concurrently(engine, actions)]


def test_fifty_people_voting_at_once_count_exactly(
    engine: Engine, db: Session, qa: QA, make_user: UserFactory, passwords: object
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker)
    reply = qa.answer(helper, thread)
    voters = [make_user(f"voter{index:02d}") for index in range(50)]

    def vote_as(user_id: int) -> Callable[[Session], object]:
        return lambda session: voting.cast_vote(session, session.get(User, user_id), reply.id, 1)  # type: ignore[arg-type]

    outcomes = _concurrently(engine, [vote_as(voter.id) for voter in voters])
    assert outcomes == ["ok"] * 50
    stored = _post(db, reply)
    assert (stored.score, stored.upvotes) == (50, 50)
    assert db.scalar(select(func.count()).select_from(Vote)) == 50
    assert _rep(db, helper) == 500


def test_double_submitted_vote_counts_once(
    engine: Engine, db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, voter = make_user("asker"), make_user("voter")
    thread = qa.ask(asker)
    question = db.scalars(select(Post)).one()
    actions = [
        lambda session: voting.cast_vote(session, session.get(User, voter.id), question.id, 1)  # type: ignore[arg-type]
        for _ in range(10)
    ]
    outcomes = _concurrently(engine, actions)
    assert outcomes == ["ok"] * 10
    stored = _post(db, question)
    assert (stored.score, stored.upvotes) == (1, 1)
    assert db.scalar(select(func.count()).select_from(Vote)) == 1
    assert _rep(db, asker) == 5
    fresh(db)
    assert db.get(Thread, thread.id).score == 1  # type: ignore[union-attr]


def test_helpful_marks_at_once_count_exactly(
    engine: Engine, db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    thread = qa.ask(asker)
    readers = [make_user(f"reader{index:02d}") for index in range(30)]
    actions: list[Callable[[Session], object]] = []
    for reader in readers:
        for _ in range(2):  # everybody double-clicks
            actions.append(
                lambda session, user_id=reader.id: voting.set_helpful(
                    session,
                    session.get(User, user_id),
                    thread.id,
                    helpful=True,  # type: ignore[arg-type]
                )
            )
    assert _concurrently(engine, actions) == ["ok"] * 60
    fresh(db)
    assert db.get(Thread, thread.id).helpful_count == 30  # type: ignore[union-attr]
    assert db.scalar(select(func.count()).select_from(HelpfulMark)) == 30


def test_one_voter_flipping_and_retracting_at_once_leaves_counts_that_match_the_vote(
    engine: Engine, db: Session, qa: QA, make_user: UserFactory
) -> None:
    # A vote takes no lock on the post: the voter's own vote row decides what each request
    # changed, so double clicks on "down" and "retract" racing each other add up exactly.
    asker, helper, voter = make_user("asker"), make_user("helper"), make_user("voter")
    thread = qa.ask(asker)
    reply = qa.answer(helper, thread)
    voting.cast_vote(db, voter, reply.id, 1)
    db.commit()

    def vote(value: int) -> Callable[[Session], object]:
        def run(session: Session) -> object:
            return voting.cast_vote(session, session.get_one(User, voter.id), reply.id, value)

        return run

    outcomes = _concurrently(engine, [vote(value) for value in (-1, 0, 1, -1, 0) * 4])
    assert set(outcomes) <= {"ok", "conflict"}
    fresh(db)
    final = db.scalar(select(Vote.value).where(Vote.post_id == reply.id)) or 0
    stored = _post(db, reply)
    assert (stored.score, stored.upvotes, stored.downvotes) == (final, final == 1, final == -1)
    history = db.scalars(select(ReputationEvent.amount).where(ReputationEvent.user_id == helper.id))
    expected = {1: 10, 0: 0, -1: -2}[final]
    assert sum(history) == _rep(db, helper) == expected


def test_answers_at_once_in_one_forum_count_exactly(
    engine: Engine, db: Session, qa: QA, make_user: UserFactory
) -> None:
    # The forum's counters are added at commit (community.core.counters): none is lost.
    threads_ = [qa.ask(make_user(f"asker{index}")) for index in range(3)]
    forum_id = threads_[0].forum_id
    fresh(db)
    before = db.get(Forum, forum_id)
    assert before is not None
    posts_before = before.post_count
    helpers = [make_user(f"helper{index:02d}") for index in range(24)]

    def answer(user_id: int, thread_id: int) -> Callable[[Session], object]:
        def run(session: Session) -> object:
            thread = session.get(Thread, thread_id)
            assert thread is not None
            body = AnswerIn(body=f"Reset the APN settings, says {user_id}.")
            return threads.answer(session, session.get_one(User, user_id), thread, body)

        return run

    actions = [answer(h.id, threads_[i % 3].id) for i, h in enumerate(helpers)]
    assert _concurrently(engine, actions) == ["ok"] * 24
    fresh(db)
    forum = db.get(Forum, forum_id)
    assert forum is not None and forum.post_count == posts_before + 24
    for thread in threads_:
        stored = db.get(Thread, thread.id)
        assert stored is not None
        assert (stored.reply_count, stored.status) == (8, ThreadStatus.ANSWERED)
