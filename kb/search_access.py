"""What a reader may find in search: the Meilisearch filters and the database conditions that keep
out threads (and their community solutions) in forums the reader may not read, and everything of
an archived brand for all but site admins (community.core.policy, "forum access").

Two filters, on purpose. The forums the reader may not read are read from the database at each
search and left out by slug, so a change of a forum's access applies to the next search, before
the worker has indexed anything again. Each document also carries its forum's access level and
its brand's archived state (kb.documents), filtered too: a document the slugs would miss (a
thread indexed in a forum since renamed) is still kept out. Both filters use negation (NOT IN,
!=), which a document without the field passes: documents indexed before these fields existed
were all public, and stay found until they are indexed again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core import policy
from community.core.models import Brand, Forum
from kb.search_queries import quote

Reader = policy.Reader


@dataclass(frozen=True)
class SearchAccess:
    """What one reader may find in one brand's indexes."""

    # Nothing at all: an archived brand, for anyone but a site admin.
    nothing: bool
    # The slugs of the brand's forums the reader may not read, and the access levels they may not.
    hidden_forums: tuple[str, ...]
    hidden_levels: tuple[str, ...]
    # Whether the brand's archived documents are left out (for all but site admins).
    live_only: bool

    def filters(self, *, kb: bool = False) -> list[str]:
        """Meilisearch filter expressions (ANDed). In the KB index, articles are not a forum's
        content (a published article is public, kb.service.access_article): they stay."""
        filters: list[str] = []
        if self.hidden_forums:
            slugs = ", ".join(quote(slug) for slug in self.hidden_forums)
            filters.append(_or_article(f"forum NOT IN [{slugs}]", kb))
        if self.hidden_levels:
            levels = ", ".join(quote(level) for level in self.hidden_levels)
            filters.append(_or_article(f"access NOT IN [{levels}]", kb))
        if self.live_only:
            filters.append("brand_archived != true")
        return filters


def _or_article(condition: str, kb: bool) -> str:
    return f'type = "article" OR {condition}' if kb else condition


def search_access(db: Session, brand: Brand, reader: Reader | None) -> SearchAccess:
    """One statement at most (the brand's forums the reader may not read), none for the brand's
    staff."""
    admin = policy.is_admin(reader)
    if brand.archived_at is not None and not admin:
        return SearchAccess(nothing=True, hidden_forums=(), hidden_levels=(), live_only=True)
    hidden_levels = tuple(
        sorted(policy.EVERY_ACCESS - policy.readable_access_levels(reader, brand.id))
    )
    hidden_forums: tuple[str, ...] = ()
    if hidden_levels:
        hidden_forums = tuple(
            db.scalars(
                select(Forum.slug)
                .where(Forum.brand_id == brand.id, Forum.access.in_(hidden_levels))
                .order_by(Forum.slug)
            )
        )
    return SearchAccess(
        nothing=False,
        hidden_forums=hidden_forums,
        hidden_levels=hidden_levels,
        live_only=not admin,
    )
