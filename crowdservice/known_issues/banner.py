"""The banner of open known issues on the brand's pages: which issues a page shows, from plain
data cached per process for a few seconds, so hot pages pay no query in steady state.

The routes module keeps the cache on the app and drops it when an agent changes an issue; other
processes see the change within BANNER_SECONDS."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from community.core.models import Brand, Forum, Thread
from crowdservice.known_issues.forms import status_label
from crowdservice.known_issues.models import KnownIssue, KnownIssueStatus
from crowdservice.known_issues.notices import issue_path

BANNER_LIMIT = 3
BANNER_SECONDS = 15.0


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


class BannerCache:
    """The banner data of every brand, re-read at most every BANNER_SECONDS."""

    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self.session_factory = session_factory
        self.expires = 0.0
        self.data: BannerData | None = None

    def get(self) -> BannerData | None:
        now = time.monotonic()
        if self.data is not None and self.expires > now:
            return self.data
        try:
            # A short session of its own, like the site's brand name: the page's session
            # belongs to the route.
            with self.session_factory() as db:
                self.data = load_banner_data(db)
        except SQLAlchemyError:
            return None  # a page still renders without its banner
        self.expires = now + BANNER_SECONDS
        return self.data


def _loaded(row: object, name: str) -> bool:
    """Whether a relationship is already loaded (reading it must not query)."""
    return name not in inspect(row).unloaded


def page_place(
    data: BannerData, context: dict[str, Any]
) -> tuple[int | None, int | None, list[str] | None]:
    """The page's brand, forum and tags, from what the page already loaded."""
    thread, forum, brand = context.get("thread"), context.get("forum"), context.get("brand")
    forum_id: int | None = None
    tags: list[str] | None = None
    if isinstance(thread, Thread):
        forum_id = thread.forum_id
        if _loaded(thread, "tags"):
            tags = [tag.name for tag in thread.tags]
    elif isinstance(forum, Forum):
        forum_id = forum.id
    if isinstance(brand, Brand):
        brand_id: int | None = brand.id
    elif forum_id is not None:
        brand_id = data.brand_of_forum.get(forum_id)
    else:
        brand_id = data.brand_of_slug.get(str(context.get("brand_slug", "")))
    return brand_id, forum_id, tags


def banners_for_page(data: BannerData | None, context: dict[str, Any]) -> list[dict[str, str]]:
    """What the banner template shows: plain strings, no rows."""
    if data is None or not data.issues:
        return []
    brand_id, forum_id, tags = page_place(data, context)
    if brand_id is None:
        return []
    slug = next((s for s, found in data.brand_of_slug.items() if found == brand_id), "")
    return [
        {
            "title": issue.title,
            "status": issue.status.value,
            "status_label": status_label(issue.status),
            "path": issue_path(slug, issue.id),
        }
        for issue in banner_issues(data, brand_id, forum_id=forum_id, tags=tags)
    ]
