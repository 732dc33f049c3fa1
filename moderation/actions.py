"""What moderators do to posts and threads. Every action checks the actor's role, is
idempotent (doing it twice changes nothing the second time), writes one audit row with
before/after and the reason, and tells the people concerned.

Decisions on queue items are in `decisions.py`, actions on accounts in `accounts.py`; both
build on the guard and the audit helper here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from community import visibility
from community.core import indexing, notifications
from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.labels import N_
from community.core.models import Forum, Post, Thread, ThreadStatus, User, Visibility
from community.core.policy import ensure_can_move, ensure_moderator
from community.reputation import clear_acceptance
from moderation import queue


def _lock(db: Session, *rows: Post | Thread | User) -> None:
    """Re-read rows under a row lock (PostgreSQL) so that two moderators acting on the same
    thing at once act one after the other, and the second sees the first one's result. SQLite
    writers are already serialised by BEGIN IMMEDIATE."""
    for row in rows:
        # Lock by primary key alone: FOR UPDATE cannot cover a row's eager outer joins.
        model = type(row)
        db.execute(select(model.id).where(model.id == row.id).with_for_update())
        db.refresh(row)


def audit_action(
    db: Session,
    actor: User,
    action: str,
    target: Post | Thread | User,
    *,
    before: Mapping[str, object] | None = None,
    after: Mapping[str, object] | None = None,
    reason: str | None = None,
    ip: str | None = None,
) -> None:
    """The audit row of a moderator's action on a post, thread or account."""
    target_type = {Post: "post", Thread: "thread", User: "user"}[type(target)]
    record_audit(
        db,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target.id,
        before=dict(before) if before is not None else None,
        after=dict(after) if after is not None else None,
        reason=reason,
        ip=ip,
    )


def not_published(reason: str | None) -> dict[str, object]:
    """What the author of a held post that was turned down is told."""
    why: object = reason or notifications.message(N_("see the code of conduct"))
    return notifications.message(N_("Your post was not published: %(reason)s"), reason=why)


# --- posts -----------------------------------------------------------------------------------


def set_post_visibility(
    db: Session,
    actor: User,
    post: Post,
    to: Visibility,
    *,
    reason: str | None,
    ip: str | None = None,
    tell_author: bool = True,
) -> bool:
    """Hide, unhide, delete or restore a post (a question carries its thread). The author of a
    held post is notified when it is published or turned down (unless `tell_author` is off)."""
    ensure_moderator(actor, post.brand_id)
    _lock(db, post.thread, post)
    before = post.thread.visibility if post.is_question else post.visibility
    if before == to:
        return False
    was_pending = before == Visibility.PENDING
    if to == Visibility.VISIBLE and was_pending and post.author is not None:
        visibility.publish(db, post, author=post.author)
    else:
        visibility.set_visibility(db, post, to)
    if was_pending and tell_author:
        # The author was told their post waits for a moderator: they hear how it ended.
        if to == Visibility.VISIBLE:
            notifications.notify_approved(db, post=post, actor=actor)
        else:
            queue.tell_author(db, post, None, not_published(reason), actor)
    audit_action(
        db,
        actor,
        f"post.{to.value}" if to != Visibility.VISIBLE else "post.shown",
        post,
        before={"visibility": before.value},
        after={"visibility": to.value},
        reason=reason,
        ip=ip,
    )
    return True


# --- threads ---------------------------------------------------------------------------------


def set_locked(
    db: Session,
    actor: User,
    thread: Thread,
    locked: bool,
    *,
    reason: str | None,
    ip: str | None = None,
) -> bool:
    ensure_moderator(actor, thread.brand_id)
    _lock(db, thread)
    if (thread.locked_at is not None) == locked:
        return False
    thread.locked_at = utcnow() if locked else None
    audit_action(
        db, actor, "thread.locked" if locked else "thread.unlocked", thread, reason=reason, ip=ip
    )
    indexing.thread_changed(db, thread.id)
    return True


class CloseReason(enum.StrEnum):
    OFF_TOPIC = "off_topic"
    RESOLVED = "resolved"
    DUPLICATE = "duplicate"


def close(
    db: Session,
    actor: User,
    thread: Thread,
    why: CloseReason,
    *,
    duplicate_of: Thread | None = None,
    reason: str | None = None,
    ip: str | None = None,
) -> bool:
    ensure_moderator(actor, thread.brand_id)
    if why == CloseReason.DUPLICATE and (duplicate_of is None or duplicate_of.id == thread.id):
        raise FormErrors({"duplicate_of": _("Give the thread this one duplicates.")})
    _lock(db, thread)
    if thread.status == ThreadStatus.CLOSED and thread.closed_reason == why.value:
        return False
    before = {"status": thread.status.value}
    thread.status = ThreadStatus.CLOSED
    thread.closed_reason = why.value
    thread.duplicate_of_id = duplicate_of.id if duplicate_of else None
    audit_action(db, actor, "thread.closed", thread, before=before,
           after={"status": "closed", "reason": why.value, "duplicate_of": thread.duplicate_of_id},
           reason=reason, ip=ip)  # fmt: skip
    indexing.thread_changed(db, thread.id)
    return True


