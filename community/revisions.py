"""A post's edit history as each viewer may see it, and redaction of earlier versions.

When an edit removes personal data, the old text would otherwise stay public in the history
(page, API and diffs). Staff (moderators, agents, admins: the roles that may edit anyone's post)
can redact earlier versions: their text, title and tags are then shown to staff only, marked,
and everyone else sees "Redacted by staff". The text is kept, not erased, so staff can still
check what was removed; every redaction is audited. The latest version is the post as it reads
now and cannot be redacted: editing the post is how that text goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import Conflict, NotFound
from community.core.i18n import gettext as _
from community.core.models import Post, PostRevision, User
from community.core.policy import can_redact, ensure_can_redact


@dataclass(frozen=True, slots=True)
class ShownRevision:
    """One version as a viewer may see it. `hidden`: redacted, and the viewer is not staff, so
    title, tags and text are None."""

    number: int
    editor: User | None
    reason: str | None
    created_at: datetime
    redacted: bool
    hidden: bool
    title: str | None
    tags: str | None
    body_source: str | None


def history(db: Session, viewer: User | None, post: Post) -> list[ShownRevision]:
    """Oldest first. The caller has checked that the viewer may see the post."""
    reveal = can_redact(viewer, post.brand_id)
    rows = db.scalars(
        select(PostRevision)
        .where(PostRevision.post_id == post.id)
        .options(selectinload(PostRevision.editor))
        .order_by(PostRevision.number)
    )
    shown = []
    for row in rows:
        redacted = row.redacted_at is not None
        hidden = redacted and not reveal
        shown.append(
            ShownRevision(
                number=row.number,
                editor=row.editor,
                reason=row.reason,
                created_at=row.created_at,
                redacted=redacted,
                hidden=hidden,
                title=None if hidden else row.title,
                tags=None if hidden else row.tags,
                body_source=None if hidden else row.body_source,
            )
        )
    return shown


def _latest_number(db: Session, post: Post) -> int:
    return (
        db.scalar(select(func.max(PostRevision.number)).where(PostRevision.post_id == post.id)) or 0
    )


def _mark(revisions: list[PostRevision], actor: User) -> list[int]:
    now = utcnow()
    marked = []
    for revision in revisions:
        if revision.redacted_at is None:
            revision.redacted_at = now
            revision.redacted_by_id = actor.id
            marked.append(revision.number)
    return marked


def redact(
    db: Session,
    actor: User,
    post: Post,
    number: int,
    *,
    reason: str | None = None,
    ip: str | None = None,
) -> bool:
    """Hide one earlier version's text from non-staff; False if it already was."""
    ensure_can_redact(actor, post)
    revision = db.scalar(
        select(PostRevision).where(PostRevision.post_id == post.id, PostRevision.number == number)
    )
    if revision is None:
        raise NotFound()
    if number == _latest_number(db, post):
        raise Conflict(
            _("This version is the post as it reads now: edit the post to remove the text.")
        )
    if not _mark([revision], actor):
        return False
    _audit(db, actor, post, [number], reason=reason, ip=ip)
    return True


def redact_earlier(
    db: Session, actor: User, post: Post, *, reason: str | None = None, ip: str | None = None
) -> list[int]:
    """Hide every version but the latest (after an edit that removed personal data)."""
    ensure_can_redact(actor, post)
    db.flush()
    latest = _latest_number(db, post)
    earlier = list(
        db.scalars(
            select(PostRevision).where(
                PostRevision.post_id == post.id, PostRevision.number < latest
            )
        )
    )
    marked = _mark(earlier, actor)
    if marked:
        _audit(db, actor, post, marked, reason=reason, ip=ip)
    return marked


def _audit(
    db: Session,
    actor: User,
    post: Post,
    numbers: list[int],
    *,
    reason: str | None,
    ip: str | None,
) -> None:
    db.flush()
    record_audit(
        db,
        actor=actor,
        action="post.revisions_redacted",
        target_type="post",
        target_id=post.id,
        after={"revisions": sorted(numbers)},
        reason=reason or _("personal data"),
        ip=ip,
    )
