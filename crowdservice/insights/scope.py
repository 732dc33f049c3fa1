"""Which threads a panel counts: the brand's questions created in the period, in the chosen
forum and language. Deleted threads are not counted; held and hidden ones are (a question a
moderator hid was still asked)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, Select, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from community.core.models import Brand, Forum, Thread, ThreadKind, Visibility
from crowdservice.insights.period import InsightsFilter


def forum_ids(db: Session, brand: Brand, period: InsightsFilter) -> list[int]:
    """The brand's forums the filter keeps (none if it names a forum the brand lacks)."""
    query = select(Forum.id).where(Forum.brand_id == brand.id)
    if period.forum:
        query = query.where(Forum.slug == period.forum)
    return list(db.scalars(query))


def counted_threads(ids: list[int], period: InsightsFilter) -> Select[Thread]:
    query = select(Thread).where(
        Thread.forum_id.in_(ids),
        Thread.kind == ThreadKind.QUESTION,
        Thread.visibility != Visibility.DELETED,
        Thread.created_at >= period.since,
        Thread.created_at < period.until,
    )
    if period.language:
        query = query.where(Thread.locale == period.language)
    return query


def utc_day(column: ColumnElement[Any] | Any, dialect: str) -> ColumnElement[Any]:
    """The UTC calendar day of a stored moment, for GROUP BY. SQLite keeps UTC as naive text,
    so its date() is the UTC day; PostgreSQL keeps timestamptz, whose cast to a date would use
    the session's time zone, so the moment is moved to UTC first."""
    if dialect == "sqlite":
        return func.date(column)
    return cast(func.timezone("UTC", column), Date)


def as_date(value: object) -> date:
    """A day as the database gave it back (SQLite: "2026-11-01"; PostgreSQL: a date)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))
