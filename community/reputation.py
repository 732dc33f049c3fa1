"""Reputation: points people earn when others find their posts useful.

+10 per upvote on an answer, +5 per upvote on a question, -2 per downvote received, +15 for an
accepted answer and +2 to whoever accepted it (nothing for accepting one's own answer). Every
change is an event row (the history shown on profiles) plus an SQL increment of the total, so
concurrent changes add up; the increment is made at commit (community.core.counters), since a
popular author's row would otherwise stay locked through every vote's request.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from community.core import counters
from community.core.activity_models import ReputationEvent
from community.core.clock import utcnow
from community.core.models import Post, Thread, User

UPVOTE_ANSWER = 10
UPVOTE_QUESTION = 5
DOWNVOTE = -2
ACCEPTED = 15
ACCEPTER = 2


def for_vote(value: int, *, is_question: bool) -> int:
    if value > 0:
        return UPVOTE_QUESTION if is_question else UPVOTE_ANSWER
    if value < 0:
        return DOWNVOTE
    return 0


_RECORD_EVENT = insert(cast(Table, ReputationEvent.__table__))


def award(
    db: Session,
    user_id: int | None,
    amount: int,
    reason: str,
    *,
    post_id: int | None = None,
    thread_id: int | None = None,
) -> None:
    if user_id is None or amount == 0:
        return
    counters.add_at_commit(db, User, user_id, reputation=amount)
    # A plain INSERT (no unit of work to sort out for one row nobody reads back in the request).
    db.execute(
        _RECORD_EVENT,
        {"user_id": user_id, "amount": amount, "reason": reason, "post_id": post_id,
         "thread_id": thread_id, "created_at": utcnow()},
    )  # fmt: skip


def clear_acceptance(db: Session, thread: Thread) -> None:
    """Undo the current acceptance and the reputation it gave (callers recompute the status)."""
    if thread.accepted_post_id is None:
        return
    answer_author = db.scalar(select(Post.author_id).where(Post.id == thread.accepted_post_id))
    accepter = thread.accepted_by_id
    if answer_author is not None and answer_author != accepter:
        award(
            db, answer_author, -ACCEPTED, "unaccepted",
            post_id=thread.accepted_post_id, thread_id=thread.id,
        )  # fmt: skip
        award(db, accepter, -ACCEPTER, "unaccepted_by_you", thread_id=thread.id)
    thread.accepted_post_id = None
    thread.accepted_by_id = None


def history(db: Session, user_id: int, *, limit: int = 50) -> list[ReputationEvent]:
    return list(
        db.scalars(
            select(ReputationEvent)
            .where(ReputationEvent.user_id == user_id)
            .order_by(ReputationEvent.id.desc())
            .limit(limit)
        )
    )
