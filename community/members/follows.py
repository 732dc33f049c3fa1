"""Following a forum or a tag: hear of every new thread there, as watchers hear of new posts.

Who hears of a new thread is worked out by the worker when it announces the question
(community.visibility.announce sends `post_announced`; subscribed in
community.members.subscribers): a held question is announced, and so followed, only once a
moderator publishes it, and the writer's transaction never pays for the followers. Each follower
is told once (following both the forum and one of the thread's tags counts once, the forum
first), never the author, never someone the post already told of (a mention), and never someone
who may not read the forum (restricted forums: the same rule as community.core.policy's
can_read_forum, as SQL). In-app and e-mail go as for watched threads
(community.core.notifications.notify_all: each person's e-mail preference).
"""

from __future__ import annotations

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from community.core import notifications
from community.core.db import insert_missing
from community.core.errors import NotFound
from community.core.forum_access import readable_by_user
from community.core.models import (
    Brand,
    Forum,
    Notification,
    NotificationKind,
    Post,
    Tag,
    User,
    Visibility,
)
from community.core.policy import Reader, brand_shown, can_read_forum
from community.core.workspace_models import ForumFollow, TagFollow
from community.mentions import find_mentions

# --- loading what is followed ----------------------------------------------------------------


def access_forum(db: Session, who: Reader | None, forum_id: int) -> Forum:
    """A forum `who` may read, in a brand that is shown; anything else does not exist (404)."""
    forum = db.get(Forum, forum_id)
    if forum is None or not brand_shown(forum.brand, who) or not can_read_forum(who, forum):
        raise NotFound()
    return forum


def access_brand(db: Session, who: Reader | None, brand_slug: str) -> Brand:
    brand = db.scalar(select(Brand).where(Brand.slug == brand_slug))
    if brand is None or not brand_shown(brand, who):
        raise NotFound()
    return brand


def access_tag(db: Session, who: Reader | None, brand_slug: str, name: str) -> Tag:
    """A brand's tag by name (tags are stored lower-case), 404 if there is none."""
    brand = access_brand(db, who, brand_slug)
    tag = db.scalar(select(Tag).where(Tag.brand_id == brand.id, Tag.name == name.lower()[:40]))
    if tag is None:
        raise NotFound()
    return tag


# --- following -------------------------------------------------------------------------------


def follow_forum(db: Session, user: User, forum: Forum) -> None:
    """Idempotent, also when two requests follow at the same moment (one INSERT that leaves an
    existing row alone)."""
    insert_missing(db, ForumFollow, [{"user_id": user.id, "forum_id": forum.id}])


def unfollow_forum(db: Session, user: User, forum: Forum) -> None:
    db.execute(
        delete(ForumFollow).where(ForumFollow.user_id == user.id, ForumFollow.forum_id == forum.id)
    )


def follows_forum(db: Session, user_id: int | None, forum_id: int) -> bool:
    return user_id is not None and db.get(ForumFollow, (user_id, forum_id)) is not None


def follow_tag(db: Session, user: User, tag: Tag) -> None:
    insert_missing(db, TagFollow, [{"user_id": user.id, "tag_id": tag.id}])


def unfollow_tag(db: Session, user: User, tag: Tag) -> None:
    db.execute(delete(TagFollow).where(TagFollow.user_id == user.id, TagFollow.tag_id == tag.id))


def follows_tag(db: Session, user_id: int | None, tag_id: int) -> bool:
    return user_id is not None and db.get(TagFollow, (user_id, tag_id)) is not None


# --- telling followers -----------------------------------------------------------------------


def on_post_announced(db: Session, post: Post) -> None:
    """A question the worker announced (visible now): tell the forum's and its tags' followers.
    Runs before announce's own mention notifications; the mentioned are left to those (a
    mention says more), so they are skipped here."""
    if not post.is_question or post.author is None:
        return
    thread = post.thread
    forum = thread.forum
    if thread.visibility != Visibility.VISIBLE or forum.brand.archived_at is not None:
        return
    told = select(Notification.user_id).where(Notification.post_id == post.id)
    mentioned = [user.id for user in find_mentions(db, post.body_source)]
    # Those who may read the forum: policy.can_read_forum's rule as SQL (on the joined forum),
    # so no follower is loaded only to be left out.
    by_forum = (
        select(ForumFollow.user_id)
        .join(Forum, Forum.id == ForumFollow.forum_id)
        .where(ForumFollow.forum_id == forum.id, readable_by_user(ForumFollow.user_id))
    )
    by_tag = (
        select(TagFollow.user_id)
        .join(Forum, Forum.id == forum.id)
        .where(
            TagFollow.tag_id.in_([tag.id for tag in thread.tags]),
            readable_by_user(TagFollow.user_id),
        )
    )
    rows = db.execute(
        select(User, User.id.in_(by_forum))
        .where(
            or_(User.id.in_(by_forum), User.id.in_(by_tag)),
            User.id != post.author_id,
            User.id.not_in(told),
            User.id.not_in(mentioned),
        )
        .order_by(User.id)
    ).all()
    recipients = [
        (user, NotificationKind.FOLLOWED_FORUM if via_forum else NotificationKind.FOLLOWED_TAG)
        for user, via_forum in rows
    ]
    notifications.notify_all(db, recipients, actor=post.author, thread=thread, post=post)
