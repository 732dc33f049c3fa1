"""Escalation: how a thread reaches the support team, and the SLA clock. The periodic sweep
that escalates, invites experts and records breaches is in `crowdservice.escalation_sweep`.

A thread is escalated (one active escalation per thread, guaranteed by a partial unique index)
when its author asks for the support team, a moderator sends it, it is P1 (at once), or nobody
but its author answered by its first-response due time. The sweep also invites experts once
part of the first-response target has passed, and records SLA breaches.

The sweep only looks at threads with service deadlines (triage sets them; imported history has
none), that are visible, open or answered, unlocked, without an accepted answer, and that triage
did not mark as needing no response (`TriageResult.reasons["needs_response"] is False`: praise,
noise). A thread that was escalated once is not escalated again by the sweep (an agent who
returned it to the community meant it); its author or a moderator still can.

Agent actions (claim, respond, wait, hand off, resolve, return) live in crowdservice.agent; the
functions here that it shares are `active_escalation`, `record_met`, `resume_from_waiting` and
`release_thread`. Everything flushes, nothing commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    String,
    cast,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from community.core import i18n
from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import Conflict, FormErrors, NotFound, PermissionDenied
from community.core.i18n import gettext as _
from community.core.models import (
    NotificationKind,
    Post,
    Thread,
    ThreadStatus,
    User,
    Visibility,
)
from community.core.notifications import notify
from community.core.policy import (
    ensure_can_escalate,
    ensure_can_participate,
    ensure_thread_visible,
    is_agent,
)
from community.visibility import recompute_status
from crowdservice import sla
from crowdservice.models import (
    ACTIVE_ESCALATION,
    BreachKind,
    Escalation,
    EscalationReason,
    EscalationStatus,
    Resolution,
    SLABreach,
)

NOTE_MAX = 2000
ACTIVE = tuple(EscalationStatus(value) for value in ACTIVE_ESCALATION)


def active_escalation(db: Session, thread_id: int) -> Escalation | None:
    return db.scalar(
        select(Escalation).where(Escalation.thread_id == thread_id, Escalation.status.in_(ACTIVE))
    )


# --- escalating --------------------------------------------------------------------------------


def _refusal(thread: Thread) -> str | None:
    """Why this thread cannot go to the support team, or None."""
    if thread.visibility != Visibility.VISIBLE:
        return _("Only a published thread can go to the support team.")
    if thread.status == ThreadStatus.SOLVED or thread.accepted_post_id is not None:
        return _("This thread is already solved. If you still need help, ask a new question.")
    if thread.status == ThreadStatus.CLOSED:
        return _("This thread is closed.")
    if thread.status == ThreadStatus.LOCKED or thread.locked_at is not None:
        return _("This thread is locked.")
    return None


def _lock_thread(db: Session, thread: Thread) -> None:
    db.execute(
        select(Thread)
        .where(Thread.id == thread.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _locked_active(db: Session, thread_id: int) -> Escalation | None:
    """The active escalation, locked and re-read (an agent may have just changed it)."""
    return db.scalar(
        select(Escalation)
        .where(Escalation.thread_id == thread_id, Escalation.status.in_(ACTIVE))
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _tell_author(db: Session, thread: Thread, actor: User | None) -> None:
    author = thread.author
    if author is None:
        return
    # Written now, read later: in the author's language, not the one of whoever escalated.
    with i18n.override(author.locale or thread.forum.brand.default_locale or "en"):
        message = _("A support agent has been notified")
    notify(
        db, author, NotificationKind.SUPPORT, actor=actor, thread=thread, data={"message": message}
    )


def escalate(
    db: Session,
    thread: Thread,
    reason: EscalationReason,
    *,
    actor: User | None = None,
    note: str | None = None,
) -> Escalation:
    """Send the thread to the support team, or return the escalation it already has. Raises
    Conflict for threads that are solved, closed, locked or not published."""
    # Escalating takes the thread's row lock first (as accepting and publishing do), so
    # concurrent escalations of one thread queue up and the later ones find the first.
    _lock_thread(db, thread)
    existing = active_escalation(db, thread.id)
    if existing is not None:
        return existing
    refusal = _refusal(thread)
    if refusal is not None:
        raise Conflict(refusal)
    if thread.first_response_due_at is None or thread.resolution_due_at is None:
        sla.set_due_times(db, thread)
    assert thread.first_response_due_at is not None
    assert thread.resolution_due_at is not None
    now = utcnow()
    created = Escalation(
        thread_id=thread.id,
        brand_id=thread.forum.brand_id,
        reason=reason,
        priority=sla.priority_of(thread.priority),
        status=EscalationStatus.OPEN,
        escalated_by_id=actor.id if actor else None,
        note=note,
        first_response_due_at=thread.first_response_due_at,
        resolution_due_at=thread.resolution_due_at,
        paused_seconds=0,
        created_at=now,
        updated_at=now,
    )
    try:
        # A concurrent escalation of the same thread (the sweep and a button, two workers)
        # trips the partial unique index; the loser returns the winner's row.
        with db.begin_nested():
            db.add(created)
            db.flush()
    except IntegrityError:
        winner = active_escalation(db, thread.id)
        if winner is None:
            raise
        return winner
    thread.status = ThreadStatus.ESCALATED
    _tell_author(db, thread, actor)
    record_audit(
        db,
        actor=actor,
        action="escalation.created",
        target_type="escalation",
        target_id=created.id,
        after={
            "thread_id": thread.id,
            "reason": reason.value,
            "priority": created.priority.value,
            "note": note,
        },
        reason=reason.value,
    )
    db.flush()
    return created


def request_support(db: Session, user: User, thread: Thread) -> Escalation:
    """ "I need help from the support team": the thread's author only."""
    ensure_can_participate(user)
    if thread.author_id != user.id:
        ensure_thread_visible(user, thread)
        raise PermissionDenied(_("Only the person who asked can call in the support team."))
    if thread.visibility == Visibility.PENDING:
        raise Conflict(
            _("Your question is waiting for a moderator; ask for support once it is published.")
        )
    if thread.visibility != Visibility.VISIBLE:
        raise NotFound()
    return escalate(db, thread, EscalationReason.AUTHOR_REQUEST, actor=user)


