"""What moderators do. Every action checks the actor's role, is idempotent (doing it twice
changes nothing the second time), writes one audit row with before/after and the reason, and
tells the people concerned."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from community import indexing, notifications, visibility
from community.auth import revoke_user_sessions
from community.clock import utcnow
from community.errors import FormErrors, NotFound, PermissionDenied
from community.i18n import gettext as _
from community.labels import N_
from community.models import Forum, Post, Role, Thread, ThreadStatus, User, Visibility
from community.policy import is_staff
from community.reputation import clear_acceptance
from moderation import queue
from moderation.audit import record_audit
from moderation.models import AccountWarning, FlagStatus, ItemStatus, Queue, QueueItem

MODERATORS = frozenset({Role.MODERATOR, Role.ADMIN})
MOVE_LEVEL = 3
MAX_SUSPENSION_DAYS = 3650


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    HIDE = "hide"
    DELETE = "delete"
    SPAM = "spam"  # delete as spam and suspend the author


@dataclass(frozen=True, slots=True)
class Choice:
    """One action a queue offers: its decision, its key on the queue page, and whether it asks
    before it acts (it removes published content or suspends someone)."""

    decision: Decision
    key: str
    confirm: bool = False


CHOICES: dict[Queue, tuple[Choice, ...]] = {
    # Posts nobody has seen yet: publish, or not (the author is told why), or remove as spam.
    Queue.PENDING: (
        Choice(Decision.APPROVE, "a"),
        Choice(Decision.REJECT, "r"),
        Choice(Decision.HIDE, "h"),
        Choice(Decision.DELETE, "d"),
        Choice(Decision.SPAM, "s", confirm=True),
    ),
    # Published posts members flagged. The first action, also the bulk form's default and the
    # "r" key, keeps the post and dismisses the flags: a flagged post may be an accepted
    # answer, so removing it is never one keystroke away ("Reject" used to delete it).
    Queue.FLAGGED: (
        Choice(Decision.APPROVE, "r"),
        Choice(Decision.HIDE, "h"),
        Choice(Decision.DELETE, "d", confirm=True),
        Choice(Decision.SPAM, "s", confirm=True),
    ),
    # A reported account has no post to approve or hide: it is dismissed or the spammer removed.
    Queue.USERS: (
        Choice(Decision.APPROVE, "a"),
        Choice(Decision.SPAM, "s", confirm=True),
    ),
}


def decisions_for(queue_name: Queue) -> tuple[Decision, ...]:
    return tuple(choice.decision for choice in CHOICES[queue_name])


def needs_confirmation(queue_name: Queue, decision: Decision) -> bool:
    """Pages ask before these (a confirmation step, also without JavaScript); the JSON API
    acts at once, its callers having chosen the decision by name."""
    return any(c.decision == decision and c.confirm for c in CHOICES[queue_name])


def _lock(db: Session, *rows: Post | Thread | User) -> None:
    """Re-read rows under a row lock (PostgreSQL) so that two moderators acting on the same
    thing at once act one after the other, and the second sees the first one's result. SQLite
    writers are already serialised by BEGIN IMMEDIATE."""
    for row in rows:
        # Lock by primary key alone: FOR UPDATE cannot cover a row's eager outer joins.
        model = type(row)
        db.execute(select(model.id).where(model.id == row.id).with_for_update())
        db.refresh(row)


def ensure_moderator(user: User) -> None:
    if user.role not in MODERATORS:
        raise PermissionDenied(_("Only moderators can do that."))


def _audit(
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
    ensure_moderator(actor)
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
            queue.tell_author(db, post, None, _not_published(reason), actor)
    _audit(
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


def resolve(
    db: Session,
    moderator: User,
    item: QueueItem,
    decision: Decision,
    *,
    reason: str | None = None,
    ip: str | None = None,
) -> QueueItem:
    """Act on one queue item; exactly one moderator wins if two act at once."""
    ensure_moderator(moderator)
    if decision not in decisions_for(item.queue):
        raise FormErrors({"decision": _("Choose one of the offered options.")})
    if decision == Decision.REJECT and not (reason or "").strip() and item.queue == Queue.PENDING:
        raise FormErrors({"reason": _("Tell the author why (it is sent to them).")})
    queue.claim_resolution(db, moderator, item, decision.value)
    post = item.post
    # A held post's author is told by set_post_visibility; others hear about removals here.
    held = post is not None and Visibility.PENDING in (
        post.visibility,
        post.thread.visibility if post.is_question else post.visibility,
    )
    if post is None:
        account = item.user
        if decision == Decision.SPAM and account is not None and not is_staff(account):
            suspend(
                db, moderator, account, days=365, reason=reason or _("spam"),
                hide_posts=False, ip=ip,
            )  # fmt: skip
            _remove_everything_by(db, moderator, account, ip=ip)
        return item
    if decision == Decision.APPROVE:
        set_post_visibility(db, moderator, post, Visibility.VISIBLE, reason=reason, ip=ip)
        flags = queue.close_flags(db, post, FlagStatus.REJECTED)
        queue.tell_flaggers(db, flags, False, moderator)
    elif decision == Decision.REJECT:
        set_post_visibility(db, moderator, post, Visibility.DELETED, reason=reason, ip=ip)
        flags = queue.close_flags(db, post, FlagStatus.UPHELD)
        queue.tell_flaggers(db, flags, True, moderator)
        if not held:
            queue.tell_author(db, post, None, _not_published(reason), moderator)
    elif decision in (Decision.HIDE, Decision.DELETE):
        to = Visibility.HIDDEN if decision == Decision.HIDE else Visibility.DELETED
        set_post_visibility(db, moderator, post, to, reason=reason, ip=ip)
        flags = queue.close_flags(db, post, FlagStatus.UPHELD)
        queue.tell_flaggers(db, flags, True, moderator)
        if not held:
            why: object = reason or notifications.message(N_("it broke the code of conduct"))
            message = notifications.message(
                N_("A moderator removed your post: %(reason)s"), reason=why
            )
            queue.tell_author(db, post, None, message, moderator)
    elif decision == Decision.SPAM:
        set_post_visibility(
            db, moderator, post, Visibility.DELETED, reason=reason or "spam", ip=ip,
            tell_author=False,
        )  # fmt: skip
        flags = queue.close_flags(db, post, FlagStatus.UPHELD)
        queue.tell_flaggers(db, flags, True, moderator)
        if post.author is not None and not is_staff(post.author):
            suspend(
                db, moderator, post.author, days=365, reason=reason or _("spam"),
                hide_posts=False, ip=ip,
            )  # fmt: skip
            _remove_everything_by(db, moderator, post.author, ip=ip)
    return item


def _not_published(reason: str | None) -> dict[str, object]:
    why: object = reason or notifications.message(N_("see the code of conduct"))
    return notifications.message(N_("Your post was not published: %(reason)s"), reason=why)


def _remove_everything_by(db: Session, moderator: User, author: User, *, ip: str | None) -> None:
    """A spammer's other posts go too, and their open queue items close with them."""
    posts = db.scalars(
        select(Post).where(
            Post.author_id == author.id,
            Post.visibility.in_([Visibility.VISIBLE, Visibility.PENDING, Visibility.HIDDEN]),
        )
    )
    for post in posts:
        set_post_visibility(
            db, moderator, post, Visibility.DELETED, reason="spam", ip=ip, tell_author=False
        )
    db.execute(
        update(QueueItem)
        .where(QueueItem.user_id == author.id, QueueItem.status == ItemStatus.OPEN)
        .values(
            status=ItemStatus.RESOLVED,
            resolved_at=utcnow(),
            resolved_by_id=moderator.id,
            resolution=Decision.SPAM.value,
        )
        .execution_options(synchronize_session=False)
    )


