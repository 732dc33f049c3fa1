"""Known issues: publishing, updates, fix notices, closing and turning one into a KB article.

Every action is audited and flushes only; the route commits once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdservice.known_issues.models import KnownIssue


def open_issues(db: Session, brand_id: int) -> list[KnownIssue]:
    """The brand's announced (not closed) issues, newest first."""
    return list(
        db.scalars(
            select(KnownIssue)
            .where(KnownIssue.brand_id == brand_id, KnownIssue.closed_at.is_(None))
            .order_by(KnownIssue.created_at.desc(), KnownIssue.id.desc())
        )
    )
