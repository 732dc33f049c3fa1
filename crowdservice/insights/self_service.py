"""Self-service: whether people found the answer themselves, and the knowledge base that
serves them.

What is recorded: every search on the search page or the search API (`kb_search_queries`: the
text, scope "kb" or "community", the interface language, the number of results, and the user
when signed in; nothing about a visitor), and every suggestion opened on the ask form
(`kb_deflection_events`: the user, or a visitor's key, the title typed, the entry opened).
The suggestions the ask form shows are not recorded, and neither are clicks on the search
page's results. A new thread "follows" when its author started it in any of the brand's forums
after the search or opened suggestion and at most 30 minutes later (see `followups`).

- **Searches without a new thread**: of the period's searches by signed-in people whose
  30 minutes are over, the share not followed by a new thread of theirs. Visitors' searches
  cannot be linked to anyone (counted apart as "not linkable"); searches less than
  30 minutes old are "pending".
- **Ask-form sessions without a new thread**: the ask form's suggestions are recorded only
  when one is opened, so a session here is a person's run of opened suggestions, each within
  30 minutes of the one before, counted in the period of its first. It ended without a new
  thread when the person started none after its first opened suggestion and up to 30 minutes
  after its last. Sessions of someone without an account cannot be linked; sessions whose last
  opened suggestion is under 30 minutes old are pending. Sessions in which nothing was opened
  are not recorded, so they are not counted.
- **Suggestion click-through**: of the period's ask-form sessions that asked for suggestions
  and were not held out (kb_ask_sessions: signed-in people, a title of 4 characters or more),
  the share in which the person opened at least one suggestion, from the session's start to
  30 minutes after its last suggestion request. `opened` also counts every suggestion opened
  in the period. None without such sessions.
- **KB entries promoted per ISO week**: community solutions whose latest promotion fell in
  the period (even if withdrawn since), and articles first published in the period (whatever
  their status now), per ISO week (Monday to Sunday; the first and last weeks count only the
  period's days). Filters: a solution by its thread's forum and language, an article by its
  own (with a forum chosen, articles without a forum are left out).
- **Article views**: views of the brand's articles in the period, once per viewer per article
  per day. The product keeps each day's viewers for two days only (today and yesterday), so
  only those days of the period are counted (`views_from`); an older period has none (None).
- **Helpful ratio per article**: of the "Was this helpful?" answers given in the period
  (one per person per article per day, the last one given that day), the share that said
  yes; worst first (then the most answers). Articles with fewer than 3 answers come after,
  marked as too few to judge.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from community.core.models import Brand, Thread
from crowdservice.insights.followups import (
    FOLLOW_UP,
    asked_between,
    thread_authors,
    thread_times,
)
from crowdservice.insights.period import InsightsFilter, iso_week, week_of
from crowdservice.insights.scope import forum_ids
from kb.models import (
    Article,
    ArticleFeedback,
    ArticleView,
    AskArm,
    AskSession,
    DeflectionEvent,
    SearchQuery,
    Solution,
)

# Fewer answers than this and an article's ratio says more about chance than about it.
MIN_RATINGS = 3
# A session that starts in the period is followed this far past its end, no further: a person
# opening suggestions every half hour for a day is not one visit to the ask form.
SESSION_LOOKAHEAD = timedelta(days=1)
# Article viewers are pruned to today and yesterday (kb.views).
VIEWS_KEPT_DAYS = 2


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Searches or ask-form sessions, and how many were not followed by a new thread."""

    total: int  # in the period
    not_linkable: int  # nobody to link them to (a visitor, a deleted account)
    pending: int  # linkable, but their 30 minutes are not over
    judged: int  # linkable and over
    without_thread: int  # judged, and no new thread followed
    share: float | None  # without_thread / judged; None when nothing was judged


@dataclass(frozen=True, slots=True)
class ClickThrough:
    opened: int  # suggestions opened on the ask form in the period
    sessions_shown: int  # ask-form sessions that asked for suggestions and were not held out
    sessions_opening: int  # of those, the ones in which a suggestion was opened
    rate: float | None  # sessions_opening / sessions_shown


