"""The support figures the queue and an agent's own page share, computed in one place so the two
pages cannot disagree.

Two different things are called "breaches", and the pages label them apart:

- **Overdue now** (`Workload`): active escalations in a brand's queue whose due time that
  matters now (first response until someone from support answers, then resolution, paused while
  waiting on the customer) has passed. Live, from the due times; the queue's "overdue" filter
  lists exactly these.
- **Breaches recorded** (`AgentFigures.breaches`): SLA targets missed in a period, one row per
  escalation and target (`SLABreach`), with the time over. Each counts for the agent who held
  the escalation when the target was missed or, if nobody held it then, the agent who holds it
  now (who took over a late item). An item overdue right now is recorded by the next sweep.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from community.core.models import Brand, User
from crowdservice.agent.queue_listing import QueueFilters, Workload, queue_counts
from crowdservice.models import Escalation, EscalationStatus, Priority, SLABreach


def workload(db: Session, viewer: User, brand: Brand, *, now: datetime) -> Workload:
    """The whole queue's figures, as the queue's heading counts them (one grouped count)."""
    return queue_counts(db, viewer, brand, QueueFilters(), now=now).workload


@dataclass(frozen=True, slots=True)
class BreachTotals:
    count: int = 0
    seconds_over: int = 0


@dataclass(frozen=True, slots=True)
class AgentFigures:
    """One agent's figures in one brand: the queue now, and a period's work."""

    since: datetime
    workload: Workload
    claimed: int
    resolved: int
    responses: int
    median_first_response_seconds: int | None
    breaches: BreachTotals
    breaches_per_priority: dict[str, BreachTotals] = field(default_factory=dict)


def agent_figures(
    db: Session, agent: User, brand: Brand, *, since: datetime, now: datetime
) -> AgentFigures:
    """Items claimed and resolved since a date, the median time from escalation to the first
    support answer, and the breaches recorded on the agent's items (see the module docstring)."""
    in_brand = Escalation.brand_id == brand.id
    claimed = db.scalar(
        select(func.count())
        .select_from(Escalation)
        .where(in_brand, Escalation.assigned_agent_id == agent.id, Escalation.claimed_at >= since)
    )
    resolved = db.scalar(
        select(func.count())
        .select_from(Escalation)
        .where(
            in_brand,
            Escalation.assigned_agent_id == agent.id,
            Escalation.status == EscalationStatus.RESOLVED,
            Escalation.resolved_at >= since,
        )
    )
    responses = db.execute(
        select(Escalation.created_at, Escalation.first_response_at).where(
            in_brand,
            Escalation.assigned_agent_id == agent.id,
            and_(
                Escalation.first_response_at.is_not(None),
                Escalation.first_response_at >= since,
            ),
        )
    ).all()
    waits = [
        max(0.0, (answered - created).total_seconds())
        for created, answered in responses
        if answered is not None
    ]
    responsible = func.coalesce(SLABreach.agent_id, Escalation.assigned_agent_id)
    recorded = db.execute(
        select(SLABreach.priority, SLABreach.due_at, SLABreach.met_at, SLABreach.seconds_over)
        .join(Escalation, Escalation.id == SLABreach.escalation_id)
        .where(in_brand, responsible == agent.id, SLABreach.recorded_at >= since)
    ).all()
    totals = {priority.value: [0, 0] for priority in Priority}
    for priority, due_at, met_at, seconds_over in recorded:
        # A target still unmet keeps running late until now.
        over = seconds_over if met_at is not None else int((now - due_at).total_seconds())
        totals[Priority(priority).value][0] += 1
        totals[Priority(priority).value][1] += max(0, over)
    per_priority = {key: BreachTotals(count, seconds) for key, (count, seconds) in totals.items()}
    return AgentFigures(
        since=since,
        workload=workload(db, agent, brand, now=now),
        claimed=int(claimed or 0),
        resolved=int(resolved or 0),
        responses=len(waits),
        median_first_response_seconds=int(statistics.median(waits)) if waits else None,
        breaches=BreachTotals(
            count=sum(item.count for item in per_priority.values()),
            seconds_over=sum(item.seconds_over for item in per_priority.values()),
        ),
        breaches_per_priority=per_priority,
    )
