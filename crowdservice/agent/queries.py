"""What the workspace shows of one item: its whole context, with similar KB entries and solved
threads (the queue is crowdservice/agent/queue_listing.py, an agent's own figures
crowdservice/figures.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from community.core.clock import utcnow
from community.core.models import Post, Thread, User
from crowdservice import explain, triage
from crowdservice.agent.clocks import due_that_matters, resolution_due, seconds_left
from crowdservice.models import (
    BreachKind,
    Escalation,
    Segment,
    TriageResult,
)
from kb import suggestions
from kb.search import SearchEngine, SearchUnavailable
from kb.search_queries import STOP_WORDS

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
