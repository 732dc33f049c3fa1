"""A brand's forums as its admins run them: create, rename and describe, who may read them
(public, verified customers, staff), moderation policy, order, archive and bring back, and
moving threads between them in bulk.

An archived forum leaves the brand's forum list and the ask form and takes no new thread
(community.threads.ask refuses), while its threads stay readable at their addresses: links
people shared keep working. Moving threads keeps every forum's counters right (only visible
threads count, with their posts, as community.visibility counts them) and has the search
index follow each moved thread, as moderation's single move does.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from community.brand_admin import Actor, SlugTaken, record
from community.brand_schemas import ForumIn, ForumPatch, ThreadMoveIn
from community.core import counters, indexing
from community.core.clock import utcnow
from community.core.errors import FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.models import Brand, Forum, Thread, Visibility
from community.core.policy import ensure_brand_admin

# The pages under /b/<brand>/ that are not forums: a forum with one of these slugs would be
# unreachable (tests/community/test_brand_admin_forums.py checks the list against the routes).
RESERVED_FORUM_SLUGS: Final = frozenset(
    {"admin", "agent", "api", "ask", "conduct", "feed", "feeds", "insights", "kb",
     "known-issues", "look", "mod", "search", "settings", "sso", "staff", "t", "tag", "tags", "u",
     "uploads"}
)  # fmt: skip
FORUM_FIELDS: Final = ("name", "description", "access", "moderation_policy")


def access_managed_forum(db: Session, actor: Actor, brand: Brand, slug: str) -> Forum:
    """One of the brand's forums (archived ones too) for its admins."""
    ensure_brand_admin(actor, brand.id)
    forum = db.scalar(select(Forum).where(Forum.brand_id == brand.id, Forum.slug == slug[:80]))
    if forum is None:
        raise NotFound()
    return forum


def brand_forums(db: Session, brand: Brand) -> list[Forum]:
    """Every forum of the brand in its order, the archived ones last."""
    return list(
        db.scalars(
            select(Forum)
            .where(Forum.brand_id == brand.id)
            .order_by(Forum.archived_at.is_not(None), Forum.position, Forum.id)
        )
    )


def _renumber(forums: list[Forum]) -> None:
    for position, forum in enumerate(forums):
        if forum.position != position:
            forum.position = position


def _slug_taken() -> SlugTaken:
    return SlugTaken({"slug": _("This brand already has a forum at that address.")})


def do_create_forum(
    db: Session, actor: Actor, brand: Brand, data: ForumIn, *, ip: str | None = None
) -> Forum:
    """A new forum, last in the brand's list."""
    ensure_brand_admin(actor, brand.id)
    if data.slug in RESERVED_FORUM_SLUGS:
        raise FormErrors({"slug": _("That address is used by a page of the brand.")})
    existing = brand_forums(db, brand)
    if any(forum.slug == data.slug for forum in existing):
        raise _slug_taken()
    live = [forum for forum in existing if forum.archived_at is None]
    forum = Forum(
        brand_id=brand.id, slug=data.slug, name=data.name, description=data.description,
        access=data.access, moderation_policy=data.moderation_policy, position=len(live),
    )  # fmt: skip
    _renumber([*live, forum, *existing[len(live) :]])
    try:
        with db.begin_nested():
            db.add(forum)
            db.flush()
    except IntegrityError as exc:  # another admin took the slug a moment ago
        raise _slug_taken() from exc
    after = {"slug": forum.slug} | {name: str(getattr(forum, name)) for name in FORUM_FIELDS}
    record(db, actor, "forum.created", ("forum", forum.id), after=after, ip=ip)
    return forum


def do_update_forum(
    db: Session, actor: Actor, forum: Forum, data: ForumPatch, *, ip: str | None = None
) -> bool:
    """Change what was sent (null or missing stays); `position` reorders. True if changed."""
    ensure_brand_admin(actor, forum.brand_id)
    sent = data.model_dump(exclude_unset=True)
    position = sent.pop("position", None)
    changes = {
        name: value
        for name, value in sent.items()
        if value is not None and value != getattr(forum, name)
    }
    changed = False
    if changes:
        before = {name: str(getattr(forum, name)) for name in changes}
        for name, value in changes.items():
            setattr(forum, name, value)
        after = {name: str(value) for name, value in changes.items()}
        record(db, actor, "forum.updated", ("forum", forum.id), before=before, after=after, ip=ip)
        if "access" in changes:  # its search documents follow who may read it now
            indexing.forum_access_changed(db, forum.id)
        changed = True
    if position is not None:
        changed = do_reorder_forum(db, actor, forum, position, ip=ip) or changed
    db.flush()
    return changed


