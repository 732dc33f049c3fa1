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
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from community.core.models import Brand, Forum, Post, Visibility
from crowdservice.insights.period import InsightsFilter
from crowdservice.insights.scope import as_date, counted_threads, forum_ids, utc_day

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
    """Counted in the database (one GROUP BY per figure), so a year costs about what a month
    does."""
    dialect = db.get_bind().dialect.name
    ids = forum_ids(db, brand, period)
    threads = counted_threads(ids, period).subquery()
    thread_day = utc_day(threads.c.created_at, dialect)
    new_per_day = {
        as_date(day): count
        for day, count in db.execute(select(thread_day, func.count()).group_by(thread_day)).all()
    }
    answer_day = utc_day(Post.created_at, dialect)
    answers_per_day = {
        as_date(day): count
        for day, count in db.execute(
            select(answer_day, func.count())
            .join(threads, threads.c.id == Post.thread_id)
            .where(
                Post.is_question.is_(False),
                Post.visibility == Visibility.VISIBLE,
                Post.created_at >= period.since,
                Post.created_at < period.until,
            )
            .group_by(answer_day)
        ).all()
    }

    def shares(column: ColumnElement[Any] | Any, *, join_forum: bool = False) -> list[Share]:
        query = select(column, func.count()).select_from(threads)
        if join_forum:
            query = query.join(Forum, Forum.id == threads.c.forum_id)
        counts = db.execute(query.group_by(column)).all()
        return _shares((label or UNTRIAGED, count) for label, count in counts)

    days = [Day(day, new_per_day.get(day, 0), answers_per_day.get(day, 0)) for day in period.days]
    return VolumePanel(
        days=days,
        threads=sum(new_per_day.values()),
        answers=sum(answers_per_day.values()),
        by_forum=shares(Forum.name, join_forum=True),
        by_type=shares(threads.c.interaction_type),
        by_sentiment=shares(threads.c.sentiment),
        by_language=shares(threads.c.locale),
    )


def _shares(counted: Iterable[tuple[str, int]]) -> list[Share]:
    """Most first, then by name, so equal counts keep a stable order ("untriaged" may come
    from several stored values: they are added up)."""
    counts: Counter[str] = Counter()
    for label, count in counted:
        counts[label] += count
    return [
        Share(label, count)
        for label, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
