"""Fix notices: when a known issue becomes FIXED the worker tells the author of each linked
(visible) thread and each follower, once per person per issue.

Each row is claimed with a conditional UPDATE (notified_at still empty) before its notice is
written, in the same transaction: a retried event, two workers, or a second "fixed" after a
relapse never tell anyone twice. E-mail follows each person's preference through notify()."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from community.core.clock import utcnow
from community.core.models import Brand, NotificationKind, Thread, User, Visibility
from community.core.notifications import notify
from crowdservice.known_issues.models import (
    KnownIssue,
    KnownIssueFollower,
    KnownIssueStatus,
    KnownIssueThread,
)

FIXED_EVENT = "known_issue.fixed"


def issue_path(brand_slug: str, issue_id: int) -> str:
    return f"/b/{brand_slug}/known-issues/{issue_id}"


def _already_told(db: Session, issue_id: int) -> set[int]:
    """People a notice about this issue already reached (as a follower or as an author)."""
    followers = db.scalars(
        select(KnownIssueFollower.user_id).where(
            KnownIssueFollower.known_issue_id == issue_id,
            KnownIssueFollower.notified_at.is_not(None),
        )
    )
    authors = db.scalars(
        select(Thread.author_id)
        .join(KnownIssueThread, KnownIssueThread.thread_id == Thread.id)
        .where(
            KnownIssueThread.known_issue_id == issue_id,
            KnownIssueThread.notified_at.is_not(None),
            Thread.author_id.is_not(None),
        )
    )
    return {user_id for user_id in [*followers, *authors] if user_id is not None}


def send_fix_notices(db: Session, issue_id: int) -> int:
    """Tell whoever is still to be told; returns how many notices were written."""
    issue = db.get(KnownIssue, issue_id)
    # Re-read: an issue that went back to "identified" before the worker ran says nothing yet.
    if issue is None or issue.status != KnownIssueStatus.FIXED:
        return 0
    brand = db.get(Brand, issue.brand_id)
    if brand is None:
        return 0
    data: dict[str, object] = {
        "path": issue_path(brand.slug, issue.id),
        "issue_title": issue.title,
    }
    told = _already_told(db, issue.id)
    now = utcnow()
    sent = 0
    # Hidden (pending, deleted) threads stay unclaimed: their authors hear nothing while hidden.
    linked = db.execute(
        select(KnownIssueThread.thread_id, Thread, User)
        .join(Thread, Thread.id == KnownIssueThread.thread_id)
        .join(User, User.id == Thread.author_id)
        .where(
            KnownIssueThread.known_issue_id == issue.id,
            KnownIssueThread.notified_at.is_(None),
            Thread.visibility == Visibility.VISIBLE,
        )
        .order_by(KnownIssueThread.linked_at, KnownIssueThread.thread_id)
    ).all()
    for thread_id, thread, author in linked:
        claimed = db.execute(
            update(KnownIssueThread)
            .where(
                KnownIssueThread.known_issue_id == issue.id,
                KnownIssueThread.thread_id == thread_id,
                KnownIssueThread.notified_at.is_(None),
            )
            .values(notified_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1 and author.id not in told:  # type: ignore[attr-defined]
            told.add(author.id)
            if notify(
                db, author, NotificationKind.KNOWN_ISSUE, actor=None, thread=thread, data=data
            ):
                sent += 1
    followers = db.execute(
        select(User)
        .join(KnownIssueFollower, KnownIssueFollower.user_id == User.id)
        .where(
            KnownIssueFollower.known_issue_id == issue.id,
            KnownIssueFollower.notified_at.is_(None),
        )
        .order_by(KnownIssueFollower.created_at, User.id)
    ).scalars()
    for follower in list(followers):
        claimed = db.execute(
            update(KnownIssueFollower)
            .where(
                KnownIssueFollower.known_issue_id == issue.id,
                KnownIssueFollower.user_id == follower.id,
                KnownIssueFollower.notified_at.is_(None),
            )
            .values(notified_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1 and follower.id not in told:  # type: ignore[attr-defined]
            told.add(follower.id)
            if notify(db, follower, NotificationKind.KNOWN_ISSUE, actor=None, data=data):
                sent += 1
    db.flush()
    return sent
