"""Moderators' decisions on queue items: which ones each queue offers, and what each does to the
post (or account), its flags, its author and the people who flagged it."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from community.core import notifications
from community.core.clock import utcnow
from community.core.errors import AppError, FormErrors
from community.core.i18n import gettext as _
from community.core.labels import N_
from community.core.models import Post, User, Visibility
from community.core.policy import can_moderate, ensure_moderator, is_staff
from moderation import queue
from moderation.accounts import suspend
from moderation.actions import not_published, set_post_visibility
from moderation.models import FlagStatus, ItemStatus, Queue, QueueItem


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
    ensure_moderator(moderator, item.brand_id)
    if decision not in decisions_for(item.queue):
        raise FormErrors({"decision": _("Choose one of the offered options.")})
    if decision == Decision.REJECT and not (reason or "").strip() and item.queue == Queue.PENDING:
        raise FormErrors({"reason": _("Tell the author why (it is sent to them).")})
    queue.claim_resolution(db, moderator, item, decision.value)
    resolution = _Resolution(db, moderator, reason, ip)
    if item.post is not None:
        _ON_POST[decision](resolution, item.post)
    elif decision == Decision.SPAM and item.user is not None:
        resolution.remove_spammer(item.user)
    return item


def _held(post: Post) -> bool:
    """Whether the post waits for a moderator (its author hears through set_post_visibility)."""
    return Visibility.PENDING in (
        post.visibility,
        post.thread.visibility if post.is_question else post.visibility,
    )


@dataclass(frozen=True, slots=True)
class _Resolution:
    """One moderator's decision on a post or account: who decides, why and from where, and
    what each decision does."""

    db: Session
    moderator: User
    reason: str | None
    ip: str | None

    def _show(self, post: Post, to: Visibility) -> None:
        set_post_visibility(self.db, self.moderator, post, to, reason=self.reason, ip=self.ip)

    def _close_flags(self, post: Post, *, upheld: bool) -> None:
        status = FlagStatus.UPHELD if upheld else FlagStatus.REJECTED
        flags = queue.close_flags(self.db, post, status)
        queue.tell_flaggers(self.db, flags, upheld, self.moderator)

    def approve(self, post: Post) -> None:
        self._show(post, Visibility.VISIBLE)
        self._close_flags(post, upheld=False)

    def reject(self, post: Post) -> None:
        held = _held(post)
        self._show(post, Visibility.DELETED)
        self._close_flags(post, upheld=True)
        if not held:
            queue.tell_author(self.db, post, None, not_published(self.reason), self.moderator)

    def hide(self, post: Post) -> None:
        self._take_down(post, Visibility.HIDDEN)

    def delete(self, post: Post) -> None:
        self._take_down(post, Visibility.DELETED)

    def _take_down(self, post: Post, to: Visibility) -> None:
        held = _held(post)
        self._show(post, to)
        self._close_flags(post, upheld=True)
        if not held:
            why: object = self.reason or notifications.message(N_("it broke the code of conduct"))
            message = notifications.message(
                N_("A moderator removed your post: %(reason)s"), reason=why
            )
            queue.tell_author(self.db, post, None, message, self.moderator)

    def spam(self, post: Post) -> None:
        set_post_visibility(
            self.db, self.moderator, post, Visibility.DELETED, reason=self.reason or "spam",
            ip=self.ip, tell_author=False,
        )  # fmt: skip
        self._close_flags(post, upheld=True)
        if post.author is not None:
            self.remove_spammer(post.author)

    def remove_spammer(self, author: User) -> None:
        """Suspend a spammer (never staff) for a year; their other posts go too, and their
        open queue items close with them."""
        if is_staff(author):  # staff of any brand: only admins sanction them
            return
        suspend(
            self.db, self.moderator, author, days=365, reason=self.reason or _("spam"),
            hide_posts=False, ip=self.ip,
        )  # fmt: skip
        posts = self.db.scalars(
            select(Post).where(
                Post.author_id == author.id,
                Post.visibility.in_([Visibility.VISIBLE, Visibility.PENDING, Visibility.HIDDEN]),
            )
        )
        for post in posts:
            set_post_visibility(
                self.db, self.moderator, post, Visibility.DELETED, reason="spam", ip=self.ip,
                tell_author=False,
            )  # fmt: skip
        self.db.execute(
            update(QueueItem)
            .where(QueueItem.user_id == author.id, QueueItem.status == ItemStatus.OPEN)
            .values(
                status=ItemStatus.RESOLVED,
                resolved_at=utcnow(),
                resolved_by_id=self.moderator.id,
                resolution=Decision.SPAM.value,
            )
            .execution_options(synchronize_session=False)
        )


_ON_POST: dict[Decision, Callable[[_Resolution, Post], None]] = {
    Decision.APPROVE: _Resolution.approve,
    Decision.REJECT: _Resolution.reject,
    Decision.HIDE: _Resolution.hide,
    Decision.DELETE: _Resolution.delete,
    Decision.SPAM: _Resolution.spam,
}


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
        if not can_moderate(moderator, item.brand_id):
            continue  # another brand's item does not exist for this moderator
        try:
            with db.begin_nested():
                resolve(db, moderator, item, decision, reason=reason, ip=ip)
            done += 1
        except AppError as exc:  # report and go on: one stale item must not stop the batch
            skipped.append(exc.message or str(exc))
    return done, skipped
