"""Who may do what: every permission rule in one place (Discourse's Guardian is the model), used
by services, pages, the API and the role dependencies of community.core.auth alike.

Roles. The role sets live on `Role` and `BrandRole` (admins are in each); code elsewhere asks
a predicate here (`is_staff`, `can_moderate`, `is_agent`, `is_admin`...) rather than comparing
roles. Predicates take a `User`, the request's `Viewer` or None (nobody: never allowed), and the
brand asked about: roles are granted per brand (community.core.staff); site admins and the
site-wide roles hold in every brand. An archived brand is gone (404) for all but site admins.

Threads and posts. Members act on visible, unlocked content; the asker accepts on their thread;
the brand's staff may also act on locked threads, edit anyone's post (with a reason) and see
hidden content. Authors see their own content while it waits for a moderator (marked as such),
so "your question is waiting" never lands on a 404; nobody else does, and they cannot change it
until it is approved (what the moderator reviews stays what they saw).

Domain objects. The core imports no domain (import-linter), yet some rules are about a domain's
object: who may act on an escalation. Those rules are written here too, against the few plain
attributes they read (`HeldItem`, `ClosableItem` below), so every rule is in this one file.
`access_*` loaders stay with their domain (they query its tables) and call the checks here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from community.core.clock import utcnow
from community.core.errors import Conflict, NotFound, PermissionDenied
from community.core.i18n import gettext as _
from community.core.models import Brand, Forum, ForumAccess, Post, Role, Thread, User, Visibility
from community.core.workspace_models import BrandRole

# From this trust level members may fix the tags of others' threads.
RETAG_LEVEL = 2
# From this trust level members may move a thread to another forum of its brand.
MOVE_LEVEL = 3


class HasRole(Protocol):
    """A `User`, or the request's `Viewer` (whose role is None when nobody is signed in)."""

    @property
    def role(self) -> Role | None: ...

    @property
    def brand_roles(self) -> Mapping[int, frozenset[BrandRole]]: ...


class HeldItem(Protocol):
    """Work one agent holds (an escalation)."""

    @property
    def assigned_agent_id(self) -> int | None: ...

    @property
    def brand_id(self) -> int: ...


class ClosableItem(Protocol):
    """Work that is over once closed (an escalation resolved or returned)."""

    @property
    def is_closed(self) -> bool: ...


# --- roles -------------------------------------------------------------------------------------


def _granted(user: HasRole, brand_id: int | None, roles: frozenset[BrandRole]) -> bool:
    if brand_id is None:  # in any brand
        return any(held & roles for held in user.brand_roles.values())
    return bool(user.brand_roles.get(brand_id, frozenset()) & roles)


def is_staff(user: HasRole | None, brand_id: int | None = None) -> bool:
    """Moderators, agents and admins of the brand (of any brand when brand_id is None)."""
    if user is None:
        return False
    return user.role in Role.STAFF or _granted(user, brand_id, BrandRole.STAFF)


def can_moderate(user: HasRole | None, brand_id: int | None = None) -> bool:
    """Moderators and admins: the review queue, sanctions, escalating, duplicate decisions."""
    if user is None:
        return False
    return user.role in Role.MODERATORS or _granted(user, brand_id, BrandRole.MODERATORS)


def is_agent(user: HasRole | None, brand_id: int | None = None) -> bool:
    """Support agents and admins: they work escalations and their answers are official."""
    if user is None:
        return False
    return user.role in Role.AGENTS or _granted(user, brand_id, BrandRole.AGENTS)


def can_curate(user: HasRole | None, brand_id: int | None = None) -> bool:
    """Curating the knowledge base is the agents' work."""
    return is_agent(user, brand_id)


def is_brand_admin(user: HasRole | None, brand_id: int | None) -> bool:
    """Site admins, and the brand's own: its settings, forums, look and staff (None: any)."""
    if user is None:
        return False
    return is_admin(user) or _granted(user, brand_id, frozenset({BrandRole.BRAND_ADMIN}))


