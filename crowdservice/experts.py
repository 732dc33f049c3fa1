"""Expert routing: when a question waits too long, ask the people most likely to answer it.

Candidates are those with the best recent record where the question lives: its tags first,
then (for places left) its forum. Over the last 90 days, each accepted answer counts
ACCEPTED_WEIGHT and each other visible answer counts 1; ties go to reputation. Nobody is invited
who asked the question, opted out, is on vacation, deactivated, suspended or silenced, was
already invited to this thread, or already got the brand's daily number of invitations
(ServicePolicy.expert_daily_invitations, default 3) in the last 24 hours.

`expert_stats` measures how often invited experts answer, and answer in time (before the
thread's first-response due time): `on_post_announced` records each answer, by the worker a
moment after it is published (the answer's own transaction does not wait for it), with the
answer's time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from community.core.models import (
    Forum,
    NotificationKind,
    Post,
    Thread,
    User,
    Visibility,
    thread_tags,
)
from community.core.notifications import notify
from crowdservice import sla
from crowdservice.models import ExpertInvitation

ACCEPTED_WEIGHT = 10
ANSWER_WEIGHT = 1
RECORD_WINDOW = timedelta(days=90)
DAILY_WINDOW = timedelta(hours=24)


def _record_in(
    db: Session, thread: Thread, scope: ColumnElement[bool], *, now: datetime, cap: int,
    exclude: set[int], limit: int,
) -> list[User]:  # fmt: skip
    """The best available experts by their answers in threads matching `scope`."""
    points = case((Thread.accepted_post_id == Post.id, ACCEPTED_WEIGHT), else_=ANSWER_WEIGHT)
    record = (
        select(Post.author_id.label("user_id"), func.sum(points).label("score"))
        .join(Thread, Thread.id == Post.thread_id)
        .where(
            scope,
            Thread.id != thread.id,
            Thread.visibility == Visibility.VISIBLE,
            Post.is_question.is_(False),
            Post.visibility == Visibility.VISIBLE,
            Post.author_id.is_not(None),
            Post.created_at >= now - RECORD_WINDOW,
        )
        .group_by(Post.author_id)
        .subquery()
    )
    invited_today = (
        select(func.count())
        .select_from(ExpertInvitation)
        .where(
            ExpertInvitation.user_id == User.id,
            ExpertInvitation.invited_at > now - DAILY_WINDOW,
        )
        .scalar_subquery()
    )
    already_invited = (
        select(ExpertInvitation.id)
        .where(ExpertInvitation.user_id == User.id, ExpertInvitation.thread_id == thread.id)
        .exists()
    )
    statement = (
        select(User)
        .join(record, record.c.user_id == User.id)
        .where(
            User.expert_opt_out.is_(False),
            User.deactivated_at.is_(None),
            or_(User.suspended_until.is_(None), User.suspended_until <= now),
            or_(User.silenced_until.is_(None), User.silenced_until <= now),
            or_(User.vacation_until.is_(None), User.vacation_until <= now),
            invited_today < cap,
            ~already_invited,
        )
        .order_by(record.c.score.desc(), User.reputation.desc(), User.id)
        .limit(limit)
    )
    if thread.author_id is not None:
        statement = statement.where(User.id != thread.author_id)
    if exclude:
        statement = statement.where(User.id.not_in(exclude))
    return list(db.scalars(statement))


def find_experts(db: Session, thread: Thread, *, now: datetime, limit: int = 3) -> list[User]:
    """Who would be invited to this thread now, best first."""
    cap = sla.policy_for(db, thread.forum.brand_id).expert_daily_invitations
    cap = sla.DEFAULT_EXPERT_DAILY_INVITATIONS if cap is None else cap
    if limit <= 0 or cap <= 0:
        return []
    chosen: list[User] = []
    tag_ids = [tag.id for tag in thread.tags]
    if tag_ids:
        tagged = Thread.id.in_(
            select(thread_tags.c.thread_id).where(thread_tags.c.tag_id.in_(tag_ids))
        )
        chosen += _record_in(db, thread, tagged, now=now, cap=cap, exclude=set(), limit=limit)
    if len(chosen) < limit:
        chosen += _record_in(
            db, thread, Thread.forum_id == thread.forum_id, now=now, cap=cap,
            exclude={user.id for user in chosen}, limit=limit - len(chosen),
        )  # fmt: skip
    return chosen


def invite_experts(
    db: Session, thread: Thread, *, now: datetime, limit: int = 3
) -> list[ExpertInvitation]:
    """Invite up to `limit` experts to answer the thread and notify them. Flushes."""
    experts = find_experts(db, thread, now=now, limit=limit)
    if not experts:
        return []
    invitations = [
        ExpertInvitation(thread_id=thread.id, user_id=user.id, invited_at=now) for user in experts
    ]
    try:
        with db.begin_nested():
            db.add_all(invitations)
            db.flush()
    except IntegrityError:
        return []  # another worker invited them to this thread first
    for user in experts:
        notify(db, user, NotificationKind.EXPERT_INVITATION, actor=None, thread=thread)
    return invitations


def expert_stats(db: Session, brand_id: int, since: datetime) -> dict[str, Any]:
    """Invitations sent since `since` in the brand, how many were answered, how many in time."""
    in_time = case((ExpertInvitation.answered_in_time.is_(True), 1), else_=0)
    invited, answered, answered_in_time = db.execute(
        select(
            func.count(ExpertInvitation.id),
            func.count(ExpertInvitation.answered_at),
            func.coalesce(func.sum(in_time), 0),
        )
        .join(Thread, Thread.id == ExpertInvitation.thread_id)
        .join(Forum, Forum.id == Thread.forum_id)
        .where(Forum.brand_id == brand_id, ExpertInvitation.invited_at >= since)
    ).one()
    invited, answered, answered_in_time = int(invited), int(answered), int(answered_in_time)
    return {
        "invited": invited,
        "answered": answered,
        "answered_in_time": answered_in_time,
        "answer_rate": answered / invited if invited else 0.0,
        "rate": answered_in_time / invited if invited else 0.0,
    }


# The worker looks for one after every published answer; built once.
_OPEN_INVITATION = select(ExpertInvitation).where(
    ExpertInvitation.thread_id == bindparam("thread_id"),
    ExpertInvitation.user_id == bindparam("user_id"),
    ExpertInvitation.answered_at.is_(None),
)


def on_post_announced(db: Session, post: Post) -> None:
    """A visible answer was announced: if its author was invited to the thread, the invitation
    is answered, in time if before the thread's first-response due time."""
    if post.is_question or post.author_id is None:
        return
    invitation = db.scalar(
        _OPEN_INVITATION, {"thread_id": post.thread_id, "user_id": post.author_id}
    )
    if invitation is None:
        return
    invitation.answered_at = post.created_at
    due = post.thread.first_response_due_at
    invitation.answered_in_time = due is None or post.created_at <= due
