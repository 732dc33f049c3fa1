"""Forum access in SQL: the one condition every listing of forums, threads and posts adds, so
that what a page, the API or a search fallback lists is what community.core.policy lets the
viewer open (`can_read_forum`). The conditions are on `Forum`'s columns: the statement joins
`forums` (a thread's forum is one primary-key lookup).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute

from community.core import policy
from community.core.models import Brand, Forum, ForumAccess, Role, Thread, User
from community.core.workspace_models import BrandRole, StaffGrant

Reader = policy.Reader


def readable_forums_clause(who: Reader | None, brand_id: int) -> ColumnElement[bool]:
    """The forums of brand `brand_id` that `who` may read (the brand's own condition is the
    caller's)."""
    levels = policy.readable_access_levels(who, brand_id)
    if levels == policy.EVERY_ACCESS:
        return true()
    return Forum.access.in_(sorted(levels))


def readable_forums_anywhere(who: Reader | None) -> ColumnElement[bool]:
    """The forums of every brand that `who` may read: their member's levels everywhere, and
    everything in the brands they staff (every brand for site admins and site-wide roles)."""
    staffed = policy.staffed_brands(who)
    if staffed is None:
        return true()
    member = Forum.access.in_(sorted(policy.member_access_levels(who)))
    if not staffed:
        return member
    return or_(member, Forum.brand_id.in_(sorted(staffed)))


def readable_threads_anywhere(who: Reader | None) -> ColumnElement[bool]:
    """For a statement over threads (of any brand, forums not joined): the threads in forums
    `who` may read, in brands not archived (an archived brand's pages are gone but for site
    admins, community.core.service.brand_shown), as a correlated EXISTS on the thread's forum."""
    if policy.is_admin(who):
        return true()
    forum = (
        select(Forum.id)
        .join(Brand, Brand.id == Forum.brand_id)
        .where(Forum.id == Thread.forum_id, Brand.archived_at.is_(None))
    )
    if policy.staffed_brands(who) is not None:
        forum = forum.where(readable_forums_anywhere(who))
    return forum.correlate(Thread).exists()


# Role values that make a user staff of every brand (community.core.policy.staffed_brands).
_SITE_STAFF = sorted(role.value for role in Role.STAFF)
_BRAND_STAFF = sorted(role.value for role in BrandRole.STAFF)


def readable_by_user(user_id: InstrumentedAttribute[int]) -> ColumnElement[bool]:
    """Forums the user whose id is the column `user_id` may read, as SQL alone (for rows about
    other people than the viewer: a notification's recipient). The same rule as
    policy.can_read_forum: public; verified for verified customers; everything for the brand's
    staff."""
    user = select(User).where(User.id == user_id)
    verified = exists(user.where(User.verified_customer.is_(True)))
    site_staff = exists(user.where(User.role.in_(_SITE_STAFF)))
    brand_staff = exists().where(
        StaffGrant.user_id == user_id,
        StaffGrant.brand_id == Forum.brand_id,
        StaffGrant.role.in_(_BRAND_STAFF),
    )
    return or_(
        Forum.access == ForumAccess.PUBLIC,
        and_(Forum.access == ForumAccess.VERIFIED, verified),
        site_staff,
        brand_staff,
    )