def administered_brands(user: HasRole) -> frozenset[int] | None:
    """The brands `user` administers: None for every brand (site admins)."""
    if is_admin(user):
        return None
    return frozenset(b for b, held in user.brand_roles.items() if BrandRole.BRAND_ADMIN in held)


def staffed_brands(user: HasRole | None) -> frozenset[int] | None:
    """The brands whose staff `user` is (None: every brand), for views that span brands."""
    if user is None:
        return frozenset()
    if user.role in Role.STAFF:
        return None
    return frozenset(brand for brand, held in user.brand_roles.items() if held & BrandRole.STAFF)


# For queries that want every admin (is_admin's set): who gets a brand's weekly summary.
ADMIN_ROLES: frozenset[Role] = frozenset({Role.ADMIN})


def is_admin(user: HasRole | None) -> bool:
    return user is not None and user.role in ADMIN_ROLES


def is_lead(user: HasRole | None, brand_id: int | None = None) -> bool:
    """Lead agents are the site's or the brand's admins: they act on others' escalations."""
    return is_brand_admin(user, brand_id)


def brand_shown(brand: Brand, viewer: HasRole | None = None) -> bool:
    return brand.archived_at is None or is_admin(viewer)


def ensure_brand_shown(brand: Brand, viewer: HasRole | None = None) -> None:
    if not brand_shown(brand, viewer):
        raise NotFound()


def ensure_brand_admin(user: HasRole, brand_id: int) -> None:
    if not is_brand_admin(user, brand_id):
        raise PermissionDenied(_("Only the brand's admins can do that."))


def ensure_admin(user: HasRole, refusal: str | None = None) -> None:
    """`refusal`: what the page says to someone else (nothing more than 403 by default)."""
    if not is_admin(user):
        raise PermissionDenied(refusal)


def ensure_moderator(user: HasRole, brand_id: int | None) -> None:
    if not can_moderate(user, brand_id):
        raise PermissionDenied(_("Only moderators can do that."))


def ensure_curator(user: HasRole, brand_id: int | None) -> None:
    if not can_curate(user, brand_id):
        raise PermissionDenied(_("Only support agents and admins curate the knowledge base."))


# --- accounts ----------------------------------------------------------------------------------


def ensure_can_participate(user: User) -> None:
    """Suspended or deactivated accounts read but do not write."""
    if user.deactivated_at is not None:
        raise PermissionDenied()
    now = utcnow()
    if user.suspended_until is not None and user.suspended_until > now:
        raise PermissionDenied(_("Your account is suspended and cannot post or vote right now."))
    if user.silenced_until is not None and user.silenced_until > now:
        raise PermissionDenied(_("Your account is read-only for now: you cannot post or vote."))


# --- threads and posts -------------------------------------------------------------------------


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
        content.visibility == Visibility.VISIBLE
        or is_staff(user, content.brand_id)
        or is_own_pending(user, content)
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
    if is_staff(user, post.brand_id):
        return
    if post.visibility != Visibility.VISIBLE or post.thread.visibility != Visibility.VISIBLE:
        raise PermissionDenied(
            _("This post is waiting for a moderator; you can change it once it is published.")
        )


def ensure_thread_open_for(user: User, thread: Thread) -> None:
    if thread.locked_at is not None and not is_staff(user, thread.brand_id):
        raise PermissionDenied(_("This thread is locked."))


def can_retag(user: User | None, thread: Thread) -> bool:
    """The asker, staff, and members from trust level 2 may fix a thread's tags (a held
    thread's only once it is published)."""
    if user is None:
        return False
    if is_staff(user, thread.brand_id):
        return True
    if thread.visibility != Visibility.VISIBLE:
        return False
    return user.id == thread.author_id or user.trust_level >= RETAG_LEVEL