def escalate_by_moderator(
    db: Session, moderator: User, thread: Thread, note: str | None
) -> Escalation:
    ensure_can_escalate(moderator, thread.brand_id)
    ensure_can_participate(moderator)
    cleaned = (note or "").strip() or None
    if cleaned is not None and len(cleaned) > NOTE_MAX:
        raise FormErrors({"note": _("Keep the note under %(max)d characters.") % {"max": NOTE_MAX}})
    return escalate(db, thread, EscalationReason.MODERATOR, actor=moderator, note=cleaned)


def release_thread(thread: Thread) -> None:
    """An escalation ended (resolved, returned): the thread's status follows its answers again."""
    if thread.status == ThreadStatus.ESCALATED:
        thread.status = ThreadStatus.OPEN
        recompute_status(thread)


# --- the SLA clock -----------------------------------------------------------------------------


def _breach(db: Session, escalation_id: int, kind: BreachKind) -> SLABreach | None:
    return db.scalar(
        select(SLABreach).where(SLABreach.escalation_id == escalation_id, SLABreach.kind == kind)
    )


def paused_seconds(escalation: Escalation, at: datetime) -> int:
    """Seconds the resolution clock has been stopped, a pause still running at `at` included."""
    total = escalation.paused_seconds or 0
    if escalation.waiting_since is not None:
        total += max(0, int((at - escalation.waiting_since).total_seconds()))
    return total


def end_pause(escalation: Escalation, at: datetime) -> None:
    """Start the resolution clock again: a running pause adds to `paused_seconds`."""
    if escalation.waiting_since is not None:
        escalation.paused_seconds = paused_seconds(escalation, at)
        escalation.waiting_since = None


def resolution_due(escalation: Escalation, at: datetime) -> datetime:
    """When the resolution is due, counting the time spent waiting on the customer (a pause
    still running at `at` included)."""
    return escalation.resolution_due_at + timedelta(seconds=paused_seconds(escalation, at))


def _due(escalation: Escalation, kind: BreachKind, at: datetime) -> datetime:
    if kind == BreachKind.FIRST_RESPONSE:
        return escalation.first_response_due_at
    return resolution_due(escalation, at)


def _seconds_over(at: datetime, due: datetime) -> int:
    return max(0, int((at - due).total_seconds()))


def record_breach(
    db: Session, escalation: Escalation, kind: BreachKind, now: datetime
) -> SLABreach | None:
    """Insert the breach row; None if another transaction recorded it first."""
    due = _due(escalation, kind, now)
    breach = SLABreach(
        escalation_id=escalation.id,
        kind=kind,
        priority=escalation.priority,
        agent_id=escalation.assigned_agent_id,
        due_at=due,
        recorded_at=now,
        seconds_over=_seconds_over(now, due),
    )
    try:
        with db.begin_nested():
            db.add(breach)
            db.flush()
    except IntegrityError:
        return None
    return breach


