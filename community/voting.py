"""Votes, accepted answers and "this helped me too" marks.

Counts stay exact under concurrency: every change to a post's votes first locks that post's row
(SELECT ... FOR UPDATE on PostgreSQL; on SQLite the request already holds the single write lock),
then reads the voter's previous vote and applies the difference. A repeated submission therefore
finds its own earlier vote and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from community import reputation
from community.core import events, indexing, notifications
from community.core.errors import Conflict, NotFound, PermissionDenied
from community.core.i18n import gettext as _
from community.core.models import HelpfulMark, Post, Thread, User, Visibility, Vote
from community.core.policy import (
    ThreadPermissions,
    ensure_can_participate,
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


def _locked_post(db: Session, post_id: int) -> Post:
    post = db.scalar(
        select(Post)
        .where(Post.id == post_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if post is None:
        raise NotFound()
    return post


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


def cast_vote(db: Session, voter: User, post_id: int, value: int) -> VoteResult:
    """Set the voter's vote on a post to +1, -1 or 0 (retract). Idempotent."""
    if value not in (-1, 0, 1):
        raise PermissionDenied()
    ensure_can_participate(voter)
    post = _locked_post(db, post_id)
    ensure_post_visible(voter, post)
    if post.visibility != Visibility.VISIBLE:
        raise NotFound()
    if post.author_id == voter.id:
        raise PermissionDenied(_("You cannot vote on your own post."))
    thread = post.thread
    ensure_thread_open_for(voter, thread)
    existing = db.scalar(select(Vote).where(Vote.user_id == voter.id, Vote.post_id == post.id))
    old = existing.value if existing else 0
    if value == old:
        return VoteResult(post=post, my_vote=old)
    if value == 0 and existing is not None:
        db.delete(existing)
    elif existing is not None:
        existing.value = value
    else:
        try:
            with db.begin_nested():
                db.add(Vote(user_id=voter.id, post_id=post.id, value=value))
        except IntegrityError as exc:  # only without the row lock, e.g. a foreign writer
            raise Conflict() from exc
    old_score = post.score
    post.upvotes += (value == 1) - (old == 1)
    post.downvotes += (value == -1) - (old == -1)
    post.score += value - old
    if post.is_question:
        thread.score = Thread.score + (value - old)
    reputation.award(
        db,
        post.author_id,
        reputation.for_vote(value, is_question=post.is_question)
        - reputation.for_vote(old, is_question=post.is_question),
        "vote",
        post_id=post.id,
        thread_id=thread.id,
    )
    for milestone in MILESTONES:
        if old_score < milestone <= post.score:
            notifications.notify_milestone(db, post=post, milestone=milestone)
    indexing.thread_changed(db, thread.id)
    db.flush()
    return VoteResult(post=post, my_vote=value)


def accept(db: Session, actor: User, post_id: int) -> Thread:
    """Mark an answer as the accepted one (replacing any earlier choice)."""
    ensure_can_participate(actor)
    post = db.get(Post, post_id)
    if post is None:
        raise NotFound()
    thread = _locked_thread(db, post.thread_id)
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
    elif not helpful and existing is not None:
        db.delete(existing)
        thread.helpful_count -= 1
    indexing.thread_changed(db, thread.id)
    db.flush()
    return thread
