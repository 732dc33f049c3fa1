"""Service: how fast the brand's customers got an answer, and how its agents keep up.

Definitions (times in the brand's business hours when it has them, as its targets are):

- **First response time**: from a question being asked to its first published answer by
  anyone but the asker (a peer or an agent). Counted for the period's triaged questions that
  have had one. Median and 90th percentile (nearest rank: the smallest time at least 90% of
  the responses took no longer than).
- **Answered within target**: of the period's triaged questions whose first-response target
  has passed or that were answered, the share answered by their due time. Questions not yet
  answered whose target is still ahead are left out until one or the other happens.
- **Resolution time**: for the period's escalations resolved so far, from escalation to
  resolution, less the time spent waiting on the customer.
- **Breaches**: SLA targets missed in the period (recorded when a due time passed), with
  the time over (to the response or resolution, or to now while it is still missing).
- **Open escalations by age**, **agents' load**: right now, whatever the period.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from community.core.models import Brand, Thread, User
from crowdservice.insights.period import InsightsFilter
from crowdservice.insights.scope import counted_threads, forum_ids
from crowdservice.models import (
    ACTIVE_ESCALATION,
    Escalation,
    Priority,
    Resolution,
    SLABreach,
)
from crowdservice.sla import Targets, business_time_between, hours_of, policy_for, targets_of

# Open escalations by age: (label, up to this age).
AGE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("under 1 hour", timedelta(hours=1)),
    ("1-4 hours", timedelta(hours=4)),
    ("4-24 hours", timedelta(hours=24)),
    ("1-3 days", timedelta(days=3)),
    ("over 3 days", None),
)
UNASSIGNED = "unassigned"


@dataclass(frozen=True, slots=True)
class Times:
    """Durations in seconds."""

    count: int
    median: float | None
    p90: float | None


@dataclass(frozen=True, slots=True)
class TargetShare:
    priority: str
    target_seconds: int  # the brand's first-response target for the priority
    counted: int  # questions judged: answered, or past their due time
    within: int
    pending: int  # not answered, due time still ahead
    share: float | None  # within / counted; None before any question is judged


@dataclass(frozen=True, slots=True)
class BreachLine:
    kind: str
    priority: str
    count: int
    seconds_over: int  # in all
    still_missing: int  # no response or resolution yet


@dataclass(frozen=True, slots=True)
class ServicePanel:
    first_response: Times
    first_response_by_priority: dict[str, Times]
    within_target: list[TargetShare]
    resolution: Times
    resolution_by_priority: dict[str, Times]
    breaches: list[BreachLine]
    open_by_age: list[tuple[str, int]]
    load: list[tuple[str, int]]


def nearest_rank(values: Sequence[float], fraction: float) -> float | None:
    """The smallest value at least `fraction` of the values do not exceed."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)), 1) - 1]


def times(seconds: Sequence[float]) -> Times:
    if not seconds:
        return Times(0, None, None)
    return Times(len(seconds), float(statistics.median(seconds)), nearest_rank(seconds, 0.9))


def service_panel(
    db: Session, brand: Brand, period: InsightsFilter, *, now: datetime
) -> ServicePanel:
    policy = policy_for(db, brand.id)
    hours = hours_of(policy)
    ids = forum_ids(db, brand, period)
    first, shares = _first_responses(db, ids, period, hours, targets_of(policy), now)
    resolution = _resolutions(db, ids, period, hours)
    return ServicePanel(
        first_response=times([value for values in first.values() for value in values]),
        first_response_by_priority={key: times(values) for key, values in sorted(first.items())},
        within_target=shares,
        resolution=times([value for values in resolution.values() for value in values]),
        resolution_by_priority={key: times(values) for key, values in sorted(resolution.items())},
        breaches=_breaches(db, ids, period, now),
        open_by_age=_open_by_age(db, brand, now),
        load=_load(db, brand),
    )


def _first_responses(
    db: Session,
    ids: list[int],
    period: InsightsFilter,
    hours: Mapping[str, Any] | None,
    targets: Mapping[Priority, Targets],
    now: datetime,
) -> tuple[dict[str, list[float]], list[TargetShare]]:
    # Four columns, not whole rows: a year of a busy brand is tens of thousands of questions.
    triaged = counted_threads(ids, period).where(Thread.first_response_due_at.is_not(None))
    rows = db.execute(
        triaged.with_only_columns(
            Thread.created_at, Thread.first_response_at, Thread.first_response_due_at,
            Thread.priority,
        )
    ).all()  # fmt: skip
    durations: dict[str, list[float]] = {}
    counted: Counter[str] = Counter()
    within: Counter[str] = Counter()
    pending: Counter[str] = Counter()
    for created, answered, due, stored_priority in rows:
        priority = stored_priority or Priority.P4.value
        if answered is not None:
            taken = business_time_between(created, answered, hours)
            durations.setdefault(priority, []).append(taken.total_seconds())
        if answered is None and due is not None and due > now:
            pending[priority] += 1
            continue
        counted[priority] += 1
        if answered is not None and due is not None and answered <= due:
            within[priority] += 1
    shares = [
        TargetShare(
            priority=key.value,
            target_seconds=int(targets[key].first_response.total_seconds()),
            counted=counted[key.value],
            within=within[key.value],
            pending=pending[key.value],
            share=within[key.value] / counted[key.value] if counted[key.value] else None,
        )
        for key in Priority
        if counted[key.value] or pending[key.value]
    ]
    return durations, shares


