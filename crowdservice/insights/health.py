"""Community health: the moderators' load, what members report, the mood, and who is loud.

Definitions. Items about a post (held posts, flagged posts) follow the forum and language
filters through the post's thread; items about an account (the reported-accounts queue) belong
to no forum or language and are counted whatever those filters say, since the brand's
moderators must handle them either way.

- **Moderation queues now**: the items open right now in each review queue (pending: held
  before anyone saw them; flagged: reported by members; users: accounts reported or caught by
  burst rules), as the moderators' queue pages list them. The period does not apply.
- **Time to action**: for the items decided in the period (resolved by a moderator, whatever
  the decision), from the item entering its queue to the decision; median and 90th percentile
  (nearest rank), overall and per queue. Wall-clock time: the queues are watched around the
  clock, and a post waiting at night is waiting.
- **Flags by reason**: flags members raised in the period on posts in the brand's threads (in
  the chosen forum and language), by reason, with how many were upheld, rejected, or are still
  open. Flags on posts deleted since are counted: deleting the post is often the flag's outcome.
- **Sentiment trend**: per ISO week (Monday to Sunday; the first and last weeks cut to the
  period), the period's new questions as the Volume panel counts them (not deleted), by the
  sentiment triage gave them: negative, neutral, positive, or untriaged until it has.
- **Detractors and influencers active this week**: members who started a thread (of any kind,
  not deleted, in the chosen forum and language) in the 7 days before now whose author segment,
  as triage or staff set it on that thread, is detractor or influencer; each with their number
  of such threads and the latest few as links, busiest first. The segment is the one on the
  thread, not the account's latest, so a staff correction counts and each thread is listed
  under what its author was when writing it. Names and links: staff only, like the whole page.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from community.core.models import Brand, Post, Thread, User, Visibility
from crowdservice.insights.period import InsightsFilter, iso_week
from crowdservice.insights.scope import counted_threads, forum_ids
from crowdservice.insights.service_levels import Times, times
from crowdservice.models import Segment, Sentiment
from moderation.models import Flag, FlagReason, FlagStatus, ItemStatus, Queue, QueueItem

Columns = TypeVarTuple("Columns")  # a query's columns, kept through the filters

ACTIVE_WINDOW = timedelta(days=7)
PEOPLE_SHOWN = 20  # per segment
THREADS_SHOWN = 5  # per person, newest first
UNTRIAGED = "untriaged"
SENTIMENTS = (*(item.value for item in Sentiment), UNTRIAGED)
WATCHED = (Segment.DETRACTOR.value, Segment.INFLUENCER.value)


@dataclass(frozen=True, slots=True)
class QueueSize:
    queue: str
    open: int


@dataclass(frozen=True, slots=True)
class FlagLine:
    reason: str
    flags: int
    upheld: int
    rejected: int
    open: int


@dataclass(frozen=True, slots=True)
class Week:
    week: str  # ISO week, e.g. "2026-W45"
    start: date  # the week's first day within the period
    end: date  # its last day within the period
    negative: int
    neutral: int
    positive: int
    untriaged: int


@dataclass(frozen=True, slots=True)
class ThreadLink:
    id: int
    title: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Person:
    user_id: int
    username: str
    name: str
    segment: str
    thread_count: int  # their threads in the window with this segment
    threads: list[ThreadLink]  # the newest THREADS_SHOWN of them


@dataclass(frozen=True, slots=True)
class HealthPanel:
    queues: list[QueueSize]
    time_to_action: Times
    time_to_action_by_queue: dict[str, Times]
    flags: list[FlagLine]
    flags_total: int
    sentiment: list[Week]
    active_since: datetime  # the start of the detractors' and influencers' window
    detractors: list[Person]
    influencers: list[Person]


def health_panel(
    db: Session, brand: Brand, period: InsightsFilter, *, now: datetime
) -> HealthPanel:
    ids = forum_ids(db, brand, period)
    decided = _time_to_action(db, brand, ids, period)
    flags = _flags(db, ids, period)
    since = now - ACTIVE_WINDOW
    people = _watched_people(db, ids, period, since, now)
    return HealthPanel(
        queues=_queue_sizes(db, brand, ids, period),
        time_to_action=times([value for values in decided.values() for value in values]),
        time_to_action_by_queue={queue.value: times(decided[queue.value]) for queue in Queue},
        flags=flags,
        flags_total=sum(line.flags for line in flags),
        sentiment=_sentiment_trend(db, ids, period),
        active_since=since,
        detractors=people[Segment.DETRACTOR.value],
        influencers=people[Segment.INFLUENCER.value],
    )


def _in_language(query: Select[*Columns], period: InsightsFilter) -> Select[*Columns]:
    return query.where(Thread.locale == period.language) if period.language else query


def _items(
    query: Select[*Columns], brand: Brand, ids: list[int], period: InsightsFilter
) -> Select[*Columns]:
    """The brand's queue items the filters keep: post items through their thread's forum and
    language, account items always (see the module's docstring)."""
    in_scope: ColumnElement[bool] = Thread.forum_id.in_(ids)
    if period.language:
        in_scope = and_(in_scope, Thread.locale == period.language)
    return (
        query.outerjoin(Post, Post.id == QueueItem.post_id)
        .outerjoin(Thread, Thread.id == Post.thread_id)
        .where(QueueItem.brand_id == brand.id, or_(QueueItem.post_id.is_(None), in_scope))
    )


def _queue_sizes(
    db: Session, brand: Brand, ids: list[int], period: InsightsFilter
) -> list[QueueSize]:
    query = select(QueueItem.queue, func.count()).select_from(QueueItem)
    rows = db.execute(
        _items(query, brand, ids, period)
        .where(QueueItem.status == ItemStatus.OPEN)
        .group_by(QueueItem.queue)
    ).all()
    found = {Queue(queue).value: int(count) for queue, count in rows}
    return [QueueSize(queue.value, found.get(queue.value, 0)) for queue in Queue]


def _time_to_action(
    db: Session, brand: Brand, ids: list[int], period: InsightsFilter
) -> dict[str, list[float]]:
    """Seconds from entering the queue to the decision, per queue, for the period's decisions."""
    query = select(QueueItem.queue, QueueItem.created_at, QueueItem.resolved_at).select_from(
        QueueItem
    )
    rows = db.execute(
        _items(query, brand, ids, period).where(
            QueueItem.status == ItemStatus.RESOLVED,
            QueueItem.resolved_at >= period.since,
            QueueItem.resolved_at < period.until,
        )
    ).all()
    decided: dict[str, list[float]] = defaultdict(list)
    for queue, entered, resolved in rows:
        assert resolved is not None  # the query asked for decided items
        decided[Queue(queue).value].append(max((resolved - entered).total_seconds(), 0.0))
    return decided


def _flags(db: Session, ids: list[int], period: InsightsFilter) -> list[FlagLine]:
    """Every reason, in the order members see them, with zeros, so charts keep their bars."""
    query = (
        select(Flag.reason, Flag.status, func.count())
        .join(Post, Post.id == Flag.post_id)
        .join(Thread, Thread.id == Post.thread_id)
        .where(
            Thread.forum_id.in_(ids),
            Flag.created_at >= period.since,
            Flag.created_at < period.until,
        )
        .group_by(Flag.reason, Flag.status)
    )
    counts: Counter[tuple[str, str]] = Counter()
    for reason, status, count in db.execute(_in_language(query, period)):
        counts[FlagReason(reason).value, FlagStatus(status).value] = int(count)
    lines = []
    for reason in FlagReason:
        by = {status: counts[reason.value, status.value] for status in FlagStatus}
        lines.append(
            FlagLine(
                reason=reason.value,
                flags=sum(by.values()),
                upheld=by[FlagStatus.UPHELD],
                rejected=by[FlagStatus.REJECTED],
                open=by[FlagStatus.OPEN],
            )
        )
    return lines


def _sentiment_trend(db: Session, ids: list[int], period: InsightsFilter) -> list[Week]:
    threads = counted_threads(ids, period).subquery()
    rows = db.execute(select(threads.c.created_at, threads.c.sentiment)).all()
    per_week: dict[str, Counter[str]] = defaultdict(Counter)
    for created, sentiment in rows:
        label = sentiment if sentiment in SENTIMENTS else UNTRIAGED
        per_week[iso_week(created.date())][label] += 1
    spans: dict[str, list[date]] = {}
    for day in period.days:
        spans.setdefault(iso_week(day), []).append(day)
    return [
        Week(
            week,
            days[0],
            days[-1],
            *(per_week[week][sentiment] for sentiment in SENTIMENTS),
        )
        for week, days in spans.items()
    ]


def _watched_people(
    db: Session, ids: list[int], period: InsightsFilter, since: datetime, now: datetime
) -> dict[str, list[Person]]:
    """Detractors and influencers with threads in (since, now], busiest first, then by name."""
    query = (
        select(
            Thread.author_segment,
            User.id,
            User.username,
            User.display_name,
            Thread.id,
            Thread.title,
            Thread.created_at,
        )
        .join(User, User.id == Thread.author_id)
        .where(
            Thread.forum_id.in_(ids),
            Thread.visibility != Visibility.DELETED,
            Thread.author_segment.in_(WATCHED),
            Thread.created_at > since,
            Thread.created_at <= now,
        )
        .order_by(Thread.created_at.desc(), Thread.id.desc())
    )
    found: dict[tuple[str, int], list[Any]] = {}
    for segment, user_id, username, name, thread_id, title, created in db.execute(
        _in_language(query, period)
    ):
        found.setdefault((str(segment), user_id), [username, name, []])[2].append(
            ThreadLink(int(thread_id), str(title), created)
        )
    people: dict[str, list[Person]] = {segment: [] for segment in WATCHED}
    for (segment, user_id), (username, name, links) in found.items():
        people[segment].append(
            Person(int(user_id), str(username), str(name), segment, len(links),
                   links[:THREADS_SHOWN])
        )  # fmt: skip
    return {
        segment: sorted(listed, key=lambda p: (-p.thread_count, p.name.lower(), p.user_id))[
            :PEOPLE_SHOWN
        ]
        for segment, listed in people.items()
    }


# --- CSV -------------------------------------------------------------------------------------

HEALTH_COLUMNS = (
    "section", "label", "start", "end", "count", "median_seconds", "p90_seconds", "upheld",
    "rejected", "open", "negative", "neutral", "positive", "untriaged", "user", "thread_id",
    "title",
)  # fmt: skip


def health_rows(panel: HealthPanel) -> list[dict[str, object]]:
    """Queues (count: open now), time to action (label: the queue or "all"), flags (label: the
    reason), sentiment (label: the ISO week), then one row per listed thread of a detractor or
    influencer (count: the person's threads in the window)."""
    rows: list[dict[str, object]] = [
        {"section": "queue", "label": line.queue, "count": line.open} for line in panel.queues
    ]
    for label, value in [("all", panel.time_to_action), *panel.time_to_action_by_queue.items()]:
        rows.append(
            {"section": "time_to_action", "label": label, "count": value.count,
             "median_seconds": value.median, "p90_seconds": value.p90}
        )  # fmt: skip
    rows += [
        {"section": "flags", "label": line.reason, "count": line.flags, "upheld": line.upheld,
         "rejected": line.rejected, "open": line.open}
        for line in panel.flags
    ]  # fmt: skip
    rows += [
        {"section": "sentiment", "label": week.week, "start": week.start.isoformat(),
         "end": week.end.isoformat(), "negative": week.negative, "neutral": week.neutral,
         "positive": week.positive, "untriaged": week.untriaged}
        for week in panel.sentiment
    ]  # fmt: skip
    rows += [
        {"section": person.segment, "label": person.username, "user": person.name,
         "count": person.thread_count, "thread_id": link.id, "title": link.title}
        for person in (*panel.detractors, *panel.influencers)
        for link in person.threads
    ]  # fmt: skip
    return rows
