"""Promotion: solved, visible threads whose usefulness crosses the brand's threshold become
community solutions in the KB; the strongest are suggested to agents as article material.

This is the KB's own step, run explicitly: the worker's `thread.changed` handler (kb.tasks)
calls `refresh` and only then indexes what it decided; `community rescore` and the importer call
`refresh`/`apply` the same way. Building search documents never promotes anything.

A solution is withdrawn when its thread stops qualifying (hidden, deleted, no accepted answer,
or its score falls clearly below the threshold: a 5-point margin keeps a thread hovering at the
threshold from flickering in and out of the KB).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from community.core.clock import utcnow
from community.core.models import Forum, Post, Thread, ThreadStatus, Visibility
from kb.models import CandidateStatus, PromotionCandidate, Solution
from kb.scoring import Score, rescore

HYSTERESIS = 5.0


@dataclass(frozen=True, slots=True)
class PromotionChange:
    solution: Solution | None
    solution_live: bool


def refresh(db: Session, thread_ids: Sequence[int]) -> dict[int, PromotionChange]:
    """Rescore the threads and promote, keep or withdraw each one's community solution (a
    thread that no longer exists is skipped). Flushes; the caller commits."""
    threads = db.scalars(
        select(Thread)
        .where(Thread.id.in_(thread_ids))
        .options(selectinload(Thread.forum).selectinload(Forum.brand))
    )
    return {thread.id: apply(db, thread, rescore(db, thread)) for thread in threads}


def _accepted_visible(db: Session, thread: Thread) -> bool:
    if thread.accepted_post_id is None:
        return False
    visibility = db.scalar(select(Post.visibility).where(Post.id == thread.accepted_post_id))
    return visibility == Visibility.VISIBLE


def apply(db: Session, thread: Thread, score: Score, *, flush: bool = True) -> PromotionChange:
    """Promote, keep or withdraw the thread's community solution for its new score. Bulk
    callers (the importer) pass flush=False and flush once for a whole batch."""
    brand = thread.forum.brand
    solution = db.scalar(select(Solution).where(Solution.thread_id == thread.id))
    eligible = (
        thread.visibility == Visibility.VISIBLE
        and thread.status == ThreadStatus.SOLVED
        and _accepted_visible(db, thread)
    )
    live = solution is not None and solution.withdrawn_at is None
    threshold = brand.solution_threshold
    if eligible and not live and score.value >= threshold:
        if solution is None:
            solution = Solution(thread_id=thread.id, brand_id=brand.id, score_at_promotion=0.0)
            db.add(solution)
        solution.score_at_promotion = score.value
        solution.promoted_at = utcnow()
        solution.withdrawn_at = None
        live = True
    elif live and (not eligible or score.value < threshold - HYSTERESIS):
        assert solution is not None
        solution.withdrawn_at = utcnow()
        live = False
    if live:
        _suggest_article(db, thread, score, brand_threshold=brand.article_threshold)
    elif thread.merged_into_id is not None:
        _drop_suggestion(db, thread)
    if flush:
        db.flush()
    return PromotionChange(solution=solution, solution_live=live)


def _suggest_article(db: Session, thread: Thread, score: Score, *, brand_threshold: float) -> None:
    candidate = db.scalar(
        select(PromotionCandidate).where(PromotionCandidate.thread_id == thread.id)
    )
    reasons: dict[str, object] = dict(score.reasons()) | {
        "votes": _best_answer_votes(db, thread),
        "helped_me_too": thread.helpful_count,
        "views": thread.view_count,
    }
    if candidate is None:
        if score.value < brand_threshold:
            return
        db.add(
            PromotionCandidate(
                thread_id=thread.id,
                brand_id=thread.forum.brand_id,
                score=score.value,
                reasons=reasons,
                status=CandidateStatus.SUGGESTED,
            )
        )
        return
    candidate.score = score.value
    candidate.reasons = reasons
    candidate.updated_at = utcnow()


def _drop_suggestion(db: Session, thread: Thread) -> None:
    """A merged thread is only a pointer now (its answers moved to the target, which earns its
    own suggestion): it leaves the agents' article queue for good."""
    candidate = db.scalar(
        select(PromotionCandidate).where(
            PromotionCandidate.thread_id == thread.id,
            PromotionCandidate.status == CandidateStatus.SUGGESTED,
        )
    )
    if candidate is not None:
        candidate.status = CandidateStatus.DISMISSED
        candidate.reasons = dict(candidate.reasons) | {"merged_into": thread.merged_into_id}
        candidate.updated_at = utcnow()


def _best_answer_votes(db: Session, thread: Thread) -> dict[str, int]:
    row = db.execute(
        select(Post.upvotes, Post.downvotes)
        .where(
            Post.thread_id == thread.id,
            Post.is_question.is_(False),
            Post.visibility == Visibility.VISIBLE,
        )
        .order_by((Post.upvotes - Post.downvotes).desc())
        .limit(1)
    ).first()
    return {"up": row[0], "down": row[1]} if row else {"up": 0, "down": 0}
