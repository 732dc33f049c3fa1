"""What the known-issue pages show, loaded before rendering (templates never query), and which
open issues a page's banner shows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from community.core.models import Brand, Forum, Thread
from crowdservice.known_issues.models import (
    KnownIssue,
    KnownIssueFollower,
    KnownIssueStatus,
    KnownIssueThread,
)

BANNER_LIMIT = 3


@dataclass(frozen=True)
class IssueRow:
    """One line of the agents' list."""

    issue: KnownIssue
    linked_threads: int
    followers: int


def brand_issues(db: Session, brand: Brand, *, include_closed: bool) -> list[KnownIssue]:
    """Open issues first, each group newest first."""
    statement = select(KnownIssue).where(KnownIssue.brand_id == brand.id)
    if not include_closed:
        statement = statement.where(KnownIssue.closed_at.is_(None))
    statement = statement.order_by(
        KnownIssue.closed_at.is_not(None), KnownIssue.created_at.desc(), KnownIssue.id.desc()
    )
    return list(db.scalars(statement))


def agent_rows(db: Session, brand: Brand) -> list[IssueRow]:
    issues = brand_issues(db, brand, include_closed=True)
    ids = [issue.id for issue in issues]
    linked: dict[int, int] = {}
    followers: dict[int, int] = {}
    if ids:
        linked = dict(
            db.execute(
                select(KnownIssueThread.known_issue_id, func.count())
                .where(KnownIssueThread.known_issue_id.in_(ids))
                .group_by(KnownIssueThread.known_issue_id)
            ).all()
        )
        followers = dict(
            db.execute(
                select(KnownIssueFollower.known_issue_id, func.count())
                .where(KnownIssueFollower.known_issue_id.in_(ids))
                .group_by(KnownIssueFollower.known_issue_id)
            ).all()
        )
    return [
        IssueRow(issue, linked.get(issue.id, 0), followers.get(issue.id, 0)) for issue in issues
    ]


def linked_threads(db: Session, issue: KnownIssue) -> list[Thread]:
    """For agents: every linked thread (hidden ones too, marked as such), newest link first."""
    return list(
        db.scalars(
            select(Thread)
            .join(KnownIssueThread, KnownIssueThread.thread_id == Thread.id)
            .where(KnownIssueThread.known_issue_id == issue.id)
            .options(selectinload(Thread.author))
            .order_by(KnownIssueThread.linked_at.desc(), Thread.id.desc())
        )
    )


def scope_forums(db: Session, issue: KnownIssue) -> list[Forum]:
    if not issue.forum_ids:
        return []
    return list(db.scalars(select(Forum).where(Forum.id.in_(issue.forum_ids)).order_by(Forum.name)))


def brand_forums(db: Session, brand: Brand) -> list[Forum]:
    return list(db.scalars(select(Forum).where(Forum.brand_id == brand.id).order_by(Forum.name)))


# --- the banner --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BannerIssue:
    """Plain data for the banner (cached between requests, so never a database row)."""

    id: int
    brand_id: int
    title: str
    status: KnownIssueStatus
    forum_ids: tuple[int, ...]
    tags: tuple[str, ...]

    @property
    def scoped(self) -> bool:
        return bool(self.forum_ids or self.tags)


@dataclass(frozen=True)
class BannerData:
    """Every brand's open issues, and what is needed to place a page in a brand."""

    issues: tuple[BannerIssue, ...]
    brand_of_forum: dict[int, int]
    brand_of_slug: dict[str, int]


def load_banner_data(db: Session) -> BannerData:
    """Three small queries (open issues are few), run once per cache period, not per page."""
    issues = db.scalars(
        select(KnownIssue)
        .where(KnownIssue.closed_at.is_(None))
        .order_by(KnownIssue.created_at.desc(), KnownIssue.id.desc())
    )
    banner = tuple(
        BannerIssue(
            id=issue.id,
            brand_id=issue.brand_id,
            title=issue.title,
            status=issue.status,
            forum_ids=tuple(issue.forum_ids),
            tags=tuple(issue.tags),
        )
        for issue in issues
    )
    forums = dict(db.execute(select(Forum.id, Forum.brand_id)).all())
    slugs = dict(db.execute(select(Brand.slug, Brand.id)).all())
    return BannerData(issues=banner, brand_of_forum=forums, brand_of_slug=slugs)


def banner_issues(
    data: BannerData,
    brand_id: int,
    *,
    forum_id: int | None,
    tags: Iterable[str] | None,
) -> list[BannerIssue]:
    """The brand's open issues for one page: unscoped ones everywhere in the brand; scoped ones
    on brand-level pages (no forum, no thread) and on pages of a forum or thread they name."""
    brand_level = forum_id is None
    page_tags = set(tags or ())
    shown = [
        issue
        for issue in data.issues
        if issue.brand_id == brand_id
        and (
            not issue.scoped
            or brand_level
            or forum_id in issue.forum_ids
            or bool(page_tags.intersection(issue.tags))
        )
    ]
    return shown[:BANNER_LIMIT]
