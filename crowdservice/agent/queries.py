"""What the workspace shows: the queue of escalations, the most urgent first, and the whole
context of one item with similar KB entries and solved threads (the queue's counts and an
agent's own figures are in crowdservice/figures.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from community.core.clock import utcnow
from community.core.models import Brand, Forum, Post, Thread, User, Visibility
from community.core.policy import ensure_agent
from crowdservice import explain, triage
from crowdservice.agent.access import ACTIVE_STATUSES
from crowdservice.agent.clocks import due_that_matters, resolution_due, seconds_left
from crowdservice.models import (
    BreachKind,
    Escalation,
    EscalationStatus,
    Priority,
    Segment,
    TriageResult,
)
from kb import suggestions
from kb.search import SearchEngine, SearchUnavailable
from kb.search_queries import STOP_WORDS

QUEUE_LIMIT = 200
RECENT_THREADS = 10
EARLIER_ESCALATIONS = 20
# Words of a title that make a search query (similar_entries).
_WORD = re.compile(r"\w+")
_STOP_WORDS = frozenset(STOP_WORDS)


def earlier_escalations(db: Session, escalation: Escalation) -> list[Escalation]:
    """The author's escalations before this one, newest first (the item page and the helpdesk
    payload show them)."""
    author_id = escalation.thread.author_id
    if author_id is None:
        return []
    return list(
        db.scalars(
            select(Escalation)
            .join(Thread, Thread.id == Escalation.thread_id)
            .where(Thread.author_id == author_id, Escalation.id != escalation.id)
            .where(Escalation.created_at <= escalation.created_at)
            .options(joinedload(Escalation.thread))
            .order_by(Escalation.created_at.desc(), Escalation.id.desc())
            .limit(EARLIER_ESCALATIONS)
        )
    )


# --- the queue -------------------------------------------------------------------------------

QUEUE_SCOPES = ("all", "mine", "unclaimed", "breached")
COUNTED_STATES = (
    EscalationStatus.OPEN,
    EscalationStatus.CLAIMED,
    EscalationStatus.ANSWERED,
    EscalationStatus.WAITING,
    EscalationStatus.HANDED_OFF,
)


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
        )


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
    """The items matching the filters; the queue's counts come from figures.workload."""

    items: list[QueueItem]
    total: int  # items matching the filters (items holds at most QUEUE_LIMIT)


def queue(
    db: Session, viewer: User, brand: Brand, filters: QueueFilters, *, now: datetime
) -> QueueListing:
    """The brand's escalations on threads still visible, the most urgent first: ordered by the
    due time that matters now (first response, then resolution with pauses added)."""
    ensure_agent(viewer)
    rows = list(
        db.execute(
            select(Escalation, Thread, Forum)
            .join(Thread, Thread.id == Escalation.thread_id)
            .join(Forum, Forum.id == Thread.forum_id)
            .where(
                Escalation.brand_id == brand.id,
                Escalation.status.in_(list(ACTIVE_STATUSES | filters.statuses)),
                Thread.visibility == Visibility.VISIBLE,
            )
            .options(joinedload(Escalation.assigned_agent))
        ).all()
    )
    items: list[QueueItem] = []
    for escalation, thread, forum in rows:
        due_kind, due_at = due_that_matters(escalation, now)
        left = int((due_at - now).total_seconds())
        if not _matches(escalation, thread, forum, filters, viewer, left):
            continue
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
                seconds_left=left,
            )
        )
    items.sort(key=lambda item: (item.due_at, item.priority.value, item.escalation.id))
    return QueueListing(items=items[:QUEUE_LIMIT], total=len(items))


def _matches(
    escalation: Escalation,
    thread: Thread,
    forum: Forum,
    filters: QueueFilters,
    viewer: User,
    left: int,
) -> bool:
    if escalation.status not in filters.statuses:
        return False
    if filters.priority is not None and escalation.priority != filters.priority:
        return False
    if filters.forum and forum.slug != filters.forum:
        return False
    if filters.interaction_type and thread.interaction_type != filters.interaction_type:
        return False
    if filters.language and thread.locale != filters.language:
        return False
    if filters.scope == "mine":
        return escalation.assigned_agent_id == viewer.id
    if filters.scope == "unclaimed":
        return escalation.assigned_agent_id is None
    if filters.scope == "breached":
        return left < 0
    return True