@dataclass(frozen=True, slots=True)
class PromotedWeek:
    week: str  # ISO week, "2026-W45"
    starts: date  # its Monday
    solutions: int
    articles: int


@dataclass(frozen=True, slots=True)
class ArticleRating:
    article_id: int
    title: str
    helpful: int
    rated: int
    ratio: float
    too_few: bool  # fewer than MIN_RATINGS answers


@dataclass(frozen=True, slots=True)
class SelfServicePanel:
    searches: Outcomes
    sessions: Outcomes
    click_through: ClickThrough
    promoted: list[PromotedWeek]
    article_views: int | None  # None when none of the period's days are kept
    views_from: date | None  # the first day whose views are counted
    ratings: list[ArticleRating]


def outcomes(total: int, not_linkable: int, pending: int, without_thread: int) -> Outcomes:
    judged = total - not_linkable - pending
    return Outcomes(
        total=total,
        not_linkable=not_linkable,
        pending=pending,
        judged=judged,
        without_thread=without_thread,
        share=without_thread / judged if judged else None,
    )


def self_service_panel(
    db: Session, brand: Brand, period: InsightsFilter, *, now: datetime
) -> SelfServicePanel:
    ids = forum_ids(db, brand, period)
    sessions, opened = _sessions(db, brand, period, now)
    views, views_from = _views(db, brand, period, ids, now)
    return SelfServicePanel(
        searches=_searches(db, brand, period, now),
        sessions=sessions,
        click_through=_click_through(db, brand, period, opened),
        promoted=_promoted(db, brand, period, ids),
        article_views=views,
        views_from=views_from,
        ratings=_ratings(db, brand, period, ids),
    )


# --- searches ----------------------------------------------------------------------------------


def searches_in(
    brand: Brand, period: InsightsFilter, since: datetime, until: datetime
) -> list[Any]:
    """The conditions on `kb_search_queries` for the brand's searches from `since` to before
    `until`, in the chosen language (the interface's, when searching)."""
    conditions = [
        SearchQuery.brand_id == brand.id,
        SearchQuery.created_at >= since,
        SearchQuery.created_at < until,
    ]
    if period.language:
        conditions.append(SearchQuery.locale == period.language)
    return conditions


def _searches(db: Session, brand: Brand, period: InsightsFilter, now: datetime) -> Outcomes:
    in_period = searches_in(brand, period, period.since, period.until)
    decided_before = now - FOLLOW_UP
    anonymous = SearchQuery.user_id.is_(None)
    total, not_linkable, pending = db.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((anonymous, 1), else_=0)), 0),
            func.coalesce(
                func.sum(
                    case((~anonymous & (SearchQuery.created_at > decided_before), 1), else_=0)
                ),
                0,
            ),
        ).where(*in_period)
    ).one()
    # Only searches by someone who started a thread around then can have been followed by one.
    window_end = period.until + FOLLOW_UP
    askers = thread_authors(brand, period.since, window_end)
    judged = db.execute(
        select(SearchQuery.user_id, SearchQuery.created_at).where(
            *in_period,
            SearchQuery.created_at <= decided_before,
            SearchQuery.user_id.in_(askers),
        )
    ).all()
    # Only the searchers' threads: the period's askers can be every member of a busy brand.
    searchers = select(SearchQuery.user_id).where(*in_period)
    times = thread_times(db, brand, searchers, period.since, window_end)
    followed = sum(
        asked_between(times, user, moment, moment + FOLLOW_UP) for user, moment in judged
    )
    signed_in_judged = int(total) - int(not_linkable) - int(pending)
    return outcomes(int(total), int(not_linkable), int(pending), signed_in_judged - followed)


# --- ask-form sessions ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Session:
    user_id: int | None
    first: datetime
    last: datetime
    opened: int


