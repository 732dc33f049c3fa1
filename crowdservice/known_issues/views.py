"""What the known-issue pages show, loaded before rendering (templates never query)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from community.core.models import Brand, Forum, Thread
from community.core.policy import Reader, can_read_forum
from crowdservice.known_issues.models import (
    KnownIssue,
    KnownIssueFollower,
    KnownIssueThread,
)


@dataclass(frozen=True)
class IssueRow:
    """One line of the agents' list."""

    issue: KnownIssue
    linked_threads: int
    followers: int


def brand_issues(
    db: Session, brand: Brand, *, include_closed: bool, with_updates: bool = False
) -> list[KnownIssue]:
    """Open issues first, each group newest first (with their timelines for the API)."""
    statement = select(KnownIssue).where(KnownIssue.brand_id == brand.id)
    if with_updates:
        statement = statement.options(selectinload(KnownIssue.updates))
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


def scope_forums(db: Session, issue: KnownIssue, reader: Reader | None) -> list[Forum]:
    """The forums the issue is about that `reader` may read (a restricted forum's name is not
    shown to anyone else)."""
    if not issue.forum_ids:
        return []
    forums = db.scalars(select(Forum).where(Forum.id.in_(issue.forum_ids)).order_by(Forum.name))
    return [forum for forum in forums if can_read_forum(reader, forum)]


def brand_forums(db: Session, brand: Brand) -> list[Forum]:
    return list(db.scalars(select(Forum).where(Forum.brand_id == brand.id).order_by(Forum.name)))