# --- one item's context ----------------------------------------------------------------------


@dataclass
class ItemContext:
    escalation: Escalation
    thread: Thread
    # Every post, hidden ones too (staff see them, marked by their visibility).
    posts: list[Post]
    author: User | None
    segment: Segment
    # The facts behind the segment (triage.segment_for): "because" and the counts it used.
    segment_reasons: dict[str, Any]
    recent_threads: list[Thread]
    earlier_escalations: list[Escalation]
    triage: TriageResult | None
    first_response_due_at: datetime
    resolution_due_at: datetime
    due_kind: BreachKind
    seconds_left: int

    @property
    def breached(self) -> bool:
        return self.seconds_left < 0

    @property
    def triage_facts(self) -> list[explain.Fact]:
        return explain.triage_facts(self.triage.reasons if self.triage else None)

    @property
    def segment_facts(self) -> list[explain.Fact]:
        return explain.segment_facts(self.segment_reasons)


def item_context(
    db: Session, escalation: Escalation, *, now: datetime | None = None
) -> ItemContext:
    """What an agent sees when working one item (the caller checked access)."""
    now = now or utcnow()
    thread = escalation.thread
    author = thread.author
    posts = list(
        db.scalars(
            select(Post)
            .where(Post.thread_id == thread.id)
            .options(selectinload(Post.author))
            # The question first, then the answers as they came (ids need not follow time:
            # imports and merges insert posts late).
            .order_by(Post.is_question.desc(), Post.created_at, Post.id)
        )
    )
    segment, reasons = triage.segment_for(db, author)
    recent: list[Thread] = []
    if author is not None:
        recent = list(
            db.scalars(
                select(Thread)
                .where(Thread.author_id == author.id, Thread.id != thread.id)
                .options(joinedload(Thread.forum))
                .order_by(Thread.created_at.desc(), Thread.id.desc())
                .limit(RECENT_THREADS)
            )
        )
    due_kind, _due = due_that_matters(escalation, now)
    return ItemContext(
        escalation=escalation,
        thread=thread,
        posts=posts,
        author=author,
        segment=segment,
        segment_reasons=reasons,
        recent_threads=recent,
        earlier_escalations=earlier_escalations(db, escalation),
        triage=db.get(TriageResult, thread.id),
        first_response_due_at=escalation.first_response_due_at,
        resolution_due_at=resolution_due(escalation, now),
        due_kind=due_kind,
        seconds_left=seconds_left(escalation, now),
    )


def similar_entries(
    search_engine: SearchEngine, db: Session, escalation: Escalation, limit: int = 5
) -> list[dict[str, Any]]:
    """KB entries and solved threads like this thread's title (never the thread itself).
    Meilisearch first, the database when it is down; an empty list if even that fails, so the
    item page always renders."""
    thread = escalation.thread
    brand = thread.forum.brand
    # A title is a sentence, not a query: words such as "my" or "why" that every question has
    # would otherwise be required and keep matching entries out.
    words = [word for word in _WORD.findall(thread.title.lower()) if word not in _STOP_WORDS]
    try:
        hits, _degraded = suggestions.suggest(
            db, search_engine, brand, " ".join(words), locale=thread.locale, limit=limit + 1
        )
    except SearchUnavailable:
        return []
    own = f"/t/{thread.id}"
    entries: list[dict[str, Any]] = []
    for hit in hits:
        if hit.url == own:
            continue
        kind = "article" if hit.kind == "article" else "thread"
        entries.append(
            {
                "kind": hit.kind,
                "id": hit.entry_id,
                "title": hit.title,
                "url": hit.url,
                "snippet": hit.snippet,
                "status": hit.status,
                "link": f"{kind}:{hit.entry_id}",
            }
        )
    return entries[:limit]
