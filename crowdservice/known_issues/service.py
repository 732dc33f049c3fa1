"""Known issues: publishing, updates, closing and reopening, following.

Every agent action is audited and flushes only; the route commits once. Becoming FIXED records
an outbox event in the same transaction: the worker tells the linked authors and the followers
(crowdservice.known_issues.notices), so a fix with thousands of linked threads costs the agent's
request one row, and nothing is lost if the process stops."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from community.core import outbox, policy
from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.db import insert_missing
from community.core.errors import Conflict, FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.markdown import render_markdown
from community.core.models import Brand, User
from crowdservice.known_issues.forms import (
    UPDATE_MAX,
    IssueForm,
    clean_issue,
    clean_status,
    clean_text,
)
from crowdservice.known_issues.models import (
    KnownIssue,
    KnownIssueFollower,
    KnownIssueStatus,
    KnownIssueUpdate,
)
from crowdservice.known_issues.notices import FIXED_EVENT


def open_issues(db: Session, brand_id: int) -> list[KnownIssue]:
    """The brand's announced (not closed) issues, newest first."""
    return list(
        db.scalars(
            select(KnownIssue)
            .where(KnownIssue.brand_id == brand_id, KnownIssue.closed_at.is_(None))
            .order_by(KnownIssue.created_at.desc(), KnownIssue.id.desc())
        )
    )


def access_issue(db: Session, issue_id: int) -> KnownIssue:
    """Any issue, open or closed: they are public announcements (closed ones are history)."""
    issue = db.scalar(
        select(KnownIssue)
        .where(KnownIssue.id == issue_id)
        .options(selectinload(KnownIssue.updates).selectinload(KnownIssueUpdate.author))
    )
    if issue is None:
        raise NotFound()
    return issue


def access_managed_issue(db: Session, agent: User, issue_id: int) -> KnownIssue:
    """An issue for its agents' page (every linked thread, hidden ones too, and the brand's
    forums): the issue's own brand's agents only."""
    issue = access_issue(db, issue_id)
    policy.ensure_can_announce(agent, issue.brand_id)
    return issue


def _state(issue: KnownIssue) -> dict[str, object]:
    return {
        "title": issue.title,
        "status": issue.status.value,
        "match_terms": list(issue.match_terms),
        "forum_ids": list(issue.forum_ids),
        "tags": list(issue.tags),
        "closed": issue.closed_at is not None,
    }


def _audit(db: Session, agent: User, action: str, issue: KnownIssue, **extra: object) -> None:
    record_audit(
        db, actor=agent, action=f"known_issue.{action}", target_type="known_issue",
        target_id=issue.id, after=_state(issue) | extra,
    )  # fmt: skip


def _became_fixed(db: Session, issue: KnownIssue) -> None:
    issue.fixed_at = utcnow()
    # One waiting event per issue is enough: the handler re-reads who is still to be told.
    outbox.enqueue(db, FIXED_EVENT, {"id": issue.id}, dedupe_key=f"known_issue:{issue.id}")


def publish(db: Session, agent: User, brand: Brand, form: IssueForm) -> KnownIssue:
    policy.ensure_can_announce(agent, brand.id)
    clean = clean_issue(db, brand, form)
    now = utcnow()
    issue = KnownIssue(
        brand_id=brand.id,
        title=clean.title,
        summary=clean.summary,
        summary_html=render_markdown(clean.summary),
        status=clean.status,
        match_terms=clean.match_terms,
        forum_ids=clean.forum_ids,
        tags=clean.tags,
        created_by_id=agent.id,
        created_at=now,
        updated_at=now,
    )
    db.add(issue)
    db.flush()
    db.add(
        KnownIssueUpdate(
            known_issue_id=issue.id, status=clean.status, author_id=agent.id, created_at=now
        )
    )
    if clean.status == KnownIssueStatus.FIXED:
        _became_fixed(db, issue)
    db.flush()
    _audit(db, agent, "published", issue)
    return issue


def edit(db: Session, agent: User, issue: KnownIssue, form: IssueForm) -> KnownIssue:
    """Title, summary, match terms and scope; the status changes through updates."""
    policy.ensure_can_announce(agent, issue.brand_id)
    brand = db.get(Brand, issue.brand_id)
    if brand is None:
        raise NotFound()
    clean = clean_issue(db, brand, form)
    issue.title = clean.title
    issue.summary = clean.summary
    issue.summary_html = render_markdown(clean.summary)
    issue.match_terms = clean.match_terms
    issue.forum_ids = clean.forum_ids
    issue.tags = clean.tags
    issue.updated_at = utcnow()
    db.flush()
    _audit(db, agent, "edited", issue)
    return issue


def post_update(
    db: Session, agent: User, issue: KnownIssue, status: str, body: str
) -> KnownIssueUpdate:
    policy.ensure_can_announce(agent, issue.brand_id)
    errors: dict[str, str] = {}
    new_status = clean_status(status, errors)
    text = clean_text(body, "body", UPDATE_MAX, errors)
    if not text and new_status == issue.status:
        errors["body"] = _("Say what changed, or change the status.")
    if errors:
        raise FormErrors(errors)
    if issue.closed_at is not None:
        raise Conflict(_("This known issue is closed: reopen it first."))
    now = utcnow()
    update = KnownIssueUpdate(
        known_issue_id=issue.id,
        status=new_status,
        body=text,
        body_html=render_markdown(text) if text else "",
        author_id=agent.id,
        created_at=now,
    )
    db.add(update)
    before = issue.status
    issue.status = new_status
    issue.updated_at = now
    if new_status == KnownIssueStatus.FIXED and before != KnownIssueStatus.FIXED:
        _became_fixed(db, issue)
    db.flush()
    _audit(db, agent, "updated", issue, previous_status=before.value)
    return update


def close(db: Session, agent: User, issue: KnownIssue) -> KnownIssue:
    """No longer announced (the banner goes), whatever its status: an issue may also end
    without a fix (it went away, or it was not ours)."""
    policy.ensure_can_announce(agent, issue.brand_id)
    if issue.closed_at is not None:
        raise Conflict(_("This known issue is already closed."))
    issue.closed_at = issue.updated_at = utcnow()
    db.flush()
    _audit(db, agent, "closed", issue)
    return issue


def reopen(db: Session, agent: User, issue: KnownIssue) -> KnownIssue:
    policy.ensure_can_announce(agent, issue.brand_id)
    if issue.closed_at is None:
        raise Conflict(_("This known issue is open."))
    issue.closed_at = None
    issue.updated_at = utcnow()
    db.flush()
    _audit(db, agent, "reopened", issue)
    return issue


# --- members following an issue -------------------------------------------------------------


def is_following(db: Session, user: User | None, issue: KnownIssue) -> bool:
    if user is None:
        return False
    return db.get(KnownIssueFollower, (issue.id, user.id)) is not None


def follow(db: Session, user: User, issue: KnownIssue) -> None:
    """Ask to be told when it is fixed; following twice is following."""
    policy.ensure_can_participate(user)
    if issue.closed_at is not None or issue.status == KnownIssueStatus.FIXED:
        raise Conflict(_("This known issue is no longer open for notices."))
    # Two clicks at once are one follow, not a unique-key error.
    insert_missing(
        db,
        KnownIssueFollower,
        [{"known_issue_id": issue.id, "user_id": user.id, "created_at": utcnow()}],
    )


def unfollow(db: Session, user: User, issue: KnownIssue) -> None:
    db.execute(
        delete(KnownIssueFollower).where(
            KnownIssueFollower.known_issue_id == issue.id,
            KnownIssueFollower.user_id == user.id,
        )
    )
    db.flush()
