"""The queue of escalations, the most urgent first, a page at a time, with its counts.

Two statements whatever the queue's size: one grouped count (the whole queue's figures and the
count of each tab under the chosen filters) and one page of rows. The order is the due time
that matters now (first response, then resolution with pauses added), then priority and id;
the database follows it from an index (ix_escalations_queue_due) for the items whose clock
runs, and sorts only the items waiting on the customer, whose due time moves with the clock
(queue_sql).

Pages are numbered (offset), not keyset cursors: the queue holds the active escalations only
(a thousand or so, read in index order, so a late page costs little), items leave it and
waiting ones move as time passes, and an agent refreshing page 3 (htmx, every 15 s) wants
what is on page 3 now, not what followed an item that may have gone. A page past the end shows
the last page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy import Select, and_, case, func, not_, select, true, union_all
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.sql.elements import ColumnElement

from community.core.models import Brand, Forum, Thread, User
from community.core.policy import ensure_agent
from crowdservice.agent import queue_sql
from crowdservice.agent.access import ACTIVE_STATUSES
from crowdservice.agent.clocks import due_that_matters
from crowdservice.models import BreachKind, Escalation, EscalationStatus, Priority

PAGE_SIZE = 50
QUEUE_SCOPES = ("all", "mine", "unclaimed", "breached")
COUNTED_STATES = (
    EscalationStatus.OPEN,
    EscalationStatus.CLAIMED,
    EscalationStatus.ANSWERED,
    EscalationStatus.WAITING,
    EscalationStatus.HANDED_OFF,
)
# Past this a page number is "the end" (the page shown is then the last one).
_LAST_PAGE = 10**9


@dataclass
class QueueFilters:
    """What the queue shows. Unknown values from a query string are dropped by from_params, so
    a hand-edited URL never fails."""

    priority: Priority | None = None
    forum: str | None = None  # forum slug
    interaction_type: str | None = None
    language: str | None = None
    scope: str = "all"  # "all" | "mine" | "unclaimed" | "breached"
    statuses: frozenset[EscalationStatus] = field(default_factory=lambda: ACTIVE_STATUSES)
    page: int = 1  # as asked; the listing says which page it shows

    @classmethod
    def from_params(cls, params: dict[str, str]) -> QueueFilters:
        priority = params.get("priority") or ""
        scope = params.get("scope") or "all"
        wanted = {value for value in (params.get("status") or "").split(",") if value}
        statuses = frozenset(
            EscalationStatus(value)
            for value in wanted
            if value in EscalationStatus._value2member_map_
        )
        return cls(
            priority=Priority(priority) if priority in Priority._value2member_map_ else None,
            forum=(params.get("forum") or "")[:60] or None,
            interaction_type=(params.get("type") or "")[:30] or None,
            language=(params.get("language") or "")[:8] or None,
            scope=scope if scope in QUEUE_SCOPES else "all",
            statuses=statuses or ACTIVE_STATUSES,
            page=_page_number(params.get("page") or ""),
        )

    def query(self, **changes: str | int) -> str:
        """These filters as a query string, with `changes` (another scope or page); values at
        their defaults are left out."""
        values: dict[str, str | int] = {
            "scope": self.scope,
            "priority": self.priority.value if self.priority else "",
            "forum": self.forum or "",
            "type": self.interaction_type or "",
            "language": self.language or "",
            "status": ""
            if self.statuses == ACTIVE_STATUSES
            else ",".join(sorted(status.value for status in self.statuses)),
            "page": self.page,
        } | changes
        defaults: dict[str, str | int] = {"scope": "all", "page": 1}
        return urlencode(
            {key: value for key, value in values.items() if value not in ("", defaults.get(key))}
        )


def _page_number(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()):
        return 1
    return max(1, int(raw)) if len(raw) <= 9 else _LAST_PAGE


@dataclass(frozen=True, slots=True)
class Workload:
    """Right now, in one brand's queue: the active escalations on visible threads (the queue's
    heading and an agent's figures show it, crowdservice/figures.py)."""

    per_state: dict[str, int]
    overdue: int
    mine: int
    overdue_mine: int
    unclaimed: int

    @property
    def total(self) -> int:
        return sum(self.per_state.values())


