"""Badges: each milestone awarded from its domain event once it is earned (checked by the
worker a minute later), once per member however often it is checked, never taken back; the
in-app notification; the backfill (function and command) for members who earned them before;
the profile and the API listing them."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from community import voting
from community.cli import app
from community.core.db import make_session_factory
from community.core.models import Notification, NotificationKind, Role, User, Visibility
from community.core.notifications import EMAIL_EVENT, describe, target_path
from community.core.outbox import OutboxEvent, mark_done
from community.core.workspace_models import UserBadge
from community.members import badges
from community.visibility import question_of
from moderation import accounts, actions
from tests.conftest import QA, announce_published, fresh

UserFactory = Callable[..., User]


def run_badge_checks(db: Session) -> int:
    """The worker's badge checks waiting now, run at once (as the worker does a minute after
    the event); the other outbox events keep waiting. How many ran."""
    waiting = db.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.kind == badges.BADGE_EVENT, OutboxEvent.done_at.is_(None))
        .order_by(OutboxEvent.id)
    ).all()
    for event in waiting:
        badges.check(db, event)
        mark_done(db, event)
    db.commit()
    return len(waiting)


def _badges(db: Session, user: User) -> list[str]:
    fresh(db)
    return sorted(db.scalars(select(UserBadge.badge).where(UserBadge.user_id == user.id)))


def _badge_notices(db: Session, user: User) -> list[Notification]:
    fresh(db)
    return list(
        db.scalars(
            select(Notification).where(
                Notification.user_id == user.id, Notification.kind == NotificationKind.BADGE
            )
        )
    )


def test_a_first_question_and_answer_earn_badges_with_an_in_app_notification(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker)
    assert _badges(db, asker) == []  # checked by the worker, a moment later
    qa.answer(helper, thread)
    run_badge_checks(db)
    assert _badges(db, asker) == ["first_question"]
    assert _badges(db, helper) == ["first_answer"]
    [notice] = _badge_notices(db, asker)
    assert describe(notice) == "You earned the badge “First question”"
    assert target_path(notice) == "/u/asker#badges"
    emails = db.scalars(select(OutboxEvent).where(OutboxEvent.kind == EMAIL_EVENT)).all()
    assert notice.id not in {event.payload["notification_id"] for event in emails}

    # A second question asks for no check at all: the badge is held.
    qa.ask(asker, "Another question about roaming")
    assert run_badge_checks(db) == 0
    assert len(_badge_notices(db, asker)) == 1


def test_a_held_question_earns_its_badge_only_when_published(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    newcomer = make_user("newcomer", trust_level=0)
    thread = qa.ask(newcomer, "My very first question")
    assert run_badge_checks(db) == 0
    assert _badges(db, newcomer) == []
    moderator = make_user("modkim", role=Role.MODERATOR)
    fresh(db)
    actions.set_post_visibility(
        db, moderator, question_of(db, thread), Visibility.VISIBLE, reason=None
    )
    db.commit()
    announce_published(db)
    run_badge_checks(db)
    assert _badges(db, newcomer) == ["first_question"]


def test_an_accepted_answer_earns_a_badge_but_accepting_one_s_own_does_not(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker)
    answer = qa.answer(helper, thread)
    voting.accept(db, asker, answer.id)
    db.commit()
    run_badge_checks(db)
    assert "first_accepted_answer" in _badges(db, helper)

    own = qa.ask(asker, "A question I answer myself")
    mine = qa.answer(asker, own, "Found it: restart the phone.")
    voting.accept(db, asker, mine.id)
    db.commit()
    run_badge_checks(db)
    assert "first_accepted_answer" not in _badges(db, asker)
    # Nor is answering one's own question "answering someone's question", live or backfilled.
    assert "first_answer" not in _badges(db, asker)
    badges.backfill(db)
    db.commit()
    assert "first_answer" not in _badges(db, asker)


def test_ten_helpful_marks_on_one_s_questions_earn_a_badge(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    first, second = qa.ask(asker), qa.ask(asker, "Second question about voicemail")
    readers = [make_user(f"reader{n}") for n in range(10)]
    for reader in readers[:9]:
        voting.set_helpful(db, reader, first.id, helpful=True)
        db.commit()
    run_badge_checks(db)
    assert "helpful_10" not in _badges(db, asker)
    voting.set_helpful(db, readers[9], second.id, helpful=True)  # marks add up across questions
    db.commit()
    run_badge_checks(db)
    assert "helpful_10" in _badges(db, asker)


def test_the_tenth_upvote_on_an_answer_earns_a_badge_that_stays(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"))
    helper = make_user("helper")
    answer = qa.answer(helper, thread)
    run_badge_checks(db)
    voters = [make_user(f"voter{n}") for n in range(10)]
    for voter in voters[:9]:
        voting.cast_vote(db, voter, answer.id, 1)
        db.commit()
    # Nine votes queue nothing: only the vote that reaches ten asks for a check.
    assert run_badge_checks(db) == 0
    voting.cast_vote(db, voters[9], answer.id, 1)
    db.commit()
    assert run_badge_checks(db) == 1
    assert "upvoted_answer_10" in _badges(db, helper)
    # Taken back and given again: no second badge, no second notification.
    voting.cast_vote(db, voters[9], answer.id, 0)
    db.commit()
    voting.cast_vote(db, voters[9], answer.id, 1)
    db.commit()
    run_badge_checks(db)
    voting.cast_vote(db, voters[0], answer.id, -1)
    db.commit()
    assert _badges(db, helper).count("upvoted_answer_10") == 1
    names = [notice.data["params"]["badge"]["msgid"] for notice in _badge_notices(db, helper)]
    assert names == ["First answer", "Great answer"]


def test_trust_levels_reached_earn_badges_kept_when_lowered(
    db: Session, make_user: UserFactory
) -> None:
    moderator, member = make_user("modkim", role=Role.MODERATOR), make_user("member")
    accounts.set_trust_level(db, moderator, member, 3)
    db.commit()
    run_badge_checks(db)
    assert _badges(db, member) == ["trust_level_1", "trust_level_2", "trust_level_3"]
    accounts.set_trust_level(db, moderator, member, 0)
    db.commit()
    run_badge_checks(db)
    assert _badges(db, member) == ["trust_level_1", "trust_level_2", "trust_level_3"]


def test_a_badge_is_awarded_once_when_two_workers_award_it(
    db: Session, engine: Engine, make_user: UserFactory
) -> None:
    member = make_user("member")
    factory = make_session_factory(engine)
    results = []
    for _worker in range(2):
        with factory() as session:
            user = session.get(User, member.id)
            assert user is not None
            results.append(badges.award(session, user, "first_question"))
            session.commit()
    assert results == [True, False]
    assert _badges(db, member) == ["first_question"]
    assert len(_badge_notices(db, member)) == 1


def test_the_backfill_awards_what_members_earned_before_silently_and_once(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, helper, hidden = make_user("asker"), make_user("helper"), make_user("hidden")
    thread = qa.ask(asker)
    answer = qa.answer(helper, thread)
    voting.accept(db, asker, answer.id)
    removed = qa.answer(hidden, thread, "Spam that a moderator removed.")
    moderator = make_user("modkim", role=Role.MODERATOR)
    actions.set_post_visibility(db, moderator, removed, Visibility.HIDDEN, reason=None)
    db.commit()
    # As if badges came after all this: nothing awarded, nothing queued.
    db.execute(delete(OutboxEvent).where(OutboxEvent.kind == badges.BADGE_EVENT))
    db.commit()
    notices_before = db.scalar(select(func.count()).select_from(Notification))

    gained = badges.backfill(db)
    db.commit()
    assert gained["first_question"] == 1
    assert gained["first_answer"] == 1  # the hidden answer counts for nothing
    assert gained["first_accepted_answer"] == 1
    assert _badges(db, asker) == ["first_question", "trust_level_1"]
    assert _badges(db, helper) == ["first_accepted_answer", "first_answer", "trust_level_1"]
    assert "first_answer" not in _badges(db, hidden)
    assert db.scalar(select(func.count()).select_from(Notification)) == notices_before
    assert set(badges.backfill(db).values()) == {0}  # again: nothing new


def test_the_backfill_command(cli_env: None, db: Session, qa: QA, make_user: UserFactory) -> None:
    asker = make_user("asker")
    qa.ask(asker)
    result = CliRunner().invoke(app, ["badges", "backfill"])
    assert result.exit_code == 0, result.output
    assert "first_question: 1 awarded" in result.output
    assert "first_question" in _badges(db, asker)


def test_the_profile_and_the_api_list_badges(
    client: TestClient, db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    qa.ask(asker)
    run_badge_checks(db)
    page = client.get("/u/asker")
    assert page.status_code == 200
    assert 'id="badges"' in page.text
    assert "First question" in page.text and "Asked a first question." in page.text
    listed = client.get("/api/v1/users/asker/badges").json()
    assert [item["badge"] for item in listed] == ["first_question"]
    assert listed[0]["name"] == "First question"
    assert client.get("/api/v1/users/nobody/badges").status_code == 404
    assert "No badges yet." in client.get(f"/u/{make_user('newbie').username}").text


def test_every_badge_has_a_query_that_runs_on_both_databases(db: Session) -> None:
    for badge in badges.BADGES:
        db.execute(badge.qualifies(None)).all()
        db.execute(badge.qualifies(1)).all()
    assert len({badge.key for badge in badges.BADGES}) == len(badges.BADGES)
    assert all(len(badge.key) <= 40 for badge in badges.BADGES)  # user_badges.badge