def record_met(db: Session, escalation: Escalation, kind: BreachKind, at: datetime) -> None:
    """The first response or resolution happened at `at`: a breach (recorded by the sweep, or
    now if the sweep has not run since the due time) gets its met time and seconds over."""
    breach = _breach(db, escalation.id, kind)
    if breach is None:
        if at <= _due(escalation, kind, at):
            return
        breach = record_breach(db, escalation, kind, at) or _breach(db, escalation.id, kind)
        if breach is None:
            return
    if breach.met_at is None:
        breach.met_at = at
        breach.seconds_over = _seconds_over(at, breach.due_at)
    db.flush()


def resume_from_waiting(
    db: Session, escalation: Escalation, *, now: datetime | None = None
) -> None:
    """The customer replied: the resolution clock runs again (the wait adds to paused_seconds,
    which moves the resolution due time on) and the case goes back to its agent."""
    if escalation.status != EscalationStatus.WAITING:
        return
    now = now or utcnow()
    end_pause(escalation, now)
    escalation.status = (
        EscalationStatus.CLAIMED
        if escalation.assigned_agent_id is not None
        else EscalationStatus.OPEN
    )
    escalation.updated_at = now
    db.flush()


# --- hooks the Q&A code calls ------------------------------------------------------------------


def _is_agent_post(post: Post) -> bool:
    return post.is_official or is_agent(post.author)


def on_post_published(db: Session, thread: Thread, post: Post) -> None:
    """An answer became visible: an agent responded, or the author replied to an agent waiting
    on them. (An invited expert's answer is recorded by the worker: experts.on_post_announced.)"""
    if post.is_question or post.visibility != Visibility.VISIBLE or post.author_id is None:
        return
    by_author = post.author_id == thread.author_id
    by_agent = _is_agent_post(post) and not by_author
    active = _locked_active(db, thread.id) if by_agent or by_author else None
    if active is not None:
        now = utcnow()
        if by_agent:
            if active.first_response_at is None:
                active.first_response_at = post.created_at
                record_met(db, active, BreachKind.FIRST_RESPONSE, post.created_at)
            if active.status in (EscalationStatus.OPEN, EscalationStatus.CLAIMED):
                active.status = EscalationStatus.ANSWERED
            active.updated_at = now
        else:
            resume_from_waiting(db, active, now=now)
        db.flush()


def on_answer_accepted(db: Session, thread: Thread, post: Post) -> None:
    """The asker accepted an answer. Before any agent claimed the escalation, a peer's answer
    resolves it as a community resolution (deflection); otherwise the agent decides."""
    if _is_agent_post(post):
        return
    active = _locked_active(db, thread.id)
    if active is None:
        return
    if active.assigned_agent_id is not None or active.status not in (
        EscalationStatus.OPEN,
        EscalationStatus.ANSWERED,
    ):
        return
    now = utcnow()
    active.status = EscalationStatus.RESOLVED
    active.resolution = Resolution.COMMUNITY
    active.resolved_at = now
    active.updated_at = now
    # The customer got their response from the community: an open first-response breach ends.
    if active.first_response_at is None:
        breach = _breach(db, active.id, BreachKind.FIRST_RESPONSE)
        if breach is not None and breach.met_at is None:
            record_met(db, active, BreachKind.FIRST_RESPONSE, thread.first_response_at or now)
    record_met(db, active, BreachKind.RESOLUTION, now)
    release_thread(thread)
    record_audit(
        db,
        actor=None,
        action="escalation.resolved",
        target_type="escalation",
        target_id=active.id,
        after={"thread_id": thread.id, "resolution": Resolution.COMMUNITY.value,
               "post_id": post.id},
        reason=Resolution.COMMUNITY.value,
    )  # fmt: skip
    db.flush()


# --- measures ----------------------------------------------------------------------------------


def deflection_counts(db: Session, brand_id: int, since: datetime) -> dict[str, Any]:
    """How escalations that ended since `since` ended: resolved by the community (deflected),
    by an agent, at the helpdesk, or returned to the community."""
    outcome = func.coalesce(cast(Escalation.resolution, String), cast(Escalation.status, String))
    ended_at = func.coalesce(Escalation.resolved_at, Escalation.updated_at)
    rows = db.execute(
        select(outcome, func.count())
        .where(
            Escalation.brand_id == brand_id,
            ended_at >= since,
            (Escalation.resolution.is_not(None))
            | (Escalation.status.in_((EscalationStatus.RESOLVED, EscalationStatus.RETURNED))),
        )
        .group_by(outcome)
    ).all()
    counts: dict[str, Any] = {resolution.value: 0 for resolution in Resolution}
    for value, count in rows:
        key = str(value)
        if key == EscalationStatus.RESOLVED.value:
            key = Resolution.AGENT.value
        counts[key] = counts.get(key, 0) + int(count)
    total = sum(counts.values())
    counts["total"] = total
    counts["deflection_rate"] = counts[Resolution.COMMUNITY.value] / total if total else 0.0
    return counts