@dataclass(frozen=True, slots=True)
class QueueCounts:
    workload: Workload  # the whole queue, whatever the filters
    tabs: dict[str, int]  # per scope: the items matching the other filters


@dataclass
class QueueItem:
    escalation: Escalation
    thread_id: int
    title: str
    forum_slug: str
    forum_name: str
    priority: Priority
    interaction_type: str | None
    language: str
    status: EscalationStatus
    reason: str
    assignee: User | None
    due_kind: BreachKind
    due_at: datetime
    seconds_left: int

    @property
    def breached(self) -> bool:
        return self.seconds_left < 0


@dataclass
class QueueListing:
    """One page of the items matching the filters, and the queue's counts."""

    items: list[QueueItem]
    counts: QueueCounts
    total: int  # items matching the filters and the scope, on every page
    page: int  # the page shown (the one asked for, or the last one)
    pages: int

    @property
    def first(self) -> int:
        """The position of the first item shown (1 for the first page), 0 when none is."""
        return (self.page - 1) * PAGE_SIZE + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0


# --- the SQL ---------------------------------------------------------------------------------


def _statuses(statuses: frozenset[EscalationStatus]) -> list[ColumnElement[bool]]:
    """Escalations in `statuses`; within the active ones, as the partial indexes say it."""
    if statuses == ACTIVE_STATUSES:
        return [queue_sql.active()]
    if statuses <= ACTIVE_STATUSES:
        return [queue_sql.active(), Escalation.status.in_(sorted(statuses))]
    return [Escalation.status.in_(sorted(statuses))]


def _filtered(brand: Brand, filters: QueueFilters) -> list[ColumnElement[bool]]:
    """The filters but the scope and the statuses."""
    conditions: list[ColumnElement[bool]] = []
    if filters.priority is not None:
        conditions.append(Escalation.priority == filters.priority)
    on_thread: list[ColumnElement[bool]] = []
    if filters.forum:
        forum_id = select(Forum.id).where(Forum.brand_id == brand.id, Forum.slug == filters.forum)
        on_thread.append(Thread.forum_id == forum_id.scalar_subquery())
    if filters.interaction_type:
        on_thread.append(Thread.interaction_type == filters.interaction_type)
    if filters.language:
        on_thread.append(Thread.locale == filters.language)
    if on_thread:
        # One look-up of each escalation's thread by its key (a subquery PostgreSQL keeps per
        # row): joining the threads instead read every thread of the forum to find a few.
        matched = select(and_(*on_thread)).where(Thread.id == Escalation.thread_id)
        conditions.append(matched.scalar_subquery().is_(true()))
    return conditions


def _in_scope(
    scope: str, viewer: User, now: datetime, *, paused: bool | None = None
) -> ColumnElement[bool]:
    if scope == "mine":
        return Escalation.assigned_agent_id == viewer.id
    if scope == "unclaimed":
        return Escalation.assigned_agent_id.is_(None)
    if scope == "breached":
        return queue_sql.overdue(now, paused=paused)
    return true()


