"""Known-issue announcements: how many new questions each one deflected, by the measure the ask
form's suggestions are judged with (crowdservice.insights.deflection).

- **Sessions**: signed-in visitors' ask-form sessions (kb.ask_sessions) that started in the
  period, whose typed title matched the issue (known_issue_impressions: the issue was shown
  in the suggestions group, matched but not shown in the holdout), counted once their outcome
  is known: they ended in a question, or their last request is more than 30 minutes old.
  Sessions still open are counted apart. An issue is listed when it was shown in at least one
  session of the period.
- **Deflected**: sessions in which the issue was shown that did not end in a new question.
- **Followers**: members who asked to be told when it is fixed during the period.
  **Linked threads**: threads linked to it during the period (by the worker or an agent).
- **Difference**: when held-out sessions matched it too, the share of held-out sessions that
  ended in a question minus the share of sessions shown the issue, in points, with Newcombe's
  95% interval; significant only when both have at least 30 sessions and the interval excludes
  zero (the deflection panel's rule). A session where the issue was shown also had the usual
  suggestions, so the difference is the issue and the suggestions together against nothing.
- The forum and language filters do not apply (a session belongs to the brand).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from community.core.i18n import gettext as _
from community.core.models import Brand
from crowdservice.insights.deflection import MIN_SESSIONS, Interval, newcombe_interval
from crowdservice.insights.period import InsightsFilter
from crowdservice.known_issues.models import (
    KnownIssue,
    KnownIssueFollower,
    KnownIssueImpression,
    KnownIssueThread,
)
from kb.ask_sessions import SESSION_WINDOW
from kb.models import AskSession


@dataclass(frozen=True, slots=True)
class Announcement:
    issue_id: int
    title: str
    status: str
    is_open: bool
    path: str
    shown_sessions: int  # sessions (outcome known) in which it was shown
    shown_threads: int  # of those, ended in a new question
    deflected: int  # shown_sessions - shown_threads
    held_sessions: int  # held-out sessions (outcome known) that matched it
    held_threads: int
    followers: int
    linked_threads: int
    difference: float | None  # held-out rate - shown rate; None without held-out sessions
    interval: Interval | None
    significant: bool
    verdict: str


@dataclass(frozen=True, slots=True)
class AnnouncementsPanel:
    announcements: list[Announcement]
    open_sessions: int  # matched sessions of the period whose outcome is not known yet


@dataclass
class _Counts:
    shown: tuple[int, int] = (0, 0)  # sessions, threads
    held: tuple[int, int] = (0, 0)
    open_shown: int = 0


def _counts(
    db: Session, brand: Brand, period: InsightsFilter, now: datetime
) -> tuple[dict[int, _Counts], int]:
    """One GROUP BY over the period's impressions (by issue and shown)."""
    known = or_(
        AskSession.ended_with_thread_at.is_not(None),
        AskSession.last_activity_at <= now - SESSION_WINDOW,
    )
    rows = db.execute(
        select(
            KnownIssueImpression.known_issue_id,
            KnownIssueImpression.shown,
            func.count(),
            func.count(case((known, 1))),
            func.count(AskSession.ended_with_thread_at),
        )
        .join(AskSession, AskSession.id == KnownIssueImpression.ask_session_id)
        .where(
            AskSession.brand_id == brand.id,
            AskSession.started_at >= period.since,
            AskSession.started_at < period.until,
        )
        .group_by(KnownIssueImpression.known_issue_id, KnownIssueImpression.shown)
    ).all()
    counts: dict[int, _Counts] = {}
    open_sessions = 0
    for issue_id, shown, started, counted, threads in rows:
        entry = counts.setdefault(issue_id, _Counts())
        open_sessions += started - counted
        if shown:
            entry.shown = (counted, threads)
            entry.open_shown = started - counted
        else:
            entry.held = (counted, threads)
    return counts, open_sessions


def _per_issue(
    db: Session,
    issue_column: InstrumentedAttribute[int],
    time_column: InstrumentedAttribute[datetime],
    ids: list[int],
    period: InsightsFilter,
) -> dict[int, int]:
    """How many rows each issue has whose time falls in the period."""
    found = db.execute(
        select(issue_column, func.count())
        .where(issue_column.in_(ids), time_column >= period.since, time_column < period.until)
        .group_by(issue_column)
    ).all()
    return {int(issue_id): int(count) for issue_id, count in found}


