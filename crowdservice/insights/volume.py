"""Volume: what customers brought, per day.

- **New threads**: questions created that day (UTC), in the brand's forums, not deleted.
- **Answers**: answers posted that day to those threads and still published (not deleted,
  not waiting for review), whoever wrote them.
- Breakdowns count the period's new threads by forum, by interaction type and sentiment (as
  triage set them; "untriaged" until it has) and by language.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.models import Brand, Forum, Post, Visibility
from crowdservice.insights.period import InsightsFilter
from crowdservice.insights.scope import counted_threads, forum_ids

UNTRIAGED = "untriaged"


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    threads: int
    answers: int


@dataclass(frozen=True, slots=True)
class Share:
    label: str
    threads: int


@dataclass(frozen=True, slots=True)
class VolumePanel:
    days: list[Day]
    threads: int
    answers: int
    by_forum: list[Share]
    by_type: list[Share]
    by_sentiment: list[Share]
    by_language: list[Share]


def volume(db: Session, brand: Brand, period: InsightsFilter) -> VolumePanel:
    ids = forum_ids(db, brand, period)
    threads = counted_threads(ids, period).subquery()
    rows = db.execute(
        select(
            threads.c.created_at,
            Forum.name,
            threads.c.interaction_type,
            threads.c.sentiment,
            threads.c.locale,
        ).join(Forum, Forum.id == threads.c.forum_id)
    ).all()
    answered_at = db.scalars(
        select(Post.created_at).where(
            Post.thread_id.in_(select(threads.c.id)),
            Post.is_question.is_(False),
            Post.visibility == Visibility.VISIBLE,
            Post.created_at >= period.since,
            Post.created_at < period.until,
        )
    ).all()
    new_per_day = Counter(created.date() for created, *_ in rows)
    answers_per_day = Counter(moment.date() for moment in answered_at)
    return VolumePanel(
        days=[Day(day, new_per_day[day], answers_per_day[day]) for day in period.days],
        threads=len(rows),
        answers=len(answered_at),
        by_forum=_shares(row[1] for row in rows),
        by_type=_shares(row[2] or UNTRIAGED for row in rows),
        by_sentiment=_shares(row[3] or UNTRIAGED for row in rows),
        by_language=_shares(row[4] for row in rows),
    )


def _shares(labels: Iterable[str]) -> list[Share]:
    """Most first, then by name, so equal counts keep a stable order."""
    counts = Counter(labels)
    return [
        Share(label, count)
        for label, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
