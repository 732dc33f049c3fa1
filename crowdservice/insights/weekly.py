"""The weekly summary for a brand's admins: last week's headline figures beside the week
before's, as a page and as a notification (hence an e-mail, as each admin's notification
settings say: at once, in the daily digest, or not at all).

Weeks are ISO weeks in UTC (Monday to Sunday). The figures are the insights panels' own,
computed for the week: new threads and answers (volume), the first-response median and the
share of questions answered within their target, all priorities together (service), the
resolution median and the SLA breaches recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core import notifications, policy
from community.core.labels import N_
from community.core.models import Brand, Notification, NotificationKind, User
from community.core.staff import holds_role_in
from community.core.workspace_models import BrandRole
from crowdservice.insights.period import InsightsFilter, week_of
from crowdservice.insights.service_levels import service_panel
from crowdservice.insights.volume import volume

# Sent once the week is over and the night's late answers are in: Monday from 06:00 UTC.
SEND_FROM = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class WeekFigures:
    start: date
    threads: int
    answers: int
    first_response_median: float | None
    within_target: float | None  # share of judged questions answered in time, all priorities
    resolution_median: float | None
    breaches: int

    @property
    def end(self) -> date:
        return self.start + timedelta(days=6)


@dataclass(frozen=True, slots=True)
class WeeklySummary:
    brand: str
    week: WeekFigures
    previous: WeekFigures


def last_full_week(today: date) -> date:
    return week_of(today) - timedelta(days=7)


def _figures(db: Session, brand: Brand, start: date, now: datetime) -> WeekFigures:
    period = InsightsFilter(start=start, end=start + timedelta(days=6))
    counted = volume(db, brand, period)
    service = service_panel(db, brand, period, now=now)
    judged = sum(line.counted for line in service.within_target)
    within = sum(line.within for line in service.within_target)
    return WeekFigures(
        start=start,
        threads=counted.threads,
        answers=counted.answers,
        first_response_median=service.first_response.median,
        within_target=within / judged if judged else None,
        resolution_median=service.resolution.median,
        breaches=sum(line.count for line in service.breaches),
    )


def weekly_summary(db: Session, brand: Brand, week: date, *, now: datetime) -> WeeklySummary:
    start = week_of(week)
    return WeeklySummary(
        brand=brand.slug,
        week=_figures(db, brand, start, now),
        previous=_figures(db, brand, start - timedelta(days=7), now),
    )


def summary_path(brand: Brand, week: date) -> str:
    return f"/b/{brand.slug}/insights/weekly?week={week.isoformat()}"


def send_weekly_summaries(db: Session, *, now: datetime) -> int:
    """Notify every active admin of every brand about last week, once per brand and week.
    Returns how many notifications were made."""
    if now - datetime.combine(week_of(now.date()), datetime.min.time(), now.tzinfo) < SEND_FROM:
        return 0
    week = last_full_week(now.date())
    admins = db.scalars(
        select(User).where(User.role.in_(policy.ADMIN_ROLES), User.deactivated_at.is_(None))
    ).all()
    made = 0
    # The brands locked while their summaries go out: a second worker waits here and then
    # sees them sent (PostgreSQL; on SQLite the caller's write lock already orders workers).
    for brand in db.scalars(select(Brand).order_by(Brand.id).with_for_update()):
        path = summary_path(brand, week)
        already = set(
            db.scalars(
                select(Notification.user_id).where(
                    Notification.kind == NotificationKind.INSIGHTS,
                    Notification.data["path"].as_string() == path,
                )
            )
        )
        brand_admins = db.scalars(
            select(User).where(
                holds_role_in(brand.id, frozenset({BrandRole.BRAND_ADMIN})),
                User.deactivated_at.is_(None),
            )
        ).all()
        readers = {admin.id: admin for admin in [*admins, *brand_admins]}
        waiting = [admin for admin in readers.values() if admin.id not in already]
        if not waiting:
            continue
        figures = _figures(db, brand, week, now)
        data = notifications.message(
            N_(
                "Last week in %(brand)s: %(threads)s new threads, %(answers)s answers, "
                "%(breaches)s SLA breaches"
            ),
            brand=brand.name,
            threads=figures.threads,
            answers=figures.answers,
            breaches=figures.breaches,
        ) | {"path": path}
        for admin in waiting:
            made += notifications.notify(db, admin, NotificationKind.INSIGHTS, actor=None,
                                         data=data) is not None  # fmt: skip
    return made
