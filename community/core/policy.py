"""Who may do what to threads and posts. One place, used by services, pages and the API alike.

Members act on visible, unlocked content; the asker accepts on their thread; moderators, agents
and admins ("staff") may also act on locked threads, edit anyone's post (with a reason) and see
content that is hidden from members. Authors see their own content while it waits for a
moderator (marked as such), so "your question is waiting" never lands on a 404; nobody else does,
and they cannot change it until it is approved (what the moderator reviews stays what they saw).
"""

from __future__ import annotations

from dataclasses import dataclass

from community.core.clock import utcnow
from community.core.errors import NotFound, PermissionDenied
from community.core.i18n import gettext as _
from community.core.models import Post, Role, Thread, User, Visibility

STAFF_ROLES = frozenset({Role.MODERATOR, Role.AGENT, Role.ADMIN})


def is_staff(user: User | None) -> bool:
    return user is not None and user.role in STAFF_ROLES


def ensure_can_participate(user: User) -> None:
    """Suspended or deactivated accounts read but do not write."""
    if user.deactivated_at is not None:
        raise PermissionDenied()
    now = utcnow()
    if user.suspended_until is not None and user.suspended_until > now:
        raise PermissionDenied(_("Your account is suspended and cannot post or vote right now."))
    if user.silenced_until is not None and user.silenced_until > now:
        raise PermissionDenied(_("Your account is read-only for now: you cannot post or vote."))


def is_own_pending(user: User | None, content: Post | Thread) -> bool:
    """Held content its own author is looking at."""
    return (
        user is not None
        and content.visibility == Visibility.PENDING
        and content.author_id is not None
        and content.author_id == user.id
    )


def can_see(user: User | None, content: Post | Thread) -> bool:
    return (
        content.visibility == Visibility.VISIBLE or is_staff(user) or is_own_pending(user, content)
    )


def ensure_thread_visible(user: User | None, thread: Thread) -> None:
    if not can_see(user, thread):
        raise NotFound()


def ensure_post_visible(user: User | None, post: Post) -> None:
    ensure_thread_visible(user, post.thread)
    if not can_see(user, post):
        raise NotFound()


def ensure_can_change(user: User, post: Post) -> None:
    """Editing and deleting: held content stays as the moderator will review it."""
    if is_staff(user):
        return
    if post.visibility != Visibility.VISIBLE or post.thread.visibility != Visibility.VISIBLE:
        raise PermissionDenied(
            _("This post is waiting for a moderator; you can change it once it is published.")
        )


def ensure_thread_open_for(user: User, thread: Thread) -> None:
    if thread.locked_at is not None and not is_staff(user):
        raise PermissionDenied(_("This thread is locked."))


@dataclass(frozen=True, slots=True)
class ThreadPermissions:
    """What the viewer may do on one thread page (drives which buttons are shown)."""

    user: User | None
    thread: Thread

    @property
    def _active(self) -> bool:
        if self.user is None or self.user.deactivated_at is not None:
            return False
        now = utcnow()
        for until in (self.user.suspended_until, self.user.silenced_until):
            if until is not None and until > now:
                return False
        return True

    @property
    def is_staff(self) -> bool:
        return is_staff(self.user)

    @property
    def _open(self) -> bool:
        return self.thread.locked_at is None or is_staff(self.user)

    @property
    def can_answer(self) -> bool:
        return self._active and self._open and self.thread.visibility == Visibility.VISIBLE

    @property
    def can_accept(self) -> bool:
        if not self._active or not self._open or self.user is None:
            return False
        return self.user.id == self.thread.author_id or is_staff(self.user)

    @property
    def can_mark_helpful(self) -> bool:
        return (
            self._active
            and self.user is not None
            and self.user.id != self.thread.author_id
            and self.thread.visibility == Visibility.VISIBLE
        )

    def can_vote(self, post: Post) -> bool:
        return (
            self._active
            and self._open
            and self.user is not None
            and post.author_id != self.user.id
            and post.visibility == Visibility.VISIBLE
        )

    def can_edit(self, post: Post) -> bool:
        if not self._active or not self._open or self.user is None:
            return False
        if is_staff(self.user):
            return True
        return (
            post.author_id == self.user.id
            and post.visibility == Visibility.VISIBLE
            and self.thread.visibility == Visibility.VISIBLE
        )

    def waiting(self, content: Post | Thread) -> bool:
        """The viewer's own post or thread, held for a moderator (the page says so)."""
        return is_own_pending(self.user, content)

    def can_delete(self, post: Post) -> bool:
        if not self.can_edit(post) or post.visibility == Visibility.DELETED:
            return False
        if is_staff(self.user):
            return True
        return not (post.is_question and self.thread.reply_count > 0)
