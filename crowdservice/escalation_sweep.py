"""The periodic escalation sweep: invites experts once part of the first-response target has
passed, escalates P1 threads and threads nobody but their author answered by the due time, and
records SLA breaches. Which threads it looks at is described in `crowdservice.escalation`.
Safe to run from several workers at once; it flushes, the caller commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, String, cast, exists, extract, func, select
from sqlalchemy.orm import Session

from community.core.clock import utcnow
from community.core.errors import Conflict
from community.core.models import Brand, Forum, Post, Thread, ThreadStatus, Visibility
from crowdservice import experts, sla
from crowdservice.escalation import ACTIVE, escalate, record_breach
from crowdservice.models import (
    BreachKind,
    Escalation,
    EscalationReason,
    EscalationStatus,
    ExpertInvitation,
    Priority,
    SLABreach,
    TriageResult,
)

# Threads (or escalations) one sweep handles per kind of work; the rest wait for the next pass.
BATCH = 200
SWEPT_STATES = (ThreadStatus.OPEN, ThreadStatus.ANSWERED)


@dataclass
class SweepReport:
    invited_threads: int = 0
    invitations: int = 0
    escalated_critical: int = 0
    escalated_no_response: int = 0
    first_response_breaches: int = 0
    resolution_breaches: int = 0

    @property
    def escalated(self) -> int:
        return self.escalated_critical + self.escalated_no_response


def _answered_by_someone_else() -> ColumnElement[bool]:
    return exists().where(
        Post.thread_id == Thread.id,
        Post.is_question.is_(False),
        Post.visibility == Visibility.VISIBLE,
        Post.author_id.is_distinct_from(Thread.author_id),
    )


def _needs_no_response() -> ColumnElement[bool]:
    # Compared as text: JSON false reads "false" on PostgreSQL and 0 on SQLite, and nothing
    # the triage might store makes the query fail.
    flag = func.lower(cast(TriageResult.reasons["needs_response"].as_string(), String))
    return exists().where(TriageResult.thread_id == Thread.id, flag.in_(("false", "0")))


def _ever_escalated() -> ColumnElement[bool]:
    return exists().where(Escalation.thread_id == Thread.id)


def _swept_threads(*conditions: Any) -> Select[Thread]:
    """Threads the sweep may act on, locked so that several workers share the work (PostgreSQL
    skips rows another worker holds; SQLite has one writer at a time anyway)."""
    return (
        select(Thread)
        .where(
            Thread.visibility == Visibility.VISIBLE,
            Thread.status.in_(SWEPT_STATES),
            Thread.locked_at.is_(None),
            Thread.accepted_post_id.is_(None),
            Thread.first_response_due_at.is_not(None),
            ~_needs_no_response(),
            *conditions,
        )
        .with_for_update(skip_locked=True, of=Thread)
    )


def _invite_experts(db: Session, now: datetime, report: SweepReport) -> None:
    for brand_id in db.scalars(select(Brand.id).order_by(Brand.id)).all():
        policy = sla.policy_for(db, brand_id)
        hours = sla.hours_of(policy)
        factor = policy.expert_delay_factor
        factor = sla.DEFAULT_EXPERT_DELAY_FACTOR if factor is None else max(0.0, factor)
        for priority, targets in sla.targets_of(policy).items():
            left = BATCH - report.invited_threads
            if left <= 0:
                return
            cutoff = sla.subtract_business_time(now, targets.first_response * factor, hours)
            same_priority = Thread.priority == priority.value
            if priority == sla.DEFAULT_PRIORITY:
                same_priority = same_priority | Thread.priority.is_(None)
            candidates = db.scalars(
                _swept_threads(
                    Thread.forum_id.in_(select(Forum.id).where(Forum.brand_id == brand_id)),
                    same_priority,
                    Thread.created_at <= cutoff,
                    # Past the due time the support team takes over.
                    Thread.first_response_due_at > now,
                    ~_answered_by_someone_else(),
                    ~exists().where(ExpertInvitation.thread_id == Thread.id),
                )
                # Newest first: a thread nobody can help with stops being retried at its due time.
                .order_by(Thread.created_at.desc(), Thread.id.desc())
                .limit(left)
            ).all()
            for thread in candidates:
                invited = experts.invite_experts(db, thread, now=now)
                report.invited_threads += 1
                report.invitations += len(invited)


def _escalate_all(db: Session, threads: list[Thread], reason: EscalationReason) -> int:
    done = 0
    for thread in threads:
        try:
            escalate(db, thread, reason)
        except Conflict:
            continue  # changed under us (solved, locked); nothing to do
        done += 1
    return done


def _resolution_due_epoch(db: Session) -> ColumnElement[Any]:
    """`resolution_due_at + paused_seconds` as Unix seconds, so the database compares it."""
    if db.get_bind().dialect.name == "postgresql":
        epoch: ColumnElement[Any] = extract("epoch", Escalation.resolution_due_at)
    else:
        # SQLite stores UTC as naive text, which strftime reads as UTC.
        epoch = cast(func.strftime("%s", Escalation.resolution_due_at), Integer)
    return epoch + Escalation.paused_seconds


def _record_breaches(db: Session, now: datetime, report: SweepReport) -> None:
    def unrecorded(kind: BreachKind) -> ColumnElement[bool]:
        return ~exists().where(SLABreach.escalation_id == Escalation.id, SLABreach.kind == kind)

    late_responses = db.scalars(
        select(Escalation)
        .where(
            Escalation.status.in_(ACTIVE),
            Escalation.first_response_at.is_(None),
            Escalation.first_response_due_at <= now,
            unrecorded(BreachKind.FIRST_RESPONSE),
        )
        .order_by(Escalation.first_response_due_at, Escalation.id)
        .limit(BATCH)
    ).all()
    for item in late_responses:
        if record_breach(db, item, BreachKind.FIRST_RESPONSE, now) is not None:
            report.first_response_breaches += 1
    # Waiting on the customer stops the resolution clock; resuming moves the due time on.
    running = tuple(status for status in ACTIVE if status != EscalationStatus.WAITING)
    due = _resolution_due_epoch(db)
    late_resolutions = db.scalars(
        select(Escalation)
        .where(
            Escalation.status.in_(running),
            Escalation.resolved_at.is_(None),
            Escalation.resolution_due_at <= now,
            due <= now.timestamp(),
            unrecorded(BreachKind.RESOLUTION),
        )
        .order_by(due, Escalation.id)
        .limit(BATCH)
    ).all()
    for item in late_resolutions:
        if record_breach(db, item, BreachKind.RESOLUTION, now) is not None:
            report.resolution_breaches += 1


def sweep(db: Session, *, now: datetime | None = None) -> SweepReport:
    """One pass: invite experts, escalate P1 threads and threads nobody answered in time,
    record breaches. Safe to run from several workers at once; the caller commits."""
    now = now or utcnow()
    report = SweepReport()
    _invite_experts(db, now, report)
    critical = db.scalars(
        _swept_threads(Thread.priority == Priority.P1.value, ~_ever_escalated())
        .order_by(Thread.created_at, Thread.id)
        .limit(BATCH)
    ).all()
    report.escalated_critical = _escalate_all(db, list(critical), EscalationReason.CRITICAL)
    unanswered = db.scalars(
        _swept_threads(
            Thread.first_response_due_at <= now,
            ~_answered_by_someone_else(),
            ~_ever_escalated(),
        )
        .order_by(Thread.first_response_due_at, Thread.id)
        .limit(BATCH)
    ).all()
    report.escalated_no_response = _escalate_all(db, list(unanswered), EscalationReason.NO_RESPONSE)
    _record_breaches(db, now, report)
    db.flush()
    return report
