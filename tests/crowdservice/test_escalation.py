"""Escalation end to end on the real services, with the clock moved by time-machine: every
trigger (no response in time, P1, the author's request, a moderator), what is never escalated,
idempotence and races, expert invitations, SLA breaches, waiting on the customer, and
community resolutions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import time_machine
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community import threads, visibility, voting
from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.errors import Conflict, FormErrors, NotFound, PermissionDenied
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
from crowdservice import escalation, escalation_sweep, experts, sla
from crowdservice.models import (
    BreachKind,
    Escalation,
    EscalationReason,
    EscalationStatus,
    ExpertInvitation,
    Priority,
    Resolution,
    SLABreach,
    TriageResult,
)
from tests.conftest import QA, announce_published, fresh, run_concurrently
from tests.crowdservice.helpers import reloaded

UserFactory = Callable[..., User]


@dataclass
class Clock:
    """Minutes after the start of a test; every step runs at an exact moment."""

    start: datetime

    def at(self, minutes: float) -> datetime:
        return self.start + timedelta(minutes=minutes)

    @contextmanager
    def travel(self, minutes: float) -> Iterator[None]:
        with time_machine.travel(self.at(minutes), tick=False):
            yield


@pytest.fixture
def clock() -> Clock:
    # A little ahead of the real time, so accounts made by fixtures already exist.
    return Clock(utcnow().replace(microsecond=0) + timedelta(minutes=5))


def _ask(db: Session, qa: QA, author: User, priority: str = "P3", **fields: object) -> Thread:
    thread = qa.ask(author, **fields)  # type: ignore[arg-type]
    # Where triage would decide: tests pick the priority.
    sla.set_due_times(db, thread, priority)
    db.commit()
    return thread


def _sweep(db: Session) -> escalation_sweep.SweepReport:
    report = escalation_sweep.sweep(db)
    db.commit()
    return report


def _escalations(db: Session, thread: Thread | None = None) -> list[Escalation]:
    fresh(db)
    statement = select(Escalation).order_by(Escalation.id)
    if thread is not None:
        statement = statement.where(Escalation.thread_id == thread.id)
    return list(db.scalars(statement))


def _one(db: Session, thread: Thread) -> Escalation:
    found = _escalations(db, thread)
    assert len(found) == 1, found
    return found[0]


def _notifications(db: Session, user: User, kind: NotificationKind) -> list[Notification]:
    return list(
        db.scalars(
            select(Notification)
            .where(Notification.user_id == user.id, Notification.kind == kind)
            .order_by(Notification.id)
        )
    )


def _audits(db: Session, action: str) -> list[AuditLog]:
    return list(db.scalars(select(AuditLog).where(AuditLog.action == action)))


def _breaches(db: Session, item: Escalation) -> dict[BreachKind, SLABreach]:
    fresh(db)
    rows = db.scalars(select(SLABreach).where(SLABreach.escalation_id == item.id))
    return {row.kind: row for row in rows}


def _claim(db: Session, item: Escalation, agent: User, at: datetime) -> None:
    # What crowdservice.agent.claim does; set here so these tests stand on their own.
    item.assigned_agent_id = agent.id
    item.status = EscalationStatus.CLAIMED
    item.claimed_at = at
    db.commit()


def _needs_no_response(db: Session, thread: Thread) -> None:
    """What triage records for praise and noise."""
    result = db.get(TriageResult, thread.id)
    if result is None:
        db.add(TriageResult(thread_id=thread.id, classifier="test",
                            reasons={"needs_response": False}))  # fmt: skip
    else:
        result.reasons = {**result.reasons, "needs_response": False}
    db.commit()


# --- triggers ----------------------------------------------------------------------------------


def test_a_thread_nobody_answers_is_escalated_at_its_first_response_due_time(
    db: Session, qa: QA, make_user: UserFactory, clock: Clock
) -> None:
    asker = make_user("asker")
    with clock.travel(0):
        thread = _ask(db, qa, asker, "P3")  # first response due in 4 hours
    with clock.travel(239):
        assert _sweep(db).escalated == 0
    assert _escalations(db) == []

    with clock.travel(241):
        report = _sweep(db)
    assert report.escalated_no_response == 1
    item = _one(db, thread)
    assert item.reason == EscalationReason.NO_RESPONSE
    assert (item.status, item.priority) == (EscalationStatus.OPEN, Priority.P3)
    assert item.escalated_by_id is None
    assert item.first_response_due_at == clock.at(240)
    assert item.resolution_due_at == clock.at(48 * 60)
    assert reloaded(db, thread).status == ThreadStatus.ESCALATED
    (notice,) = _notifications(db, asker, NotificationKind.SUPPORT)
    assert notice.data == {"message": "A support agent has been notified"}
    assert notice.actor_id is None and notice.thread_id == thread.id
    (audit,) = _audits(db, "escalation.created")
    assert audit.reason == "no_response" and audit.actor_id is None
    # The customer's first-response target has passed: that is a breach already.
    assert report.first_response_breaches == 1

    with clock.travel(300):
        assert _sweep(db).escalated == 0
    assert len(_escalations(db)) == 1


def test_only_an_answer_from_someone_else_stops_the_escalation(
    db: Session, qa: QA, make_user: UserFactory, clock: Clock
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    with clock.travel(0):
        answered = _ask(db, qa, asker, "P3")
        talking_alone = _ask(db, qa, asker, "P3", title="Why does my eSIM drop at night?")
    with clock.travel(30):
        qa.answer(helper, answered)
        qa.answer(asker, talking_alone, "More details: it is an iPhone 15 on iOS 18.")
    with clock.travel(241):
        report = _sweep(db)
    assert report.escalated_no_response == 1
    assert _escalations(db, answered) == []
    assert _one(db, talking_alone).reason == EscalationReason.NO_RESPONSE


def test_p1_threads_are_escalated_at_once(
    db: Session, qa: QA, make_user: UserFactory, clock: Clock
) -> None:
    asker = make_user("asker")
    with clock.travel(0):
        urgent = _ask(db, qa, asker, "P1")
        ordinary = _ask(db, qa, asker, "P2", title="Roaming in Peru is not working")
        report = _sweep(db)
    assert report.escalated_critical == 1
    item = _one(db, urgent)
    assert (item.reason, item.priority) == (EscalationReason.CRITICAL, Priority.P1)
    assert item.first_response_due_at == clock.at(10)
    assert _escalations(db, ordinary) == []


def test_the_author_may_call_in_the_support_team_and_nobody_else(
    db: Session, qa: QA, make_user: UserFactory, clock: Clock
) -> None:
    asker, other = make_user("asker"), make_user("other")
    moderator = make_user("moddy", role=Role.MODERATOR)
    with clock.travel(0):
        thread = _ask(db, qa, asker, "P3")
    with clock.travel(5):
        for intruder in (other, moderator):
            with pytest.raises(PermissionDenied):
                escalation.request_support(db, intruder, thread)
        item = escalation.request_support(db, asker, thread)
        db.commit()
        again = escalation.request_support(db, asker, thread)
    assert again.id == item.id
    item = _one(db, thread)
    assert item.reason == EscalationReason.AUTHOR_REQUEST
    assert item.escalated_by_id == asker.id
    assert reloaded(db, thread).status == ThreadStatus.ESCALATED
    # No notification of one's own request (the page confirms it); the audit records it.
    assert _notifications(db, asker, NotificationKind.SUPPORT) == []
    (audit,) = _audits(db, "escalation.created")
    assert (audit.actor_id, audit.reason) == (asker.id, "author_request")


def test_a_moderator_escalates_with_a_note(
    db: Session, qa: QA, make_user: UserFactory, clock: Clock
) -> None:
    asker, member = make_user("asker"), make_user("member")
    agent = make_user("agentann", role=Role.AGENT)
    moderator = make_user("moddy", role=Role.MODERATOR)
    with clock.travel(0):
        thread = _ask(db, qa, asker, "P4")
        # Due times missing (never triaged): escalating sets them.
        thread.first_response_due_at = thread.resolution_due_at = None
        db.commit()
    with clock.travel(3):
        for not_allowed in (member, agent, asker):
            with pytest.raises(PermissionDenied):
                escalation.escalate_by_moderator(db, not_allowed, thread, "please")
        with pytest.raises(FormErrors) as error:
            escalation.escalate_by_moderator(db, moderator, thread, "x" * 2001)
        assert "note" in error.value.errors
        escalation.escalate_by_moderator(db, moderator, thread, "  Angry customer, big account ")
        db.commit()
    item = _one(db, thread)
    assert item.reason == EscalationReason.MODERATOR
    assert item.note == "Angry customer, big account"
    assert item.escalated_by_id == moderator.id
    assert item.first_response_due_at == clock.at(24 * 60)
    (notice,) = _notifications(db, asker, NotificationKind.SUPPORT)
    assert notice.actor_id == moderator.id
    (audit,) = _audits(db, "escalation.created")
    assert audit.actor_id == moderator.id
    assert audit.after is not None and audit.after["note"] == "Angry customer, big account"


# --- what is never escalated -------------------------------------------------------------------


def test_threads_that_need_no_response_are_never_escalated(
    db: Session, qa: QA, make_user: UserFactory, clock: Clock
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    _history(db, qa, make_user("oldasker"), {helper: (1, 0)}, [])  # an expert to invite
    with clock.travel(0):
        praise = _ask(db, qa, asker, "P1", title="Thank you for the great new app design")
        _needs_no_response(db, praise)
    with clock.travel(3 * 24 * 60):
        report = _sweep(db)
    assert report.escalated == 0 and report.invitations == 0
    assert _escalations(db) == []
    assert reloaded(db, praise).status != ThreadStatus.ESCALATED


def test_solved_closed_locked_and_unpublished_threads_are_not_escalated(
    db: Session, qa: QA, make_user: UserFactory, clock: Clock
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    newcomer = make_user("newcomer", trust_level=0)
    moderator = make_user("moddy", role=Role.MODERATOR)
    with clock.travel(0):
        solved = _ask(db, qa, asker, "P1", title="Solved: how to reset the router")
        closed = _ask(db, qa, asker, "P1", title="Closed: duplicate of the router one")
        locked = _ask(db, qa, asker, "P1", title="Locked: a heated argument thread")
        hidden = _ask(db, qa, asker, "P1", title="Hidden: a spam thread about pills")
        pending = qa.ask(newcomer, title="Pending: my very first question here")
    assert pending.visibility == Visibility.PENDING
    with clock.travel(1):
        answer = qa.answer(helper, solved)
        voting.accept(db, asker, answer.id)
        closed.status, closed.closed_reason = ThreadStatus.CLOSED, "duplicate"
        locked.status, locked.locked_at = ThreadStatus.LOCKED, utcnow()
        hidden.visibility = Visibility.HIDDEN
        db.commit()
    with clock.travel(24 * 60):
        report = _sweep(db)
    assert report.escalated == 0
    assert _escalations(db) == []

    for thread, words in ((solved, "already solved"), (closed, "closed"), (locked, "locked")):
        with pytest.raises(Conflict, match=words):
            escalation.request_support(db, asker, reloaded(db, thread))
        with pytest.raises(Conflict, match=words):
            escalation.escalate_by_moderator(db, moderator, reloaded(db, thread), None)
    with pytest.raises(Conflict, match="published"):
        escalation.escalate_by_moderator(db, moderator, reloaded(db, hidden), None)
    with pytest.raises(NotFound):
        escalation.request_support(db, asker, reloaded(db, hidden))
    with pytest.raises(Conflict, match="waiting for a moderator"):
        escalation.request_support(db, newcomer, reloaded(db, pending))
    assert _escalations(db) == []


# --- one escalation per thread -------------------------------------------------------------------


def test_escalating_twice_gives_one_escalation(db: Session, qa: QA, make_user: UserFactory) -> None:
    asker = make_user("asker")
    thread = _ask(db, qa, asker, "P2")
    first = escalation.escalate(db, thread, EscalationReason.NO_RESPONSE)
    second = escalation.escalate(db, thread, EscalationReason.CRITICAL)
    db.commit()
    assert first.id == second.id
    assert second.reason == EscalationReason.NO_RESPONSE
    assert len(_escalations(db)) == 1
    assert len(_notifications(db, asker, NotificationKind.SUPPORT)) == 1
    assert len(_audits(db, "escalation.created")) == 1
    assert escalation.active_escalation(db, thread.id) is not None


def test_concurrent_escalations_of_one_thread_leave_one_row(
    engine: Engine, db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    moderators = [make_user(f"mod{index}", role=Role.MODERATOR) for index in range(3)]
    thread = _ask(db, qa, asker, "P1")
    thread_id, asker_id = thread.id, asker.id

    def as_moderator(user_id: int) -> Callable[[Session], object]:
        def run(session: Session) -> object:
            moderator, target = session.get(User, user_id), session.get(Thread, thread_id)
            assert moderator is not None and target is not None
            return escalation.escalate_by_moderator(session, moderator, target, "now")

        return run

    def as_author(session: Session) -> object:
        author, target = session.get(User, asker_id), session.get(Thread, thread_id)
        assert author is not None and target is not None
        return escalation.request_support(session, author, target)

    actions = [as_moderator(moderator.id) for moderator in moderators]
    actions += [as_author, escalation_sweep.sweep, escalation_sweep.sweep]
    outcomes = run_concurrently(engine, actions)
    assert outcomes == [("ok", "")] * len(actions)
    rows = _escalations(db)
    assert len(rows) == 1
    assert rows[0].status == EscalationStatus.OPEN
    assert len(_audits(db, "escalation.created")) == 1
    assert len(_notifications(db, asker, NotificationKind.SUPPORT)) <= 1
    assert reloaded(db, thread).status == ThreadStatus.ESCALATED


# --- expert invitations --------------------------------------------------------------------------


def _history(
    db: Session, qa: QA, asker: User, answers: dict[User, tuple[int, int]], tags: list[str]
) -> list[Thread]:
    """Past threads: each expert gets (accepted, other) answers in threads with `tags`."""
    made: list[Thread] = []
    for expert, (accepted, plain) in answers.items():
        for index in range(accepted + plain):
            thread = qa.ask(asker, title=f"Older question {expert.username} {index}", tags=tags)
            post = qa.answer(expert, thread)
            if index < accepted:
                voting.accept(db, asker, post.id)
                db.commit()
            made.append(thread)
    return made


def test_experts_are_invited_after_half_the_target_and_answers_are_measured(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory, clock: Clock
) -> None:
    old_asker, asker = make_user("oldasker"), make_user("asker")
    ana, ben, cai = make_user("ana"), make_user("ben"), make_user("cai")
    dan, eva, fay = make_user("dan"), make_user("eva"), make_user("fay")
    gus = make_user("gus")
    history = _history(
        db, qa, old_asker,
        # dan opted out, eva is on vacation, fay had her invitations for the day; the asker
        # is the best of all but is never invited to their own question.
        {ana: (2, 0), ben: (0, 3), cai: (0, 1), dan: (3, 0), eva: (3, 0), fay: (3, 0),
         asker: (3, 0)},
        ["esim"],
    )  # fmt: skip
    _history(db, qa, old_asker, {gus: (3, 0)}, ["billing"])  # expert elsewhere in the forum
    dan.expert_opt_out = True
    eva.vacation_until = clock.at(7 * 24 * 60)
    for thread in history[:3]:
        db.add(ExpertInvitation(thread_id=thread.id, user_id=fay.id, invited_at=clock.at(-60)))
    db.commit()

    with clock.travel(0):
        thread = _ask(db, qa, asker, "P3", title="eSIM activation code rejected", tags=["esim"])
    with clock.travel(119):
        assert _sweep(db).invitations == 0
    with clock.travel(121):
        report = _sweep(db)
    assert (report.invited_threads, report.invitations) == (1, 3)
    invited = list(
        db.scalars(
            select(ExpertInvitation.user_id)
            .where(ExpertInvitation.thread_id == thread.id)
            .order_by(ExpertInvitation.id)
        )
    )
    assert invited == [ana.id, ben.id, cai.id]
    for expert in (ana, ben, cai):
        (notice,) = _notifications(db, expert, NotificationKind.EXPERT_INVITATION)
        assert (notice.thread_id, notice.actor_id) == (thread.id, None)
    for left_out in (dan, eva, fay, asker, gus):
        assert _notifications(db, left_out, NotificationKind.EXPERT_INVITATION) == []
    with clock.travel(122):
        assert _sweep(db).invitations == 0

    with clock.travel(130):
        qa.answer(ana, thread)
    with clock.travel(241):
        assert _sweep(db).escalated == 0  # the community answered in time
    with clock.travel(300):
        qa.answer(ben, thread)
    fresh(db)
    answers = {
        row.user_id: row
        for row in db.scalars(
            select(ExpertInvitation).where(ExpertInvitation.thread_id == thread.id)
        )
    }
    assert answers[ana.id].answered_at == clock.at(130) and answers[ana.id].answered_in_time
    assert answers[ben.id].answered_at == clock.at(300)
    assert answers[ben.id].answered_in_time is False
    assert answers[cai.id].answered_at is None
    stats = experts.expert_stats(db, forum.brand_id, clock.at(-24 * 60))
    # fay's three earlier invitations count too: none of them was answered.
    assert stats["invited"] == 6
    assert (stats["answered"], stats["answered_in_time"]) == (2, 1)
    assert stats["rate"] == pytest.approx(1 / 6)
    assert experts.expert_stats(db, forum.brand_id, clock.at(60))["invited"] == 3


def test_an_invited_experts_answer_is_recorded_by_the_worker_if_still_visible(
    db: Session, qa: QA, make_user: UserFactory, clock: Clock
) -> None:
    asker, ana, ben = make_user("asker"), make_user("ana"), make_user("ben")
    with clock.travel(0):
        thread = _ask(db, qa, asker, "P3", title="Voicemail greeting resets")
        for expert in (ana, ben):
            db.add(ExpertInvitation(thread_id=thread.id, user_id=expert.id))
        db.commit()
    with clock.travel(30):
        threads.answer(db, ana, thread, AnswerIn(body="Record it again in the app."))
        hidden = threads.answer(db, ben, thread, AnswerIn(body="Dial 123 and pick option 4."))
        db.commit()

    def invitations() -> dict[int, ExpertInvitation]:
        fresh(db)
        rows = db.scalars(select(ExpertInvitation).where(ExpertInvitation.thread_id == thread.id))
        return {row.user_id: row for row in rows}

    # The answers' own transaction leaves the invitations to the worker...
    assert [row.answered_at for row in invitations().values()] == [None, None]
    # ... which skips an answer hidden before it got to it.
    visibility.set_visibility(db, db.get_one(Post, hidden.id), Visibility.HIDDEN)
    db.commit()
    with clock.travel(90):
        assert announce_published(db) == 2
    recorded = invitations()
    assert recorded[ana.id].answered_at == clock.at(30)  # the answer's time, not the worker's
    assert recorded[ana.id].answered_in_time is True
    assert recorded[ben.id].answered_at is None


def test_without_tags_the_forum_record_chooses_the_experts(
    db: Session, qa: QA, make_user: UserFactory, clock: Clock
) -> None:
    old_asker, asker = make_user("oldasker"), make_user("asker")
    hal, ivy, jon = make_user("hal"), make_user("ivy"), make_user("jon")
    _history(db, qa, old_asker, {hal: (0, 2), ivy: (0, 1)}, [])
    jon.vacation_until = clock.at(-1)  # back from vacation
    db.commit()
    _history(db, qa, old_asker, {jon: (1, 0)}, [])
    with clock.travel(0):
        thread = _ask(db, qa, asker, "P2")  # 15 minutes: experts after 7.5
    with clock.travel(7):
        assert _sweep(db).invitations == 0
    with clock.travel(8):
        assert _sweep(db).invitations == 3
    invited = list(
        db.scalars(
            select(ExpertInvitation.user_id)
            .where(ExpertInvitation.thread_id == thread.id)
            .order_by(ExpertInvitation.id)
        )
    )
    assert invited == [jon.id, hal.id, ivy.id]


# --- SLA breaches --------------------------------------------------------------------------------


def test_breaches_are_recorded_once_with_the_seconds_over(
    db: Session, qa: QA, make_user: UserFactory, clock: Clock
) -> None:
    asker, agent = make_user("asker"), make_user("agentann", role=Role.AGENT)
    with clock.travel(0):
        thread = _ask(db, qa, asker, "P2")  # 15 minutes, 24 hours
    with clock.travel(1):
        escalation.request_support(db, asker, thread)
        db.commit()
    with clock.travel(14):
        assert _sweep(db).first_response_breaches == 0
    with clock.travel(20):
        assert _sweep(db).first_response_breaches == 1
    item = _one(db, thread)
    breach = _breaches(db, item)[BreachKind.FIRST_RESPONSE]
    assert (breach.due_at, breach.seconds_over, breach.met_at) == (clock.at(15), 300, None)
    assert breach.priority == Priority.P2 and breach.agent_id is None

    with clock.travel(30):
        qa.answer(agent, thread)  # the official answer is the first response
    item = _one(db, thread)
    assert item.first_response_at == clock.at(30)
    assert item.status == EscalationStatus.ANSWERED
    breach = _breaches(db, item)[BreachKind.FIRST_RESPONSE]
    assert (breach.met_at, breach.seconds_over) == (clock.at(30), 900)

    with clock.travel(24 * 60 + 5):
        report = _sweep(db)
    assert (report.first_response_breaches, report.resolution_breaches) == (0, 1)
    with clock.travel(24 * 60 + 10):
        assert _sweep(db).resolution_breaches == 0
    item = _one(db, thread)
    escalation.record_met(db, item, BreachKind.RESOLUTION, clock.at(25 * 60))
    db.commit()
    breach = _breaches(db, item)[BreachKind.RESOLUTION]
    assert breach.due_at == clock.at(24 * 60)
    assert (breach.met_at, breach.seconds_over) == (clock.at(25 * 60), 3600)
    assert len(_breaches(db, item)) == 2


def test_a_late_response_before_any_sweep_still_records_the_breach(
    db: Session, qa: QA, make_user: UserFactory, clock: Clock
) -> None:
    asker, agent = make_user("asker"), make_user("agentann", role=Role.AGENT)
    with clock.travel(0):
        late = _ask(db, qa, asker, "P2")
        on_time = _ask(db, qa, asker, "P2", title="My bill shows a double charge")
        for thread in (late, on_time):
            escalation.request_support(db, asker, thread)
        db.commit()
    with clock.travel(10):
        qa.answer(agent, on_time)
    with clock.travel(20):
        qa.answer(agent, late)
    assert _breaches(db, _one(db, on_time)) == {}
    breach = _breaches(db, _one(db, late))[BreachKind.FIRST_RESPONSE]
    assert (breach.met_at, breach.seconds_over) == (clock.at(20), 300)


def test_waiting_on_the_customer_pauses_the_resolution_clock(
    db: Session, qa: QA, make_user: UserFactory, clock: Clock
) -> None:
    asker, agent = make_user("asker"), make_user("agentann", role=Role.AGENT)
    with clock.travel(0):
        thread = _ask(db, qa, asker, "P2")  # resolution due in 24 hours
    with clock.travel(1):
        item = escalation.request_support(db, asker, thread)
        db.commit()
        _claim(db, item, agent, clock.at(1))
    with clock.travel(10):
        qa.answer(agent, thread, "Which phone model and system version do you use?")
        item = _one(db, thread)
        # What crowdservice.agent does when the agent asks the customer for details.
        item.status, item.waiting_since = EscalationStatus.WAITING, clock.at(10)
        db.commit()
    with clock.travel(24 * 60 + 30):
        assert _sweep(db).resolution_breaches == 0  # past due, but the clock is stopped

    with clock.travel(25 * 60):
        qa.answer(asker, thread, "Here are the details: an iPhone 15 on iOS 18.1.")
    item = _one(db, thread)
    assert item.status == EscalationStatus.CLAIMED
    assert item.waiting_since is None
    assert item.paused_seconds == (25 * 60 - 10) * 60
    due = escalation.resolution_due(item, clock.at(25 * 60))
    assert due == item.resolution_due_at + timedelta(seconds=item.paused_seconds)
    assert due > clock.at(25 * 60)
    with clock.travel(25 * 60 + 1):
        assert _sweep(db).resolution_breaches == 0
    later = (due - clock.start).total_seconds() / 60 + 1
    with clock.travel(later):
        assert _sweep(db).resolution_breaches == 1
    breach = _breaches(db, item)[BreachKind.RESOLUTION]
    assert breach.due_at == due
    assert breach.agent_id == agent.id


# --- community resolutions -----------------------------------------------------------------------


def test_a_peer_answer_accepted_before_any_claim_resolves_it_as_community(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory, clock: Clock
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    with clock.travel(0):
        thread = _ask(db, qa, asker, "P3")
    with clock.travel(1):
        escalation.request_support(db, asker, thread)
        db.commit()
    with clock.travel(5):
        post = qa.answer(helper, thread)
    with clock.travel(6):
        voting.accept(db, asker, post.id)
        db.commit()
    item = _one(db, thread)
    assert item.status == EscalationStatus.RESOLVED
    assert item.resolution == Resolution.COMMUNITY
    assert item.resolved_at == clock.at(6)
    assert reloaded(db, thread).status == ThreadStatus.SOLVED
    assert escalation.active_escalation(db, thread.id) is None
    (audit,) = _audits(db, "escalation.resolved")
    assert audit.reason == "community" and audit.actor_id is None

    # Other endings, as the agent workspace records them, for the deflection counts.
    with clock.travel(10):
        by_agent = _ask(db, qa, asker, "P3", title="Cannot log in to my account")
        returned = _ask(db, qa, asker, "P3", title="Which plan has the most data")
        for other, resolution, status in (
            (by_agent, Resolution.AGENT, EscalationStatus.RESOLVED),
            (returned, Resolution.RETURNED, EscalationStatus.RETURNED),
        ):
            ended = escalation.request_support(db, asker, other)
            ended.status, ended.resolution, ended.resolved_at = status, resolution, utcnow()
        db.commit()
    counts = escalation.deflection_counts(db, forum.brand_id, clock.at(0))
    assert (counts["community"], counts["agent"], counts["returned"]) == (1, 1, 1)
    assert counts["helpdesk"] == 0 and counts["total"] == 3
    assert counts["deflection_rate"] == pytest.approx(1 / 3)
    assert escalation.deflection_counts(db, forum.brand_id, clock.at(60))["total"] == 0


def test_an_answer_accepted_after_a_claim_is_left_to_the_agent(
    db: Session, qa: QA, make_user: UserFactory, clock: Clock
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    agent = make_user("agentann", role=Role.AGENT)
    with clock.travel(0):
        claimed = _ask(db, qa, asker, "P3")
        official = _ask(db, qa, asker, "P3", title="Voicemail greeting will not save")
        for thread in (claimed, official):
            escalation.request_support(db, asker, thread)
        db.commit()
    with clock.travel(2):
        _claim(db, _one(db, claimed), agent, clock.at(2))
        peer_answer = qa.answer(helper, claimed)
        agent_answer = qa.answer(agent, official)  # answered without claiming
    with clock.travel(5):
        voting.accept(db, asker, peer_answer.id)
        voting.accept(db, asker, agent_answer.id)
        db.commit()
    kept = _one(db, claimed)
    assert (kept.status, kept.resolution, kept.resolved_at) == (
        EscalationStatus.CLAIMED,
        None,
        None,
    )
    left = _one(db, official)
    assert (left.status, left.resolution) == (EscalationStatus.ANSWERED, None)
    assert _audits(db, "escalation.resolved") == []
