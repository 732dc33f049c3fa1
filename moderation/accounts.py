"""What moderators do to accounts: warnings, suspensions (which hide the member's posts until
they end), read-only periods and trust levels; and members reporting an account to them.
Like every moderation action, each checks the actor, is idempotent and writes an audit row."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from community import visibility
from community.core import events, notifications
from community.core.audit import record_audit
from community.core.auth import revoke_user_sessions
from community.core.clock import utcnow
from community.core.errors import FormErrors, NotFound, PermissionDenied
from community.core.i18n import gettext as _
from community.core.labels import N_
from community.core.models import Brand, Forum, Post, Thread, User, Visibility
from community.core.policy import ensure_can_participate, ensure_can_sanction
from moderation import queue
from moderation.actions import audit_action
from moderation.models import AccountWarning, QueueItem

MAX_SUSPENSION_DAYS = 3650


def warn(
    db: Session, actor: User, user: User, message: str, *, ip: str | None = None
) -> AccountWarning:
    ensure_can_sanction(actor, user)
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
    audit_action(db, actor, "user.warned", user, reason=text, ip=ip)
    return warning


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
    ensure_can_sanction(actor, user)
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
    audit_action(
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
    ensure_can_sanction(actor, user)
    if user.suspended_until is None or user.suspended_until <= utcnow():
        return False
    user.suspended_until = None
    user.suspension_reason = None
    restored = restore_posts_of_suspended(db, user)
    audit_action(db, actor, "user.unsuspended", user, after={"posts_restored": restored}, ip=ip)
    return True


def silence(
    db: Session, actor: User, user: User, *, days: int, reason: str, ip: str | None = None
) -> bool:
    """Read-only: they may sign in and read, not post, vote or flag."""
    ensure_can_sanction(actor, user)
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
    audit_action(
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
    ensure_can_sanction(actor, user)
    if user.silenced_until is None or user.silenced_until <= utcnow():
        return False
    user.silenced_until = None
    audit_action(db, actor, "user.unsilenced", user, ip=ip)
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
    ensure_can_sanction(actor, user)
    if not 0 <= level <= 4:
        raise FormErrors({"trust_level": _("Trust levels go from 0 to 4.")})
    if user.trust_level == level and user.trust_locked:
        return False
    before = {"trust_level": user.trust_level}
    user.trust_level = level
    user.trust_locked = True
    audit_action(
        db,
        actor,
        "trust.set",
        user,
        before=before,
        after={"trust_level": level},
        reason=reason,
        ip=ip,
    )
    events.trust_level_changed.send(db, user)
    return True


def report_user(db: Session, reporter: User, user: User, note: str) -> QueueItem:
    """Members report an account (not one post); moderators see it in the users queue."""
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


def warnings_of(db: Session, user: User) -> list[AccountWarning]:
    """The warnings a member was given, newest first."""
    return list(
        db.scalars(
            select(AccountWarning)
            .where(AccountWarning.user_id == user.id)
            .order_by(AccountWarning.id.desc())
        )
    )