def reopen(db: Session, actor: User, thread: Thread, *, ip: str | None = None) -> bool:
    ensure_moderator(actor, thread.brand_id)
    _lock(db, thread)
    if thread.status != ThreadStatus.CLOSED:
        return False
    thread.status = ThreadStatus.OPEN
    thread.closed_reason = None
    thread.duplicate_of_id = None
    visibility.recompute_status(thread)
    audit_action(db, actor, "thread.reopened", thread, ip=ip)
    indexing.thread_changed(db, thread.id)
    return True


def move(
    db: Session,
    actor: User,
    thread: Thread,
    forum: Forum,
    *,
    reason: str | None = None,
    ip: str | None = None,
) -> bool:
    """Moderators, and trust-level-3 members, may move a thread to another forum of the brand."""
    ensure_can_move(actor, thread.brand_id)
    if forum.brand_id != thread.brand_id:
        raise NotFound()
    _lock(db, thread)
    if forum.id == thread.forum_id:
        return False
    source = thread.forum
    counted = thread.visibility == Visibility.VISIBLE
    if counted:
        source.thread_count = Forum.thread_count - 1
        source.post_count = Forum.post_count - (1 + thread.reply_count)
        forum.thread_count = Forum.thread_count + 1
        forum.post_count = Forum.post_count + (1 + thread.reply_count)
    before = {"forum": source.slug}
    thread.forum_id = forum.id
    audit_action(
        db,
        actor,
        "thread.moved",
        thread,
        before=before,
        after={"forum": forum.slug},
        reason=reason,
        ip=ip,
    )
    indexing.thread_changed(db, thread.id)
    db.flush()
    db.refresh(thread, ["forum"])
    return True


def merge(
    db: Session,
    actor: User,
    source: Thread,
    target: Thread,
    *,
    reason: str | None = None,
    ip: str | None = None,
) -> int:
    """Fold `source` into `target`: every post moves over (its question becomes an answer), and
    `source` stays as a deleted pointer to `target`. Returns how many posts moved."""
    ensure_moderator(actor, source.brand_id)
    if source.id == target.id:
        raise FormErrors({"target": _("A thread cannot be merged into itself.")})
    if target.brand_id != source.brand_id:
        raise FormErrors({"target": _("Threads merge only within their brand.")})
    _lock(db, *sorted((source, target), key=lambda thread: thread.id))
    if source.merged_into_id is not None:
        return 0
    if target.merged_into_id is not None:
        raise FormErrors({"target": _("That thread was itself merged; use the one it went into.")})
    posts = list(db.scalars(select(Post).where(Post.thread_id == source.id).order_by(Post.id)))
    source_visible = source.visibility == Visibility.VISIBLE
    shown = {
        post.id
        for post in posts
        if source_visible and (post.is_question or post.visibility == Visibility.VISIBLE)
    }
    clear_acceptance(db, source)
    question = next((post for post in posts if post.is_question), None)
    if question is not None and source_visible:
        visibility.set_visibility(db, question, Visibility.DELETED)  # uncounts all of source
    for post in posts:
        post.thread_id = target.id
        post.is_question = False
        if post.id in shown:
            post.visibility = Visibility.HIDDEN  # uncounted; shown (and counted) below
            post.deleted_at = None
    db.flush()
    for post in posts:
        db.refresh(post, ["thread"])
        if post.id in shown:
            visibility.set_visibility(db, post, Visibility.VISIBLE)
    source.visibility = Visibility.DELETED
    source.merged_into_id = target.id
    source.reply_count = 0
    audit_action(
        db, actor, "thread.merged", source, after={"into": target.id, "posts": len(posts)},
        reason=reason, ip=ip,
    )  # fmt: skip
    indexing.thread_changed(db, source.id)
    indexing.thread_changed(db, target.id)
    db.flush()
    return len(posts)


def forum_to_move_to(db: Session, thread: Thread, slug: str) -> Forum:
    """The forum of the thread's own brand a move names; anything else (an archived forum,
    which takes no new threads) is a 422 for `forum`."""
    found = db.scalar(
        select(Forum).where(
            Forum.brand_id == thread.brand_id, Forum.slug == slug, Forum.archived_at.is_(None)
        )
    )
    if found is None:
        raise FormErrors({"forum": _("Choose a forum.")})
    return found
