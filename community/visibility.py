"""Moving posts between visible, pending, hidden and deleted, with every counter kept right.

Counters (a forum's threads and posts, a thread's answers, a tag's threads) only ever count
visible content, so a post held for moderation or hidden by flags costs nothing until it is
shown, and showing it later counts it then. A question carries its thread: hiding a question
hides the thread. Content that becomes visible for the first time is "published": mentions,
answer and watcher notifications go out then, not while it waits in a queue.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core import counters, events, indexing, notifications, outbox
from community.core.clock import utcnow
from community.core.db import insert_now
from community.core.models import (
    Forum,
    Notification,
    Post,
    Tag,
    Thread,
    ThreadStatus,
    User,
    Visibility,
)
from community.mentions import find_mentions
from community.reputation import clear_acceptance

ANNOUNCE_EVENT = "notify.published"


def count_tags(tags: list[Tag], delta: int) -> None:
    for tag in tags:
        tag.thread_count = Tag.thread_count + delta


def recompute_status(thread: Thread, *, has_answers: bool | None = None) -> None:
    """open -> answered -> solved, leaving states other workflows own (closed, escalated).
    `has_answers`: whether visible answers remain, when the caller knows (else reply_count)."""
    if thread.accepted_post_id is not None:
        status = ThreadStatus.SOLVED
    elif thread.status in (ThreadStatus.CLOSED, ThreadStatus.ESCALATED, ThreadStatus.LOCKED):
        return
    else:
        answered = thread.reply_count > 0 if has_answers is None else has_answers
        status = ThreadStatus.ANSWERED if answered else ThreadStatus.OPEN
    if thread.status != status:  # an unchanged thread stays out of the flush
        thread.status = status


def _count_question(db: Session, thread: Thread, delta: int) -> None:
    # The forum's row is every asker's and answerer's: counted at commit (community.core.counters).
    counters.add_at_commit(
        db,
        Forum,
        thread.forum_id,
        thread_count=delta,
        post_count=delta * (1 + thread.reply_count),
        latest={"last_activity_at": thread.last_activity_at} if delta > 0 else None,
    )
    count_tags(thread.tags, delta)


def _count_answer(db: Session, thread: Thread, post: Post, delta: int) -> None:
    if delta > 0:
        # The thread's row is every answerer's, as the forum's is: counted at commit.
        counters.add_at_commit(
            db, Thread, thread.id, reply_count=delta, latest={"last_activity_at": post.created_at}
        )
    else:
        thread.reply_count = Thread.reply_count + delta  # read back below
    if thread.visibility == Visibility.VISIBLE:
        counters.add_at_commit(
            db,
            Forum,
            thread.forum_id,
            post_count=delta,
            latest={"last_activity_at": utcnow()} if delta > 0 else None,
        )
    if delta > 0:
        if thread.first_response_at is None and post.author_id != thread.author_id:
            thread.first_response_at = post.created_at
        # This answer counts now, so the thread has one: no need to read the total back.
        recompute_status(thread, has_answers=True)
        return
    if thread.accepted_post_id == post.id:
        clear_acceptance(db, thread)
    db.flush()
    db.refresh(thread, ["reply_count"])
    recompute_status(thread)


def set_visibility(db: Session, post: Post, to: Visibility) -> bool:
    """Change a post's (and, for a question, its thread's) visibility. True if it changed."""
    thread = post.thread
    if post.is_question:
        before = thread.visibility
        if before == to and post.visibility == to:
            return False
        thread.visibility = to
        post.visibility = to
        if (before == Visibility.VISIBLE) != (to == Visibility.VISIBLE):
            _count_question(db, thread, 1 if to == Visibility.VISIBLE else -1)
    else:
        before = post.visibility
        if before == to:
            return False
        post.visibility = to
        if (before == Visibility.VISIBLE) != (to == Visibility.VISIBLE):
            _count_answer(db, thread, post, 1 if to == Visibility.VISIBLE else -1)
    deleted = to == Visibility.DELETED
    if deleted or post.deleted_at is not None:
        post.deleted_at = utcnow() if deleted else None
    indexing.thread_changed(db, thread.id)
    if post in db.new:
        insert_now(db, post)  # a new post, stored as it becomes visible: one plain INSERT
    db.flush()
    return True


def publish(db: Session, post: Post, *, author: User) -> None:
    """The side effects of content becoming public: counters (if not yet counted) and
    notifications. Called at creation for content that needs no review, or on approval.

    Who hears of it (mentioned people, the asker, the thread's watchers, however many) is worked
    out by the worker (`announce`): the writer's transaction records one outbox row."""
    set_visibility(db, post, Visibility.VISIBLE)
    # Keyed: written at commit with the other keyed events, and one announcement covers a post
    # published twice before the worker got to it.
    outbox.enqueue(
        db,
        ANNOUNCE_EVENT,
        {"post_id": post.id, "actor_id": author.id},
        dedupe_key=f"post:{post.id}",
    )
    events.post_published.send(db, post)


def announce(db: Session, event: outbox.OutboxEvent) -> None:
    """The worker's side of publish: the notifications of a post that became public, unless it
    is no longer public. Each person hears of a post once, also when an edit already told them
    of a mention."""
    post = db.get(Post, event.payload.get("post_id"))
    if post is None or post.visibility != Visibility.VISIBLE:
        return
    thread = post.thread
    if thread.visibility != Visibility.VISIBLE:
        return
    events.post_announced.send(db, post)
    author = db.get(User, event.payload.get("actor_id")) or post.author
    if author is None:
        return
    told = set(db.scalars(select(Notification.user_id).where(Notification.post_id == post.id)))
    mentioned = [user for user in find_mentions(db, post.body_source) if user.id not in told]
    if post.is_question:
        notifications.notify_mentions(db, mentioned, actor=author, thread=thread, post=post)
    else:
        notifications.notify_new_post(
            db, thread=thread, post=post, author=author, mentioned=mentioned, skip=told
        )


def question_of(db: Session, thread: Thread) -> Post:
    return db.scalars(
        select(Post).where(Post.thread_id == thread.id, Post.is_question.is_(True))
    ).one()
