"""Which threads a panel counts: the brand's questions created in the period, in the chosen
forum and language. Deleted threads are not counted; held and hidden ones are (a question a
moderator hid was still asked)."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

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