def can_redact(user: HasRole | None, brand_id: int) -> bool:
    """Staff hide earlier versions of a post (and still see what they hid)."""
    return is_staff(user, brand_id)


def ensure_can_redact(actor: User, post: Post) -> None:
    ensure_can_participate(actor)
    ensure_post_visible(actor, post)
    if not can_redact(actor, post.brand_id):
        raise PermissionDenied(_("Only staff can redact earlier versions."))


# --- moderation --------------------------------------------------------------------------------


def ensure_can_move(actor: User, brand_id: int) -> None:
    """Moderators, and members from trust level 3, may move a thread to another forum."""
    if not can_moderate(actor, brand_id) and actor.trust_level < MOVE_LEVEL:
        raise PermissionDenied(_("Only moderators and trusted members can move threads."))


def ensure_can_sanction(actor: User, user: User) -> None:
    """Warnings, suspensions and the like: moderators (an account and its sanctions span the
    brands), never on their own account, and on staff accounts only admins."""
    if not can_moderate(actor):
        raise PermissionDenied(_("Only moderators can do that."))
    if user.id == actor.id:
        raise PermissionDenied(_("You cannot do that to your own account."))
    if is_staff(user) and not is_admin(actor):
        raise PermissionDenied(_("Only admins can sanction staff accounts."))


def ensure_can_escalate(moderator: HasRole, brand_id: int) -> None:
    """Handing a thread to the support agents is a moderator's call (authors ask instead)."""
    if not can_moderate(moderator, brand_id):
        raise PermissionDenied(_("Only moderators can escalate a thread."))


# --- escalations (agents) ----------------------------------------------------------------------
# Moderators and members may not open the agents' workspace at all.


def ensure_agent(user: HasRole, brand_id: int | None) -> None:
    """`brand_id` None: an agent of some brand (the workspace then lists only theirs)."""
    if not is_agent(user, brand_id):
        raise PermissionDenied()


def ensure_acting_agent(user: User, brand_id: int) -> None:
    """An agent who may change things now (not deactivated, suspended or silenced)."""
    ensure_agent(user, brand_id)
    ensure_can_participate(user)


def ensure_holder_or_lead(user: User, item: HeldItem) -> None:
    if item.assigned_agent_id == user.id or is_lead(user, item.brand_id):
        return
    raise PermissionDenied(
        _("Only the agent holding this escalation, or a lead agent, can do that.")
    )


def ensure_escalation_open(item: ClosableItem) -> None:
    if item.is_closed:
        raise Conflict(_("This escalation is already closed."))


# --- what the thread page offers ---------------------------------------------------------------


def is_active(user: User | None) -> bool:
    """Signed in, not deactivated, neither suspended nor silenced now."""
    if user is None or user.deactivated_at is not None:
        return False
    now = utcnow()
    sanctions = (user.suspended_until, user.silenced_until)
    return all(until is None or until <= now for until in sanctions)


def sees_members_view(user: User | None, brand_id: int | None) -> bool:
    """An active member who is not the brand's staff (None: of no brand): the buttons any such
    member has on a thread, but for their own posts and votes (shared cards and kept pages)."""
    return is_active(user) and not is_staff(user, brand_id)


@dataclass(frozen=True, slots=True)
class ThreadPermissions:
    """What the viewer may do on one thread page (drives which buttons are shown)."""

    user: User | None
    thread: Thread

    @property
    def _active(self) -> bool:
        return is_active(self.user)

    @property
    def is_staff(self) -> bool:
        return is_staff(self.user, self.thread.brand_id)

    @property
    def sees_members_view(self) -> bool:
        return sees_members_view(self.user, self.thread.brand_id)

    @property
    def _open(self) -> bool:
        return self.thread.locked_at is None or self.is_staff

    @property
    def can_answer(self) -> bool:
        return self._active and self._open and self.thread.visibility == Visibility.VISIBLE

    @property
    def can_accept(self) -> bool:
        if not self._active or not self._open or self.user is None:
            return False
        return self.user.id == self.thread.author_id or self.is_staff

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
        if self.is_staff:
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
        if self.is_staff:
            return True
        return not (post.is_question and self.thread.reply_count > 0)


