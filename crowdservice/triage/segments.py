"""Who the author is (`segment_for`), first match wins: troll (>= TROLL_UPHELD_FLAGS upheld flags
against their posts in the last year), detractor (>= DETRACTOR_NEGATIVE of their last
DETRACTOR_WINDOW triaged threads negative), influencer (reputation >= INFLUENCER_REPUTATION),
advocate (>= ADVOCATE_ACCEPTED accepted answers on other people's threads and no more negative
than positive threads), active contributor (>= ACTIVE_ANSWERS visible answers or trust level
>= ACTIVE_TRUST_LEVEL), customer (verified by the brand), new (everyone else)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from community.core.clock import utcnow
from community.core.models import Post, Thread, User, Visibility
from crowdservice.models import Segment, Sentiment
from moderation.models import Flag, FlagStatus

TROLL_UPHELD_FLAGS = 3
TROLL_WINDOW = timedelta(days=365)
DETRACTOR_WINDOW = 10
DETRACTOR_NEGATIVE = 3
INFLUENCER_REPUTATION = 2000
ADVOCATE_ACCEPTED = 5
ACTIVE_ANSWERS = 10
ACTIVE_TRUST_LEVEL = 2


@dataclass
class AuthorStats:
    upheld_flags: int = 0
    accepted_answers: int = 0
    visible_answers: int = 0
    # (thread id, sentiment) of their latest triaged threads, newest first.
    recent: list[tuple[int, str]] = field(default_factory=list)


def _count_by_author(db: Session, query: Select[int | None, int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for author_id, count in db.execute(query).all():
        if author_id is not None:
            counts[int(author_id)] = int(count)
    return counts


def author_stats(
    db: Session, user_ids: Sequence[int], *, history_excludes: Select[Any] | None = None
) -> dict[int, AuthorStats]:
    """Everything the segment rules need for many authors in four grouped queries. Threads
    selected by `history_excludes` are left out of the authors' recent history."""
    stats = {user_id: AuthorStats() for user_id in user_ids}
    if not stats:
        return stats
    ids = list(stats)
    upheld = _count_by_author(
        db,
        select(Post.author_id, func.count(Flag.id))
        .join(Post, Post.id == Flag.post_id)
        .where(
            Post.author_id.in_(ids),
            Flag.status == FlagStatus.UPHELD,
            Flag.resolved_at >= utcnow() - TROLL_WINDOW,
        )
        .group_by(Post.author_id),
    )
    accepted = _count_by_author(
        db,
        select(Post.author_id, func.count(Thread.id))
        .join(Post, Post.id == Thread.accepted_post_id)
        .where(
            Post.author_id.in_(ids),
            # Accepting one's own answer does not make anyone an advocate.
            Thread.author_id.is_distinct_from(Post.author_id),
            Thread.visibility == Visibility.VISIBLE,
            Post.visibility == Visibility.VISIBLE,
        )
        .group_by(Post.author_id),
    )
    answers = _count_by_author(
        db,
        select(Post.author_id, func.count(Post.id))
        .join(Thread, Thread.id == Post.thread_id)
        .where(
            Post.author_id.in_(ids),
            Post.is_question.is_(False),
            Post.visibility == Visibility.VISIBLE,
            Thread.visibility == Visibility.VISIBLE,
        )
        .group_by(Post.author_id),
    )
    for user_id, found in stats.items():
        found.upheld_flags = upheld.get(user_id, 0)
        found.accepted_answers = accepted.get(user_id, 0)
        found.visible_answers = answers.get(user_id, 0)
    ranked = (
        select(
            Thread.author_id,
            Thread.id,
            Thread.sentiment,
            func.row_number()
            .over(
                partition_by=Thread.author_id,
                order_by=(Thread.created_at.desc(), Thread.id.desc()),
            )
            .label("rank"),
        )
        .where(
            Thread.author_id.in_(ids),
            Thread.sentiment.is_not(None),
            *([] if history_excludes is None else [Thread.id.not_in(history_excludes)]),
        )
        .subquery()
    )
    # One more than the window: the thread being triaged is left out of its own history.
    for author_id, thread_id, sentiment, _rank in db.execute(
        select(ranked).where(ranked.c.rank <= DETRACTOR_WINDOW + 1).order_by(ranked.c.rank)
    ):
        stats[int(author_id)].recent.append((int(thread_id), str(sentiment)))
    return stats


def segment_from(
    user: User, stats: AuthorStats, exclude_thread_id: int | None
) -> tuple[Segment, dict[str, Any]]:
    recent = [sentiment for thread_id, sentiment in stats.recent if thread_id != exclude_thread_id]
    recent = recent[:DETRACTOR_WINDOW]
    negative = recent.count(Sentiment.NEGATIVE.value)
    positive = recent.count(Sentiment.POSITIVE.value)
    facts: dict[str, Any] = {
        "upheld_flags": stats.upheld_flags,
        "recent_negative": negative,
        "recent_positive": positive,
        "recent_triaged": len(recent),
        "reputation": user.reputation,
        "accepted_answers": stats.accepted_answers,
        "visible_answers": stats.visible_answers,
        "trust_level": user.trust_level,
        "verified_customer": user.verified_customer,
    }
    if stats.upheld_flags >= TROLL_UPHELD_FLAGS:
        segment = Segment.TROLL
        because = f"{stats.upheld_flags} flags upheld against their posts in the last year"
    elif negative >= DETRACTOR_NEGATIVE:
        segment = Segment.DETRACTOR
        because = f"{negative} of their last {len(recent)} triaged threads were negative"
    elif user.reputation >= INFLUENCER_REPUTATION:
        segment = Segment.INFLUENCER
        because = f"reputation {user.reputation} >= {INFLUENCER_REPUTATION}"
    elif stats.accepted_answers >= ADVOCATE_ACCEPTED and negative <= positive:
        segment = Segment.ADVOCATE
        because = f"{stats.accepted_answers} accepted answers and mostly positive"
    elif stats.visible_answers >= ACTIVE_ANSWERS or user.trust_level >= ACTIVE_TRUST_LEVEL:
        segment = Segment.ACTIVE_CONTRIBUTOR
        because = f"{stats.visible_answers} answers, trust level {user.trust_level}"
    elif user.verified_customer:
        segment = Segment.CUSTOMER
        because = "verified customer"
    else:
        segment = Segment.NEW
        because = "no other rule applies"
    return segment, {"segment": segment.value, "because": because, **facts}


def segment_for(
    db: Session, user: User | None, *, exclude_thread_id: int | None = None
) -> tuple[Segment, dict[str, Any]]:
    """The author's segment and the facts behind it (rules in the module docstring).
    `exclude_thread_id` leaves a thread out of the author's sentiment history (the one being
    triaged), so re-triaging a thread does not count it against its own author."""
    if user is None:
        return Segment.NEW, {"segment": Segment.NEW.value, "because": "no author account"}
    stats = author_stats(db, [user.id])[user.id]
    return segment_from(user, stats, exclude_thread_id)