def _sessions(
    db: Session, brand: Brand, period: InsightsFilter, now: datetime
) -> tuple[Outcomes, int]:
    """(sessions, suggestions opened in the period)."""
    # Whether an open in the period starts a session depends only on the 30 minutes before it.
    fetch_since, fetch_until = period.since - FOLLOW_UP, period.until + SESSION_LOOKAHEAD
    rows = db.execute(
        select(DeflectionEvent.user_id, DeflectionEvent.visitor_key, DeflectionEvent.created_at)
        .where(
            DeflectionEvent.brand_id == brand.id,
            DeflectionEvent.created_at >= fetch_since,
            DeflectionEvent.created_at < fetch_until,
        )
        .order_by(DeflectionEvent.created_at)
    ).all()
    opened = sum(period.since <= moment < period.until for _user, _key, moment in rows)
    open_sessions: dict[str, _Session] = {}
    started: list[_Session] = []
    for user_id, visitor_key, moment in rows:
        who = f"user:{user_id}" if user_id is not None else f"visitor:{visitor_key}"
        current = open_sessions.get(who)
        if current is not None and moment - current.last <= FOLLOW_UP:
            current.last, current.opened = moment, current.opened + 1
            continue
        current = _Session(user_id, moment, moment, 1)
        open_sessions[who] = current
        if moment >= period.since and moment < period.until:
            started.append(current)
    authors = select(DeflectionEvent.user_id).where(
        DeflectionEvent.brand_id == brand.id,
        DeflectionEvent.created_at >= period.since,
        DeflectionEvent.created_at < fetch_until,
    )
    times = thread_times(db, brand, authors, period.since, fetch_until + FOLLOW_UP)
    not_linkable = pending = without = 0
    for session in started:
        if session.user_id is None:
            not_linkable += 1
        elif session.last + FOLLOW_UP > now:
            pending += 1
        elif not asked_between(times, session.user_id, session.first, session.last + FOLLOW_UP):
            without += 1
    return outcomes(len(started), not_linkable, pending, without), opened


# --- the knowledge base --------------------------------------------------------------------------


def _articles(brand: Brand, period: InsightsFilter, ids: list[int]) -> list[Any]:
    conditions: list[Any] = [Article.brand_id == brand.id]
    if period.forum:
        conditions.append(Article.forum_id.in_(ids))
    if period.language:
        conditions.append(Article.locale == period.language)
    return conditions


def _promoted(
    db: Session, brand: Brand, period: InsightsFilter, ids: list[int]
) -> list[PromotedWeek]:
    solutions = select(Solution.promoted_at).join(Thread, Thread.id == Solution.thread_id)
    solutions = solutions.where(
        Solution.brand_id == brand.id,
        Thread.forum_id.in_(ids),
        Solution.promoted_at >= period.since,
        Solution.promoted_at < period.until,
    )
    if period.language:
        solutions = solutions.where(Thread.locale == period.language)
    published = select(Article.published_at).where(
        *_articles(brand, period, ids),
        Article.published_at >= period.since,
        Article.published_at < period.until,
    )
    solved = Counter(iso_week(moment.date()) for moment in db.scalars(solutions))
    written = Counter(iso_week(moment.date()) for moment in db.scalars(published) if moment)
    mondays = sorted({week_of(day) for day in period.days})
    return [
        PromotedWeek(iso_week(monday), monday, solved[iso_week(monday)], written[iso_week(monday)])
        for monday in mondays
    ]


def _views(
    db: Session, brand: Brand, period: InsightsFilter, ids: list[int], now: datetime
) -> tuple[int | None, date | None]:
    kept_from = max(period.start, now.date() - timedelta(days=VIEWS_KEPT_DAYS - 1))
    if kept_from > period.end:
        return None, None
    count = db.scalar(
        select(func.count())
        .select_from(ArticleView)
        .join(Article, Article.id == ArticleView.article_id)
        .where(
            *_articles(brand, period, ids),
            ArticleView.day >= kept_from,
            ArticleView.day <= period.end,
        )
    )
    return int(count or 0), kept_from


