"""Votes, accepted answers and "this helped me too" marks.

A vote takes no lock on the post: counts stay exact under concurrency because the voter's own
vote row decides what changed (one INSERT ... ON CONFLICT DO NOTHING, UPDATE or DELETE ...
RETURNING, each atomic on that row, so a repeated submission finds its own earlier vote and
changes nothing) and the post's counters move by SQL increments, the last statements before
the commit. Votes from different people on one post therefore never wait for each other, apart
from that final increment. Accepting and helpful marks lock the thread's row
(SELECT ... FOR UPDATE on PostgreSQL; on SQLite the request already holds the single write lock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session, contains_eager
from sqlalchemy.orm.attributes import set_committed_value

from community import reputation
from community.core import events, indexing, notifications
from community.core.activity_models import HelpfulMark, Vote
from community.core.db import insert_missing
from community.core.errors import Conflict, NotFound, PermissionDenied
from community.core.i18n import gettext as _
from community.core.models import Post, Thread, User, Visibility
from community.core.policy import (
    ThreadPermissions,
    ensure_can_participate,
    ensure_forum_readable,
    ensure_post_visible,
    ensure_thread_open_for,
    ensure_thread_visible,
)
from community.visibility import recompute_status

MILESTONES = (1, 5, 10, 25, 50, 100, 250, 500, 1000)


@dataclass(frozen=True, slots=True)
class VoteResult:
    post: Post
    my_vote: int


def _locked_thread(db: Session, thread_id: int) -> Thread:
    thread = db.scalar(
        select(Thread)
        .where(Thread.id == thread_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if thread is None:
        raise NotFound()
    return thread


# Every vote sends these two; built once, as building them costs more than running them.
_POST_WITH_VOTE = (
    select(Post, Vote.value)
    .join(Post.thread)
    .join(Thread.forum)  # who may read it (community.core.policy.can_read_forum)
    .options(contains_eager(Post.thread).contains_eager(Thread.forum))
    .outerjoin(Vote, (Vote.post_id == Post.id) & (Vote.user_id == bindparam("voter_id")))
    .where(Post.id == bindparam("post_id"))
    .execution_options(populate_existing=True)
)
_POSTS = cast(Table, Post.__table__)  # a plain UPDATE, without the ORM's bulk-update machinery
_COUNT_VOTE = (
    update(_POSTS)
    .where(_POSTS.c.id == bindparam("post_id"))
    .values(
        score=_POSTS.c.score + bindparam("score_delta"),
        upvotes=_POSTS.c.upvotes + bindparam("up_delta"),
        downvotes=_POSTS.c.downvotes + bindparam("down_delta"),
    )
    .returning(_POSTS.c.score, _POSTS.c.upvotes, _POSTS.c.downvotes)
)


# A changed or retracted vote: on the table (no Vote object is loaded on this path, so the ORM
# has nothing to keep in step), each only if the vote is still what was read.
_VOTES = cast(Table, Vote.__table__)
_THIS_VOTE = (_VOTES.c.user_id == bindparam("voter_id")) & (
    _VOTES.c.post_id == bindparam("voted_post_id")
)
_RETRACT_VOTE = delete(_VOTES).where(_THIS_VOTE).returning(_VOTES.c.value)
_FLIP_VOTE = (
    update(_VOTES)
    .where(_THIS_VOTE, _VOTES.c.value == bindparam("seen"))
    .values(value=bindparam("new_value"))
    .returning(_VOTES.c.id)
)


def _post_with_my_vote(db: Session, voter: User, post_id: int) -> tuple[Post, int]:
    """The post (its thread loaded with it) and the voter's vote as committed a moment ago:
    one statement, no lock."""
    row = db.execute(_POST_WITH_VOTE, {"voter_id": voter.id, "post_id": post_id}).one_or_none()
    if row is None:
        raise NotFound()
    post, value = row
    return post, value or 0


def _swap_vote(db: Session, voter_id: int, post_id: int, value: int, seen: int) -> int:
    """Make the voter's vote `value` (0: none) and return what it was. `seen` is the vote read
    without a lock: each statement below only acts if it still holds, atomically on the vote's
    row; if the same voter changed it in between (a double submission), the locked path
    decides."""
    if value == seen:
        return seen
    if seen == 0:
        if insert_missing(db, Vote, [{"user_id": voter_id, "post_id": post_id, "value": value}]):
            return 0
        return _swap_vote_locked(db, voter_id, post_id, value)
    params = {"voter_id": voter_id, "voted_post_id": post_id}
    if value == 0:
        return db.scalar(_RETRACT_VOTE, params) or 0
    if db.scalar(_FLIP_VOTE, {**params, "seen": seen, "new_value": value}) is not None:
        return seen
    return _swap_vote_locked(db, voter_id, post_id, value)


def _swap_vote_locked(db: Session, voter_id: int, post_id: int, value: int) -> int:
    existing = db.scalar(
        select(Vote)
        .where(Vote.user_id == voter_id, Vote.post_id == post_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    old = existing.value if existing else 0
    if value == old:
        return old
    if existing is None:
        if not insert_missing(
            db, Vote, [{"user_id": voter_id, "post_id": post_id, "value": value}]
        ):
            raise Conflict()  # inserted and committed by yet another request in between
    elif value == 0:
        db.delete(existing)
    else:
        existing.value = value
    return old


def _count(db: Session, post: Post, old: int, value: int) -> int:
    """Move the post's counters by SQL increment; its score before this vote."""
    score, upvotes, downvotes = db.execute(
        _COUNT_VOTE,
        {
            "post_id": post.id,
            "score_delta": value - old,
            "up_delta": (value == 1) - (old == 1),
            "down_delta": (value == -1) - (old == -1),
        },
    ).one()
    for name, total in (("score", score), ("upvotes", upvotes), ("downvotes", downvotes)):
        set_committed_value(post, name, total)
    return int(score) - (value - old)