def do_reorder_forum(
    db: Session, actor: Actor, forum: Forum, position: int, *, ip: str | None = None
) -> bool:
    """Put the forum at `position` (0 first) among the brand's open forums; past the end is
    last. Archived forums have no place in the list until they are brought back."""
    ensure_brand_admin(actor, forum.brand_id)
    if forum.archived_at is not None:
        raise FormErrors({"position": _("An archived forum has no place in the list.")})
    forums = brand_forums(db, forum.brand)
    live = [other for other in forums if other.archived_at is None and other.id != forum.id]
    before = [other.slug for other in forums if other.archived_at is None]
    live.insert(min(position, len(live)), forum)
    if [other.slug for other in live] == before:
        return False
    _renumber([*live, *forums[len(live) :]])
    after = [other.slug for other in live]
    record(
        db, actor, "forum.reordered", ("brand", forum.brand_id),
        before={"order": before}, after={"order": after}, ip=ip,
    )  # fmt: skip
    db.flush()
    return True


def do_set_forum_archived(
    db: Session, actor: Actor, forum: Forum, archived: bool, *, ip: str | None = None
) -> bool:
    """Archive a forum (it leaves the list, its threads stay) or bring it back (last)."""
    ensure_brand_admin(actor, forum.brand_id)
    if (forum.archived_at is not None) == archived:
        return False
    forums = brand_forums(db, forum.brand)
    forum.archived_at = utcnow() if archived else None
    live = [other for other in forums if other.archived_at is None and other.id != forum.id]
    gone = [other for other in forums if other.archived_at is not None and other.id != forum.id]
    _renumber([*live, forum, *gone])  # brought back: last of the open forums
    action = "forum.archived" if archived else "forum.unarchived"
    record(
        db, actor, action, ("forum", forum.id),
        before={"archived": not archived}, after={"archived": archived}, ip=ip,
    )  # fmt: skip
    db.flush()
    return True


def _target_forum(db: Session, brand: Brand, slug: str) -> Forum:
    forum = db.scalar(select(Forum).where(Forum.brand_id == brand.id, Forum.slug == slug))
    if forum is None:
        raise FormErrors({"forum": _("This brand has no forum at that address.")})
    if forum.archived_at is not None:
        raise FormErrors({"forum": _("This forum is archived and takes no new threads.")})
    return forum


def _locked_threads(db: Session, brand: Brand, ids: list[int]) -> list[Thread]:
    """The brand's threads among `ids`, locked in id order (PostgreSQL; SQLite's writers are
    serialised already) so that a concurrent answer, hide or single move waits for the move,
    as moderation's move locks its thread. Any id that is not one of them: nothing moves."""
    found = list(
        db.scalars(
            select(Thread.id)
            .join(Forum, Forum.id == Thread.forum_id)
            .where(Thread.id.in_(ids), Forum.brand_id == brand.id)
            .order_by(Thread.id)
            .with_for_update(of=Thread)
        )
    )
    missing = sorted(set(ids) - set(found))
    if missing:
        shown = ", ".join(str(thread_id) for thread_id in missing[:10])
        raise FormErrors({"thread_ids": _("Not threads of this brand: %(ids)s.") % {"ids": shown}})
    return list(
        db.scalars(
            select(Thread)
            .where(Thread.id.in_(found))
            .options(selectinload(Thread.forum))
            .order_by(Thread.id)
            .execution_options(populate_existing=True)
        )
    )


def do_move_threads(
    db: Session, actor: Actor, brand: Brand, data: ThreadMoveIn, *, ip: str | None = None
) -> int:
    """Move the threads into one forum of the same brand; how many moved (those already there
    stay). Checks everything first: a FormErrors moves none."""
    ensure_brand_admin(actor, brand.id)
    target = _target_forum(db, brand, data.forum)
    ids = sorted(set(data.thread_ids))
    moving = [thread for thread in _locked_threads(db, brand, ids) if thread.forum_id != target.id]
    # Per forum: (threads, posts) leaving (negative) or arriving; visible threads only count.
    deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    latest = None
    for thread in moving:
        source = thread.forum
        if thread.visibility == Visibility.VISIBLE:
            posts = 1 + thread.reply_count
            deltas[source.id][0] -= 1
            deltas[source.id][1] -= posts
            deltas[target.id][0] += 1
            deltas[target.id][1] += posts
            if thread.last_activity_at and (latest is None or thread.last_activity_at > latest):
                latest = thread.last_activity_at
        thread.forum_id = target.id
        record(
            db, actor, "thread.moved", ("thread", thread.id),
            before={"forum": source.slug}, after={"forum": target.slug}, ip=ip,
            reason="bulk move",
        )  # fmt: skip
        indexing.thread_changed(db, thread.id)
    for forum_id, (thread_delta, post_delta) in sorted(deltas.items()):
        arriving = forum_id == target.id and latest is not None
        counters.add_at_commit(
            db, Forum, forum_id, thread_count=thread_delta, post_count=post_delta,
            latest={"last_activity_at": latest} if arriving and latest else None,
        )  # fmt: skip
    db.flush()
    for thread in moving:
        db.expire(thread, ["forum"])
    return len(moving)