def resolve_many(
    db: Session,
    moderator: User,
    item_ids: list[int],
    decision: Decision,
    *,
    reason: str | None = None,
    ip: str | None = None,
) -> tuple[int, list[str]]:
    """Bulk actions: items someone else handled are skipped and reported, the rest applied."""
    done = 0
    skipped: list[str] = []
    for item_id in item_ids[:100]:
        item = db.get(QueueItem, item_id)
        if item is None or item.status != ItemStatus.OPEN:
            continue
        try:
            with db.begin_nested():
                resolve(db, moderator, item, decision, reason=reason, ip=ip)
            done += 1
        except Exception as exc:  # report and go on: one stale item must not stop the batch
            from community.errors import AppError

            if not isinstance(exc, AppError):
                raise
            skipped.append(exc.message or str(exc))
    return done, skipped


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
    ensure_moderator(actor)
    _lock(db, thread)
    if (thread.locked_at is not None) == locked:
        return False
    thread.locked_at = utcnow() if locked else None
    _audit(
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
    ensure_moderator(actor)
    if why == CloseReason.DUPLICATE and (duplicate_of is None or duplicate_of.id == thread.id):
        raise FormErrors({"duplicate_of": _("Give the thread this one duplicates.")})
    _lock(db, thread)
    if thread.status == ThreadStatus.CLOSED and thread.closed_reason == why.value:
        return False
    before = {"status": thread.status.value}
    thread.status = ThreadStatus.CLOSED
    thread.closed_reason = why.value
    thread.duplicate_of_id = duplicate_of.id if duplicate_of else None
    _audit(db, actor, "thread.closed", thread, before=before,
           after={"status": "closed", "reason": why.value, "duplicate_of": thread.duplicate_of_id},
           reason=reason, ip=ip)  # fmt: skip
    indexing.thread_changed(db, thread.id)
    return True


def reopen(db: Session, actor: User, thread: Thread, *, ip: str | None = None) -> bool:
    ensure_moderator(actor)
    _lock(db, thread)
    if thread.status != ThreadStatus.CLOSED:
        return False
    thread.status = ThreadStatus.OPEN
    thread.closed_reason = None
    thread.duplicate_of_id = None
    visibility.recompute_status(thread)
    _audit(db, actor, "thread.reopened", thread, ip=ip)
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
    if actor.role not in MODERATORS and actor.trust_level < MOVE_LEVEL:
        raise PermissionDenied(_("Only moderators and trusted members can move threads."))
    if forum.brand_id != thread.forum.brand_id:
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
    _audit(
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
    ensure_moderator(actor)
    if source.id == target.id:
        raise FormErrors({"target": _("A thread cannot be merged into itself.")})
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
    _audit(
        db, actor, "thread.merged", source, after={"into": target.id, "posts": len(posts)},
        reason=reason, ip=ip,
    )  # fmt: skip
    indexing.thread_changed(db, source.id)
    indexing.thread_changed(db, target.id)
    db.flush()
    return len(posts)


# --- people ----------------------------------------------------------------------------------


def warn(
    db: Session, actor: User, user: User, message: str, *, ip: str | None = None
) -> AccountWarning:
    ensure_moderator(actor)
    text = message.strip()[:2000]
    if not text:
        raise FormErrors({"message": _("Write the warning.")})
    warning = AccountWarning(user_id=user.id, moderator_id=actor.id, message=text)
    db.add(warning)
    queue.tell_author(
        db,
        None,
        user,
        notifications.message(N_("A moderator warned you: %(message)s"), message=text),
        actor,
    )
    _audit(db, actor, "user.warned", user, reason=text, ip=ip)
    return warning


def _ensure_can_sanction(actor: User, user: User) -> None:
    ensure_moderator(actor)
    if user.id == actor.id:
        raise PermissionDenied(_("You cannot do that to your own account."))
    if is_staff(user) and actor.role != Role.ADMIN:
        raise PermissionDenied(_("Only admins can sanction staff accounts."))


def suspend(
    db: Session,
    actor: User,
    user: User,
    *,
    days: int,
    reason: str,
    hide_posts: bool = True,
    ip: str | None = None,
) -> bool:
    """Suspended accounts cannot sign in until the date; their sessions end now. By default
    their visible posts are hidden while the suspension lasts and come back when it ends."""
    _ensure_can_sanction(actor, user)
    if not 1 <= days <= MAX_SUSPENSION_DAYS:
        raise FormErrors(
            {"days": _("Suspend for 1 to %(max)d days.") % {"max": MAX_SUSPENSION_DAYS}}
        )
    until = utcnow() + timedelta(days=days)
    before = {"suspended_until": user.suspended_until.isoformat() if user.suspended_until else None}
    user.suspended_until = until
    user.suspension_reason = reason[:300] or None
    revoke_user_sessions(db, user.id)
    hidden = hide_posts_of_suspended(db, user) if hide_posts else 0
    _audit(
        db,
        actor,
        "user.suspended",
        user,
        before=before,
        after={"suspended_until": until.isoformat(), "posts_hidden": hidden},
        reason=reason,
        ip=ip,
    )
    return True


def hide_posts_of_suspended(db: Session, user: User) -> int:
    """Hide what a suspended member has visible, remembering which posts to bring back."""
    posts = list(
        db.scalars(
            select(Post).where(Post.author_id == user.id, Post.visibility == Visibility.VISIBLE)
        )
    )
    for post in posts:
        if post.is_question and post.thread.visibility != Visibility.VISIBLE:
            continue
        visibility.set_visibility(db, post, Visibility.HIDDEN)
        post.hidden_by_suspension = True
    db.flush()
    return len(posts)


def restore_posts_of_suspended(db: Session, user: User) -> int:
    """Show again what the suspension hid (posts hidden for other reasons stay hidden)."""
    posts = list(
        db.scalars(
            select(Post).where(
                Post.author_id == user.id,
                Post.hidden_by_suspension.is_(True),
            )
        )
    )
    restored = 0
    for post in posts:
        post.hidden_by_suspension = False
        current = post.thread.visibility if post.is_question else post.visibility
        if current == Visibility.HIDDEN:
            visibility.set_visibility(db, post, Visibility.VISIBLE)
            restored += 1
    db.flush()
    return restored


def end_expired_suspensions(db: Session) -> int:
    """The worker's sweep: suspensions that ran out give their posts back."""
    now = utcnow()
    users = list(
        db.scalars(
            select(User)
            .where(
                User.id.in_(
                    select(Post.author_id).where(Post.hidden_by_suspension.is_(True)).distinct()
                ),
                or_(User.suspended_until.is_(None), User.suspended_until <= now),
            )
            .limit(200)
        )
    )
    for user in users:
        restored = restore_posts_of_suspended(db, user)
        record_audit(
            db,
            actor=None,
            action="user.suspension_ended",
            target_type="user",
            target_id=user.id,
            after={"posts_restored": restored},
            reason=_("the suspension ran out"),
        )
    return len(users)


def unsuspend(db: Session, actor: User, user: User, *, ip: str | None = None) -> bool:
    _ensure_can_sanction(actor, user)
    if user.suspended_until is None or user.suspended_until <= utcnow():
        return False
    user.suspended_until = None
    user.suspension_reason = None
    restored = restore_posts_of_suspended(db, user)
    _audit(db, actor, "user.unsuspended", user, after={"posts_restored": restored}, ip=ip)
    return True


def silence(
    db: Session, actor: User, user: User, *, days: int, reason: str, ip: str | None = None
) -> bool:
    """Read-only: they may sign in and read, not post, vote or flag."""
    _ensure_can_sanction(actor, user)
    if not 1 <= days <= MAX_SUSPENSION_DAYS:
        raise FormErrors(
            {"days": _("Silence for 1 to %(max)d days.") % {"max": MAX_SUSPENSION_DAYS}}
        )
    until = utcnow() + timedelta(days=days)
    user.silenced_until = until
    queue.tell_author(
        db,
        None,
        user,
        notifications.message(
            N_("Your account is read-only until %(until)s: %(reason)s"),
            until=until.strftime("%Y-%m-%d"),
            reason=reason,
        ),
        actor,
    )
    _audit(
        db,
        actor,
        "user.silenced",
        user,
        after={"silenced_until": until.isoformat()},
        reason=reason,
        ip=ip,
    )
    return True


def unsilence(db: Session, actor: User, user: User, *, ip: str | None = None) -> bool:
    _ensure_can_sanction(actor, user)
    if user.silenced_until is None or user.silenced_until <= utcnow():
        return False
    user.silenced_until = None
    _audit(db, actor, "user.unsilenced", user, ip=ip)
    return True


def set_trust_level(
    db: Session,
    actor: User,
    user: User,
    level: int,
    *,
    reason: str | None = None,
    ip: str | None = None,
) -> bool:
    """Moderators set any level (4 only by hand); the level is then pinned (no automation)."""
    _ensure_can_sanction(actor, user)
    if not 0 <= level <= 4:
        raise FormErrors({"trust_level": _("Trust levels go from 0 to 4.")})
    if user.trust_level == level and user.trust_locked:
        return False
    before = {"trust_level": user.trust_level}
    user.trust_level = level
    user.trust_locked = True
    _audit(
        db,
        actor,
        "trust.set",
        user,
        before=before,
        after={"trust_level": level},
        reason=reason,
        ip=ip,
    )
    return True


def report_user(db: Session, reporter: User, user: User, note: str) -> QueueItem:
    """Members report an account (not one post); moderators see it in the users queue."""
    from community.policy import ensure_can_participate

    ensure_can_participate(reporter)
    if reporter.id == user.id:
        raise PermissionDenied()
    text = note.strip()[:500]
    if not text:
        raise FormErrors({"note": _("Say what is wrong.")})
    item = queue.account_item(db, _brand_of_user(db, user), user)
    item.reasons = [
        *list(item.reasons),
        _("reported by %(name)s: %(note)s") % {"name": reporter.username, "note": text},
    ]
    db.flush()
    return item


def _brand_of_user(db: Session, user: User) -> int:
    from community.models import Brand

    brand_id = db.scalar(
        select(Forum.brand_id)
        .join(Thread, Thread.forum_id == Forum.id)
        .join(Post, Post.thread_id == Thread.id)
        .where(Post.author_id == user.id)
        .limit(1)
    )
    if brand_id is None:
        brand_id = db.scalar(select(Brand.id).order_by(Brand.id).limit(1))
    if brand_id is None:
        raise NotFound()
    return int(brand_id)