# --- agent tools: private follow-up, saved replies, known issues -------------------------------


class PrivateItem(Protocol):
    """A private conversation: its customer (the thread's author when it was opened)."""

    @property
    def customer_id(self) -> int | None: ...

    @property
    def brand_id(self) -> int: ...


def can_follow_up_privately(user: HasRole | None, brand_id: int | None) -> bool:
    """Agents and moderators continue a public thread in private with its author."""
    return is_agent(user, brand_id) or can_moderate(user, brand_id)


def ensure_can_follow_up_privately(user: User, brand_id: int | None) -> None:
    if not can_follow_up_privately(user, brand_id):
        raise PermissionDenied(_("Only the support team can continue a thread in private."))
    ensure_can_participate(user)


def can_read_private(user: User | None, item: PrivateItem) -> bool:
    """The customer and the brand's staff; for anyone else the conversation does not exist."""
    if user is None:
        return False
    return is_staff(user, item.brand_id) or (
        item.customer_id is not None and item.customer_id == user.id
    )


def ensure_private_visible(user: User | None, item: PrivateItem) -> None:
    if not can_read_private(user, item):
        raise NotFound()


def can_use_saved_replies(user: HasRole | None, brand_id: int) -> bool:
    """Agents (and admins) answer with the brand's saved replies."""
    return is_agent(user, brand_id)


def ensure_can_use_saved_replies(user: User | None, brand_id: int) -> None:
    if not can_use_saved_replies(user, brand_id):
        raise PermissionDenied(_("Only the support team uses saved replies."))


def can_manage_saved_replies(user: HasRole | None, brand_id: int | None) -> bool:
    """Admins (the brand's too) write, change and archive a brand's saved replies."""
    return is_brand_admin(user, brand_id)


def ensure_can_manage_saved_replies(user: User, brand_id: int | None) -> None:
    if not can_manage_saved_replies(user, brand_id):
        raise PermissionDenied(_("Only admins manage saved replies."))
    ensure_can_participate(user)


def can_announce(user: HasRole | None, brand_id: int) -> bool:
    """Agents (and admins) publish known issues, update, link, close and turn them into
    articles."""
    return is_agent(user, brand_id)


def ensure_can_announce(user: User, brand_id: int) -> None:
    if not can_announce(user, brand_id):
        raise PermissionDenied(_("Only support agents can publish known issues."))
    ensure_can_participate(user)


# --- forum access ------------------------------------------------------------------------------
# Forum.access: who may read a forum, its threads and posts (404 for anyone else, never 403). SQL
# and search filters: community.core.forum_access, kb.search_access.


class Reader(HasRole, Protocol):
    @property
    def verified_customer(self) -> bool: ...


EVERY_ACCESS = frozenset(ForumAccess)


def member_access_levels(who: Reader | None) -> frozenset[ForumAccess]:
    """What `who` reads in a brand whose staff they are not: verified customers, signed in."""
    verified = who is not None and who.role is not None and who.verified_customer
    return EVERY_ACCESS - {ForumAccess.STAFF} if verified else frozenset({ForumAccess.PUBLIC})


def readable_access_levels(who: Reader | None, brand_id: int) -> frozenset[ForumAccess]:
    return EVERY_ACCESS if is_staff(who, brand_id) else member_access_levels(who)


def can_read_forum(who: Reader | None, forum: Forum) -> bool:
    return forum.access in readable_access_levels(who, forum.brand_id)


def ensure_forum_readable(who: Reader | None, forum: Forum) -> None:
    if not can_read_forum(who, forum):
        raise NotFound()
