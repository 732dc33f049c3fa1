"""Promotion: solved, visible threads whose usefulness crosses the brand's threshold become
community solutions in the KB; the strongest are suggested to agents as article material.

This is the KB's own step, run explicitly: the worker's `thread.changed` handler (kb.tasks)
calls `refresh` and only then indexes what it decided; `community rescore` and the importer call
`refresh` the same way. Building search documents never promotes anything.

A solution is withdrawn when its thread stops qualifying (hidden, deleted, no accepted answer,
or its score falls clearly below the threshold: a 5-point margin keeps a thread hovering at the
threshold from flickering in and out of the KB).

Set-based: whatever the decisions read (the answers' votes, solutions, article candidates, the
accepted answers' visibility) is loaded for the whole batch in a fixed number of statements,
then each thread is decided in Python and the writes go out in one flush. An import of
thousands of solved threads costs a few statements per batch, not four per thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from community.core.clock import utcnow
from community.core.models import Forum, Post, Thread, ThreadStatus, Visibility
from kb.models import CandidateStatus, PromotionCandidate, Solution
from kb.scoring import AnswerRow, Score, answer_rows, inputs_from, score

HYSTERESIS = 5.0


@dataclass(frozen=True, slots=True)
class PromotionChange:
    solution_live: bool
    # Promoted or withdrawn just now: the thread's page shows it (its KB status).
    changed: bool = False


@dataclass(frozen=True, slots=True)
class _Known:
    """What the decisions read besides the threads themselves, for a whole batch."""

    answers: dict[int, list[AnswerRow]]
    solutions: dict[int, Solution]
    candidates: dict[int, PromotionCandidate]
    visible_posts: frozenset[int]  # the accepted answers that are visible
    # Rows to insert, in one statement per table (the ORM would insert them one by one on
    # SQLite, to read back each id).
    new_solutions: list[dict[str, object]] = field(default_factory=list)
    new_candidates: list[dict[str, object]] = field(default_factory=list)

    @classmethod
    def load(cls, db: Session, threads: Sequence[Thread]) -> _Known:
        ids = [thread.id for thread in threads]
        accepted = [t.accepted_post_id for t in threads if t.accepted_post_id is not None]
        visible = (
            db.scalars(
                select(Post.id).where(Post.id.in_(accepted), Post.visibility == Visibility.VISIBLE)
            )
            if accepted
            else ()
        )
        return cls(
            answers=answer_rows(db, ids),
            solutions={
                row.thread_id: row
                for row in db.scalars(select(Solution).where(Solution.thread_id.in_(ids)))
            },
            candidates={
                row.thread_id: row
                for row in db.scalars(
                    select(PromotionCandidate).where(PromotionCandidate.thread_id.in_(ids))
                )
            },
            visible_posts=frozenset(visible),
        )


def refresh(db: Session, thread_ids: Sequence[int]) -> dict[int, PromotionChange]:
    """Rescore the threads and promote, keep or withdraw each one's community solution (a
    thread that no longer exists is skipped). Flushes; the caller commits."""
    threads = list(
        db.scalars(
            select(Thread)
            .where(Thread.id.in_(thread_ids))
            .options(selectinload(Thread.forum).selectinload(Forum.brand))
        )
    )
    if not threads:
        return {}
    known = _Known.load(db, threads)
    changes: dict[int, PromotionChange] = {}
    # The decisions read only what `known` holds: no flush of pending scores before a lookup.
    with db.no_autoflush:
        for thread in threads:
            result = score(inputs_from(thread, known.answers[thread.id]))
            thread.usefulness = round(result.value, 3)
            solution = known.solutions.get(thread.id)
            was_live = solution is not None and solution.withdrawn_at is None
            live = _apply(thread, result, known)
            changes[thread.id] = PromotionChange(solution_live=live, changed=live != was_live)
    db.flush()
    for model, rows in (
        (Solution, known.new_solutions),
        (PromotionCandidate, known.new_candidates),
    ):
        if rows:
            db.execute(insert(model), rows)
    return changes


def _apply(thread: Thread, score: Score, known: _Known) -> bool:
    """Promote, keep or withdraw the thread's community solution for its new score; whether
    it is live now."""
    brand = thread.forum.brand
    solution = known.solutions.get(thread.id)
    eligible = (
        thread.visibility == Visibility.VISIBLE
        and thread.status == ThreadStatus.SOLVED
        and thread.accepted_post_id in known.visible_posts
    )
    live = solution is not None and solution.withdrawn_at is None
    threshold = brand.solution_threshold
    if eligible and not live and score.value >= threshold:
        if solution is None:
            known.new_solutions.append(
                {
                    "thread_id": thread.id,
                    "brand_id": brand.id,
                    "score_at_promotion": score.value,
                    "promoted_at": utcnow(),
                }
            )
        else:
            solution.score_at_promotion = score.value
            solution.promoted_at = utcnow()
            solution.withdrawn_at = None
        live = True
    elif live and (not eligible or score.value < threshold - HYSTERESIS):
        assert solution is not None
        solution.withdrawn_at = utcnow()
        live = False
    if live:
        _suggest_article(thread, score, known, brand_threshold=brand.article_threshold)
    elif thread.merged_into_id is not None:
        _drop_suggestion(thread, known.candidates.get(thread.id))
    return live


def _suggest_article(
    thread: Thread, score: Score, known: _Known, *, brand_threshold: float
) -> None:
    candidate = known.candidates.get(thread.id)
    reasons: dict[str, object] = dict(score.reasons()) | {
        "votes": best_answer_votes(known.answers[thread.id]),
        "helped_me_too": thread.helpful_count,
        "views": thread.view_count,
    }
    if candidate is None:
        if score.value < brand_threshold:
            return
        known.new_candidates.append(
            {
                "thread_id": thread.id,
                "brand_id": thread.forum.brand_id,
                "score": score.value,
                "reasons": reasons,
                "status": CandidateStatus.SUGGESTED,
            }
        )
        return
    candidate.score = score.value
    candidate.reasons = reasons
    candidate.updated_at = utcnow()


def _drop_suggestion(thread: Thread, candidate: PromotionCandidate | None) -> None:
    """A merged thread is only a pointer now (its answers moved to the target, which earns its
    own suggestion): it leaves the agents' article queue for good."""
    if candidate is not None and candidate.status == CandidateStatus.SUGGESTED:
        candidate.status = CandidateStatus.DISMISSED
        candidate.reasons = dict(candidate.reasons) | {"merged_into": thread.merged_into_id}
        candidate.updated_at = utcnow()


def best_answer_votes(answers: Sequence[AnswerRow]) -> dict[str, int]:
    """The up and down votes of the visible answer with the best net score (the earliest of
    equals), for the agents' view of a suggestion."""
    visible = [row for row in answers if row[3] == Visibility.VISIBLE]
    if not visible:
        return {"up": 0, "down": 0}
    _post_id, up, down, _visibility = min(visible, key=lambda row: (row[2] - row[1], row[0]))
    return {"up": up, "down": down}