def _number(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def queue_counts(
    db: Session, viewer: User, brand: Brand, filters: QueueFilters, *, now: datetime
) -> QueueCounts:
    """The whole queue's figures and each tab's count under `filters`: one grouped count, by
    status and by whether the escalation matches the filters."""
    chosen = and_(true(), *_filtered(brand, filters))
    if filters.statuses != ACTIVE_STATUSES:
        chosen = and_(chosen, Escalation.status.in_(sorted(filters.statuses)))
    late = queue_sql.overdue(now)
    mine, unclaimed = (_in_scope(scope, viewer, now) for scope in ("mine", "unclaimed"))
    statement = (
        select(
            Escalation.status,
            chosen.label("chosen"),
            func.count(),
            _number(late),
            _number(mine),
            _number(and_(late, mine)),
            _number(unclaimed),
        )
        .where(
            Escalation.brand_id == brand.id,
            *_statuses(filters.statuses | ACTIVE_STATUSES),
            queue_sql.on_visible_thread(),
        )
        .group_by(Escalation.status, "chosen")
    )
    per_state = dict.fromkeys((state.value for state in COUNTED_STATES), 0)
    figures = [0, 0, 0, 0]  # overdue, mine, overdue and mine, unclaimed
    tabs = dict.fromkeys(QUEUE_SCOPES, 0)
    for status, matches, count, *numbers in db.execute(statement):
        if EscalationStatus(status) in ACTIVE_STATUSES:
            per_state[EscalationStatus(status).value] += int(count)
            figures = [total + int(number) for total, number in zip(figures, numbers, strict=True)]
        if matches:
            late_ones, held, _late_held, free = (int(number) for number in numbers)
            for scope, number in zip(QUEUE_SCOPES, (count, held, free, late_ones), strict=True):
                tabs[scope] += int(number)
    overdue, mine_total, overdue_mine, free_total = figures
    workload = Workload(
        per_state=per_state, overdue=overdue, mine=mine_total, overdue_mine=overdue_mine,
        unclaimed=free_total,
    )  # fmt: skip
    return QueueCounts(workload=workload, tabs=tabs)


def _ordered(
    brand: Brand, viewer: User, filters: QueueFilters, now: datetime, *, paused: bool, rows: int
) -> Select[tuple[int, Priority, float]]:
    """The first `rows` items whose pause runs (`paused`) or of the others, in queue order."""
    left = queue_sql.seconds_left(now, paused=paused).label("seconds_left")
    running = queue_sql.pause_running(now)
    statement = select(Escalation.id, Escalation.priority, left).where(
        Escalation.brand_id == brand.id,
        *_statuses(filters.statuses),
        queue_sql.on_visible_thread(),
        running if paused else not_(running),
        _in_scope(filters.scope, viewer, now, paused=paused),
        *_filtered(brand, filters),
    )
    # Items whose clock runs are read in the index's order; the waiting ones are sorted.
    order = (Escalation.queue_due_at,) if not paused else (left,)
    branch = statement.order_by(*order, Escalation.priority, Escalation.id).limit(rows)
    return select(branch.subquery())


def _page_rows(
    db: Session, viewer: User, brand: Brand, filters: QueueFilters, now: datetime, page: int
) -> list[tuple[Escalation, Thread, Forum]]:
    rows = page * PAGE_SIZE
    merged = union_all(
        _ordered(brand, viewer, filters, now, paused=False, rows=rows),
        _ordered(brand, viewer, filters, now, paused=True, rows=rows),
    ).subquery("merged")
    order = (merged.c.seconds_left, merged.c.priority, merged.c.id)
    shown = select(merged).order_by(*order).offset(rows - PAGE_SIZE).limit(PAGE_SIZE).subquery()
    statement = (
        select(Escalation, Thread, Forum)
        .select_from(shown)
        .join(Escalation, Escalation.id == shown.c.id)
        .join(Thread, Thread.id == Escalation.thread_id)
        .join(Forum, Forum.id == Thread.forum_id)
        .options(joinedload(Escalation.assigned_agent))
        .order_by(shown.c.seconds_left, shown.c.priority, shown.c.id)
    )
    return [(escalation, thread, forum) for escalation, thread, forum in db.execute(statement)]


def queue(
    db: Session, viewer: User, brand: Brand, filters: QueueFilters, *, now: datetime
) -> QueueListing:
    """A page of the brand's escalations on threads still visible, the most urgent first, and
    the queue's counts."""
    ensure_agent(viewer, brand.id)
    counts = queue_counts(db, viewer, brand, filters, now=now)
    total = counts.tabs[filters.scope]
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(filters.page, pages)
    rows = _page_rows(db, viewer, brand, filters, now, page) if total else []
    items: list[QueueItem] = []
    for escalation, thread, forum in rows:
        due_kind, due_at = due_that_matters(escalation, now)
        items.append(
            QueueItem(
                escalation=escalation,
                thread_id=thread.id,
                title=thread.title,
                forum_slug=forum.slug,
                forum_name=forum.name,
                priority=escalation.priority,
                interaction_type=thread.interaction_type,
                language=thread.locale,
                status=escalation.status,
                reason=escalation.reason.value,
                assignee=escalation.assigned_agent,
                due_kind=due_kind,
                due_at=due_at,
                seconds_left=int((due_at - now).total_seconds()),
            )
        )
    return QueueListing(items=items, counts=counts, total=total, page=page, pages=pages)