def cast_vote(db: Session, voter: User, post_id: int, value: int) -> VoteResult:
    """Set the voter's vote on a post to +1, -1 or 0 (retract). Idempotent."""
    if value not in (-1, 0, 1):
        raise PermissionDenied()
    ensure_can_participate(voter)
    post, seen = _post_with_my_vote(db, voter, post_id)
    ensure_forum_readable(voter, post.thread.forum)
    ensure_post_visible(voter, post)
    if post.visibility != Visibility.VISIBLE:
        raise NotFound()
    if post.author_id == voter.id:
        raise PermissionDenied(_("You cannot vote on your own post."))
    thread = post.thread
    ensure_thread_open_for(voter, thread)
    old = _swap_vote(db, voter.id, post.id, value, seen)
    if value == old:
        return VoteResult(post=post, my_vote=old)
    reputation.award(
        db,
        post.author_id,
        reputation.for_vote(value, is_question=post.is_question)
        - reputation.for_vote(old, is_question=post.is_question),
        "vote",
        post_id=post.id,
        thread_id=thread.id,
    )
    if post.is_question:
        thread.score = Thread.score + (value - old)
    # Near the end: the post's row stays locked from here to the commit.
    old_score = _count(db, post, old, value)
    indexing.thread_changed(db, thread.id)
    for milestone in MILESTONES:
        if old_score < milestone <= post.score:
            notifications.milestone_reached(db, post.id, milestone)
    if value == 1 and not post.is_question:
        events.answer_upvoted.send(db, post)
    return VoteResult(post=post, my_vote=value)


def accept(db: Session, actor: User, post_id: int) -> Thread:
    """Mark an answer as the accepted one (replacing any earlier choice)."""
    ensure_can_participate(actor)
    post = db.get(Post, post_id)
    if post is None:
        raise NotFound()
    thread = _locked_thread(db, post.thread_id)
    ensure_forum_readable(actor, thread.forum)
    ensure_post_visible(actor, post)
    if post.visibility != Visibility.VISIBLE or post.is_question:
        raise PermissionDenied(_("Only a visible answer can be accepted."))
    if not ThreadPermissions(actor, thread).can_accept:
        ensure_thread_open_for(actor, thread)
        raise PermissionDenied(_("Only the person who asked, or the support team, can accept."))
    if thread.accepted_post_id == post.id:
        return thread
    reputation.clear_acceptance(db, thread)
    thread.accepted_post_id = post.id
    thread.accepted_by_id = actor.id
    recompute_status(thread)
    if post.author_id != actor.id:
        reputation.award(db, post.author_id, reputation.ACCEPTED, "accepted", post_id=post.id,
                         thread_id=thread.id)  # fmt: skip
        reputation.award(db, actor.id, reputation.ACCEPTER, "accepted_an_answer",
                         thread_id=thread.id)  # fmt: skip
        notifications.notify_accepted(db, post=post, actor=actor)
    indexing.thread_changed(db, thread.id)
    events.answer_accepted.send(db, events.Acceptance(thread=thread, post=post))
    db.flush()
    return thread


def unaccept(db: Session, actor: User, thread_id: int) -> Thread:
    ensure_can_participate(actor)
    thread = _locked_thread(db, thread_id)
    ensure_forum_readable(actor, thread.forum)
    ensure_thread_visible(actor, thread)
    if not ThreadPermissions(actor, thread).can_accept:
        ensure_thread_open_for(actor, thread)
        raise PermissionDenied(_("Only the person who asked, or the support team, can accept."))
    reputation.clear_acceptance(db, thread)
    recompute_status(thread)
    indexing.thread_changed(db, thread.id)
    db.flush()
    return thread


def set_helpful(db: Session, user: User, thread_id: int, *, helpful: bool) -> Thread:
    """ "This helped me too": one per person and thread, never on one's own thread."""
    ensure_can_participate(user)
    thread = _locked_thread(db, thread_id)
    ensure_forum_readable(user, thread.forum)
    ensure_thread_visible(user, thread)
    if thread.visibility != Visibility.VISIBLE:
        raise NotFound()
    if thread.author_id == user.id:
        raise PermissionDenied(_("You cannot mark your own thread as helpful."))
    existing = db.scalar(
        select(HelpfulMark).where(
            HelpfulMark.user_id == user.id, HelpfulMark.thread_id == thread.id
        )
    )
    if helpful and existing is None:
        db.add(HelpfulMark(user_id=user.id, thread_id=thread.id))
        thread.helpful_count += 1
        events.helpful_marked.send(db, thread)
    elif not helpful and existing is not None:
        db.delete(existing)
        thread.helpful_count -= 1
    indexing.thread_changed(db, thread.id)
    db.flush()
    return thread