def _verdict(shown: tuple[int, int], held: tuple[int, int]) -> tuple[Interval | None, bool, str]:
    (shown_sessions, shown_threads), (held_sessions, held_threads) = shown, held
    if held_sessions == 0 or shown_sessions == 0:
        return None, False, _("No held-out session matched it: there is nothing to compare.")
    interval = newcombe_interval(held_threads, held_sessions, shown_threads, shown_sessions)
    if shown_sessions < MIN_SESSIONS or held_sessions < MIN_SESSIONS:
        return (
            interval,
            False,
            _(
                "Not yet significant: each group needs at least %(minimum)d sessions "
                "(with suggestions: %(with)d, without: %(without)d)."
            )
            % {"minimum": MIN_SESSIONS, "with": shown_sessions, "without": held_sessions},
        )
    points = {"low": 100 * interval.low, "high": 100 * interval.high}
    if interval.low <= 0 <= interval.high:
        return (
            interval,
            False,
            _(
                "Not yet significant: the difference could be zero (95%% interval %(low).1f to "
                "%(high).1f points)."
            )
            % points,
        )
    if interval.low > 0:
        return (
            interval,
            True,
            _(
                "Showing it prevents between %(low).1f and %(high).1f new questions per 100 "
                "sessions that matched it (95%% confidence)."
            )
            % points,
        )
    return (
        interval,
        True,
        _(
            "Sessions shown it end in a new question more often: by %(low).1f to %(high).1f "
            "per 100 sessions (95%% confidence)."
        )
        % {"low": -100 * interval.high, "high": -100 * interval.low},
    )


def announcements_panel(
    db: Session, brand: Brand, period: InsightsFilter, *, now: datetime
) -> AnnouncementsPanel:
    counts, open_sessions = _counts(db, brand, period, now)
    listed = [
        issue_id
        for issue_id, entry in counts.items()
        if entry.shown[0] or entry.open_shown  # shown in the period, outcome known or not
    ]
    issues = {
        issue.id: issue
        for issue in db.scalars(
            select(KnownIssue).where(KnownIssue.id.in_(listed), KnownIssue.brand_id == brand.id)
        )
    }
    ids = list(issues)
    followers = _per_issue(
        db, KnownIssueFollower.known_issue_id, KnownIssueFollower.created_at, ids, period
    )
    linked = _per_issue(
        db, KnownIssueThread.known_issue_id, KnownIssueThread.linked_at, ids, period
    )
    rows = []
    for issue_id, issue in issues.items():
        entry = counts[issue_id]
        interval, significant, verdict = _verdict(entry.shown, entry.held)
        shown_rate = entry.shown[1] / entry.shown[0] if entry.shown[0] else None
        held_rate = entry.held[1] / entry.held[0] if entry.held[0] else None
        difference = (
            held_rate - shown_rate if held_rate is not None and shown_rate is not None else None
        )
        rows.append(
            Announcement(
                issue_id=issue.id,
                title=issue.title,
                status=issue.status.value,
                is_open=issue.is_open,
                path=f"/b/{brand.slug}/known-issues/{issue.id}",
                shown_sessions=entry.shown[0],
                shown_threads=entry.shown[1],
                deflected=entry.shown[0] - entry.shown[1],
                held_sessions=entry.held[0],
                held_threads=entry.held[1],
                followers=followers.get(issue.id, 0),
                linked_threads=linked.get(issue.id, 0),
                difference=difference,
                interval=interval,
                significant=significant,
                verdict=verdict,
            )
        )
    rows.sort(key=lambda row: (-row.deflected, -row.shown_sessions, row.issue_id))
    return AnnouncementsPanel(announcements=rows, open_sessions=open_sessions)


ANNOUNCEMENTS_COLUMNS = (
    "issue_id", "title", "status", "open", "shown_sessions", "shown_threads", "deflected",
    "held_sessions", "held_threads", "followers", "linked_threads", "difference", "low", "high",
    "significant", "verdict",
)  # fmt: skip


def announcements_rows(panel: AnnouncementsPanel) -> list[dict[str, object]]:
    """One row per announcement shown in the period."""
    return [
        {"issue_id": row.issue_id, "title": row.title, "status": row.status,
         "open": row.is_open, "shown_sessions": row.shown_sessions,
         "shown_threads": row.shown_threads, "deflected": row.deflected,
         "held_sessions": row.held_sessions, "held_threads": row.held_threads,
         "followers": row.followers, "linked_threads": row.linked_threads,
         "difference": row.difference,
         "low": row.interval.low if row.interval else None,
         "high": row.interval.high if row.interval else None,
         "significant": row.significant, "verdict": row.verdict}
        for row in panel.announcements
    ]  # fmt: skip
