"""After the parts: accepted answers, then every counter recounted from the rows themselves.

The parts insert rows without touching any counter; rather than incrementing them row by row,
a few UPDATEs over the forum's threads and the brand's tags set them once, as the app would
have left them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, case, func, select, update
from sqlalchemy.orm import Session, aliased

from community.core.import_models import ImportKey
from community.core.models import Forum, Thread, ThreadStatus, Visibility, thread_tags
from community.importing.bulk import POSTS, TAGS, THREADS, batches
from community.importing.keys import RunKeys


def accept_answers(db: Session, keys: RunKeys) -> None:
    """The source's accepted answers, on threads without one where the question or the answer
    is this run's own (an answer can arrive in a later dump than its question)."""
    question, answer = aliased(ImportKey), aliased(ImportKey)
    pairs: list[tuple[int, int]] = [
        (int(row[0]), int(row[1]))
        for row in db.execute(
            select(question.local_id, answer.local_id)
            .join(
                answer,
                and_(
                    answer.source == question.source,
                    answer.kind == "answer",
                    answer.external_id == question.ref_external_id,
                ),
            )
            .join(Thread, Thread.id == question.local_id)
            .where(
                question.source == keys.source,
                question.kind == "question",
                Thread.accepted_post_id.is_(None),
                question.run_id.in_(keys.own_runs) | answer.run_id.in_(keys.own_runs),
            )
        )
    ]
    table = THREADS
    for chunk in batches(pairs, 1000):
        db.execute(
            update(table)
            .where(table.c.id == bindparam("thread"))
            .values(accepted_post_id=bindparam("post"), accepted_by_id=table.c.author_id),
            [{"thread": thread_id, "post": post_id} for thread_id, post_id in chunk],
        )


def recount(db: Session, forum_id: int, brand_id: int) -> None:
    """Counters from the rows themselves, for the forum and the brand's tags."""
    threads, posts = THREADS, POSTS
    visible_answers = (
        select(func.count())
        .where(
            posts.c.thread_id == threads.c.id,
            posts.c.is_question.is_(False),
            posts.c.visibility == Visibility.VISIBLE.value,
        )
        .scalar_subquery()
    )
    db.execute(
        update(threads).where(threads.c.forum_id == forum_id).values(reply_count=visible_answers)
    )
    first_response = (
        select(func.min(posts.c.created_at))
        .where(
            posts.c.thread_id == threads.c.id,
            posts.c.is_question.is_(False),
            posts.c.visibility == Visibility.VISIBLE.value,
            (posts.c.author_id.is_(None))
            | (threads.c.author_id.is_(None))
            | (posts.c.author_id != threads.c.author_id),
        )
        .scalar_subquery()
    )
    db.execute(
        update(threads)
        .where(threads.c.forum_id == forum_id, threads.c.first_response_at.is_(None))
        .values(first_response_at=first_response)
    )
    # open -> answered -> solved, as the app does; other states (closed, escalated) stay.
    db.execute(
        update(threads)
        .where(
            threads.c.forum_id == forum_id,
            threads.c.status.in_(
                [
                    ThreadStatus.OPEN.value,
                    ThreadStatus.ANSWERED.value,
                    ThreadStatus.SOLVED.value,
                ]
            ),
        )
        .values(status=_status_expression(threads))
    )
    forum_threads = select(func.count()).where(
        threads.c.forum_id == forum_id,
        threads.c.visibility == Visibility.VISIBLE.value,
    )
    forum_posts = (
        select(func.count())
        .select_from(posts.join(threads, threads.c.id == posts.c.thread_id))
        .where(
            threads.c.forum_id == forum_id,
            threads.c.visibility == Visibility.VISIBLE.value,
            posts.c.visibility == Visibility.VISIBLE.value,
        )
    )
    last_activity = select(func.max(threads.c.last_activity_at)).where(
        threads.c.forum_id == forum_id,
        threads.c.visibility == Visibility.VISIBLE.value,
    )
    db.execute(
        update(Forum)
        .where(Forum.id == forum_id)
        .values(
            thread_count=forum_threads.scalar_subquery(),
            post_count=forum_posts.scalar_subquery(),
            last_activity_at=last_activity.scalar_subquery(),
        )
        .execution_options(synchronize_session=False)
    )
    tags = TAGS
    tagged = (
        select(func.count())
        .select_from(thread_tags.join(threads, threads.c.id == thread_tags.c.thread_id))
        .where(
            thread_tags.c.tag_id == tags.c.id,
            threads.c.visibility == Visibility.VISIBLE.value,
        )
        .scalar_subquery()
    )
    db.execute(update(tags).where(tags.c.brand_id == brand_id).values(thread_count=tagged))


def _status_expression(threads: Any) -> Any:
    return case(
        (threads.c.accepted_post_id.is_not(None), ThreadStatus.SOLVED.value),
        (threads.c.reply_count > 0, ThreadStatus.ANSWERED.value),
        else_=ThreadStatus.OPEN.value,
    )