def _ratings(
    db: Session, brand: Brand, period: InsightsFilter, ids: list[int]
) -> list[ArticleRating]:
    rows = db.execute(
        select(
            Article.id,
            Article.title,
            func.sum(case((ArticleFeedback.helpful.is_(True), 1), else_=0)),
            func.count(),
        )
        .join(Article, Article.id == ArticleFeedback.article_id)
        .where(
            *_articles(brand, period, ids),
            ArticleFeedback.created_at >= period.since,
            ArticleFeedback.created_at < period.until,
        )
        .group_by(Article.id, Article.title)
    ).all()
    ratings = [
        ArticleRating(
            article_id=int(article_id),
            title=str(title),
            helpful=int(helpful),
            rated=int(rated),
            ratio=int(helpful) / int(rated),
            too_few=int(rated) < MIN_RATINGS,
        )
        for article_id, title, helpful, rated in rows
    ]
    return sorted(ratings, key=lambda r: (r.too_few, r.ratio, -r.rated, r.title, r.article_id))


# --- CSV -----------------------------------------------------------------------------------------

SELF_SERVICE_COLUMNS = (
    "section", "label", "total", "not_linkable", "pending", "judged", "without_thread",
    "share", "solutions", "articles", "article_id", "helpful", "rated", "too_few",
)  # fmt: skip


def _outcome_row(section: str, value: Outcomes) -> dict[str, object]:
    return {
        "section": section,
        "total": value.total,
        "not_linkable": value.not_linkable,
        "pending": value.pending,
        "judged": value.judged,
        "without_thread": value.without_thread,
        "share": value.share,
    }


def _click_through(db: Session, brand: Brand, period: InsightsFilter, opened: int) -> ClickThrough:
    sessions = db.execute(
        select(AskSession.visitor_key, AskSession.started_at, AskSession.last_activity_at).where(
            AskSession.brand_id == brand.id,
            AskSession.arm == AskArm.SUGGESTIONS,
            AskSession.started_at >= period.since,
            AskSession.started_at < period.until,
        )
    ).all()
    opens: dict[str, list[datetime]] = {}
    for key, moment in db.execute(
        select(DeflectionEvent.visitor_key, DeflectionEvent.created_at)
        .where(
            DeflectionEvent.brand_id == brand.id,
            DeflectionEvent.created_at >= period.since,
            DeflectionEvent.created_at < period.until + FOLLOW_UP,
        )
        .order_by(DeflectionEvent.created_at)
    ):
        opens.setdefault(key, []).append(moment)
    opening = sum(
        _opened_between(opens.get(key, []), started, last + FOLLOW_UP)
        for key, started, last in sessions
    )
    shown = len(sessions)
    return ClickThrough(opened, shown, opening, opening / shown if shown else None)


def _opened_between(moments: list[datetime], start: datetime, end: datetime) -> bool:
    first = bisect_left(moments, start)
    return first < len(moments) and moments[first] <= end


def self_service_rows(panel: SelfServicePanel) -> list[dict[str, object]]:
    rows = [_outcome_row("searches", panel.searches), _outcome_row("sessions", panel.sessions)]
    click = panel.click_through
    rows.append({"section": "click_through", "total": click.opened, "judged":
                 click.sessions_shown, "without_thread": click.sessions_opening,
                 "share": click.rate})  # fmt: skip
    rows += [
        {"section": "promoted", "label": week.week, "solutions": week.solutions,
         "articles": week.articles}
        for week in panel.promoted
    ]  # fmt: skip
    rows.append({"section": "article_views", "label": panel.views_from and
                 panel.views_from.isoformat(), "total": panel.article_views})  # fmt: skip
    rows += [
        {"section": "rating", "label": line.title, "article_id": line.article_id,
         "helpful": line.helpful, "rated": line.rated, "share": line.ratio,
         "too_few": line.too_few}
        for line in panel.ratings
    ]  # fmt: skip
    return rows