def _escalations_in_scope(ids: list[int], period: InsightsFilter) -> Select[Escalation]:
    """The period's escalations of the counted threads (escalated in the period)."""
    query = (
        select(Escalation)
        .join(Thread, Thread.id == Escalation.thread_id)
        .where(
            Thread.forum_id.in_(ids),
            Escalation.created_at >= period.since,
            Escalation.created_at < period.until,
        )
    )
    if period.language:
        query = query.where(Thread.locale == period.language)
    return query


_RESOLVED = (Resolution.AGENT, Resolution.COMMUNITY, Resolution.HELPDESK)


def _resolutions(
    db: Session, ids: list[int], period: InsightsFilter, hours: Mapping[str, Any] | None
) -> dict[str, list[float]]:
    resolved = db.execute(
        _escalations_in_scope(ids, period)
        .where(Escalation.resolved_at.is_not(None), Escalation.resolution.in_(_RESOLVED))
        .with_only_columns(
            Escalation.created_at, Escalation.resolved_at, Escalation.paused_seconds,
            Escalation.priority,
        )
    ).all()  # fmt: skip
    durations: dict[str, list[float]] = {}
    for created, resolved_at, paused, priority in resolved:
        assert resolved_at is not None  # the query asked for it
        taken = business_time_between(created, resolved_at, hours)
        seconds = max(taken.total_seconds() - paused, 0.0)
        durations.setdefault(priority.value, []).append(seconds)
    return durations


def _breaches(
    db: Session, ids: list[int], period: InsightsFilter, now: datetime
) -> list[BreachLine]:
    query = (
        select(SLABreach)
        .join(Escalation, Escalation.id == SLABreach.escalation_id)
        .join(Thread, Thread.id == Escalation.thread_id)
        .where(
            Thread.forum_id.in_(ids),
            SLABreach.recorded_at >= period.since,
            SLABreach.recorded_at < period.until,
        )
    )
    if period.language:
        query = query.where(Thread.locale == period.language)
    lines: dict[tuple[str, str], list[int]] = {}
    columns = (SLABreach.kind, SLABreach.priority, SLABreach.due_at, SLABreach.met_at,
               SLABreach.seconds_over)  # fmt: skip
    for kind, priority, due_at, met_at, seconds_over in db.execute(
        query.with_only_columns(*columns)
    ):
        line = lines.setdefault((kind.value, priority.value), [0, 0, 0])
        line[0] += 1
        if met_at is None:
            line[1] += max(int((now - due_at).total_seconds()), 0)
            line[2] += 1
        else:
            line[1] += seconds_over
    return [
        BreachLine(kind, priority, count, over, missing)
        for (kind, priority), (count, over, missing) in sorted(lines.items())
    ]


def _active(brand: Brand) -> Select[Escalation]:
    return select(Escalation).where(
        Escalation.brand_id == brand.id, Escalation.status.in_(ACTIVE_ESCALATION)
    )


def _open_by_age(db: Session, brand: Brand, now: datetime) -> list[tuple[str, int]]:
    counts = dict.fromkeys((label for label, _limit in AGE_BUCKETS), 0)
    for created in db.scalars(_active(brand).with_only_columns(Escalation.created_at)):
        age = now - created
        label = next(name for name, limit in AGE_BUCKETS if limit is None or age < limit)
        counts[label] += 1
    return list(counts.items())


def _load(db: Session, brand: Brand) -> list[tuple[str, int]]:
    """Active escalations per agent who holds them, most loaded first; then the unassigned."""
    held = db.execute(
        select(User.display_name, func.count())
        .select_from(Escalation)
        .join(User, User.id == Escalation.assigned_agent_id)
        .where(Escalation.brand_id == brand.id, Escalation.status.in_(ACTIVE_ESCALATION))
        .group_by(User.id, User.display_name)
    ).all()
    lines = sorted(((str(name), int(count)) for name, count in held), key=lambda x: (-x[1], x[0]))
    unassigned = db.scalar(
        _active(brand).with_only_columns(func.count()).where(Escalation.assigned_agent_id.is_(None))
    )
    return [*lines, (UNASSIGNED, int(unassigned or 0))]
