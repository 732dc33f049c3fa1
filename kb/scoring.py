"""The usefulness score of a thread: how sure we are that it answers the question for the next
person. A number from 0 to 100, recomputed by the worker whenever one of its inputs changes.

    usefulness = 100 × ( 0.45 × wilson(best answer)
                       + 0.25 × accepted
                       + 0.20 × helpful
                       + 0.10 × views )

- wilson(best answer): the lower bound of the 95 % Wilson score interval of the visible answer
  whose up/down votes give the highest bound. It rewards answers many people agree on, and it
  is cautious with few votes (1 up / 0 down ≈ 0.21, 10 / 0 ≈ 0.72, 10 / 10 ≈ 0.30).
- accepted: 1 when the accepted answer is visible, else 0.
- helpful: "this helped me too" marks, saturating: 1 − e^(−marks / 10) (10 marks ≈ 0.63).
- views: log-scaled reach, 0 to 1 at 10,000 views, halved for every year since the thread was
  last active, so old popularity fades.

Only visible answers count: a hidden or deleted answer's votes or acceptance never raise a score.
Every component is non-decreasing in its input, so more upvotes never lower the score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.clock import utcnow
from community.core.models import Post, Thread, Visibility

Z_95 = 1.959963984540054
WEIGHT_BEST_ANSWER = 0.45
WEIGHT_ACCEPTED = 0.25
WEIGHT_HELPFUL = 0.20
WEIGHT_VIEWS = 0.10
HELPFUL_SCALE = 10.0
VIEWS_FULL = 10_000
VIEWS_HALF_LIFE_DAYS = 365.0


def wilson_lower_bound(up: int, down: int, z: float = Z_95) -> float:
    """Lower bound of the Wilson score interval for the share of positive votes."""
    n = up + down
    if n <= 0:
        return 0.0
    p = up / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * math.sqrt((p * (1 - p) + z2 / (4 * n)) / n)
    return max(0.0, (centre - margin) / (1 + z2 / n))


@dataclass(frozen=True, slots=True)
class AnswerVotes:
    up: int
    down: int
    visible: bool = True
    accepted: bool = False


@dataclass(frozen=True, slots=True)
class ScoreInputs:
    answers: tuple[AnswerVotes, ...]
    helpful_marks: int
    views: int
    last_activity_at: datetime


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    best_answer: float
    accepted: bool
    helpful: float
    views: float

    def reasons(self) -> dict[str, float | bool]:
        return {
            "usefulness": round(self.value, 1),
            "best_answer": round(self.best_answer, 3),
            "accepted": self.accepted,
            "helpful": round(self.helpful, 3),
            "views": round(self.views, 3),
        }


def score(inputs: ScoreInputs, *, now: datetime | None = None) -> Score:
    visible = [answer for answer in inputs.answers if answer.visible]
    best = max((wilson_lower_bound(a.up, a.down) for a in visible), default=0.0)
    accepted = any(answer.accepted for answer in visible)
    helpful = 1.0 - math.exp(-max(inputs.helpful_marks, 0) / HELPFUL_SCALE)
    reach = min(1.0, math.log10(1 + max(inputs.views, 0)) / math.log10(1 + VIEWS_FULL))
    age_days = max(0.0, ((now or utcnow()) - inputs.last_activity_at).total_seconds() / 86400)
    views = reach * 0.5 ** (age_days / VIEWS_HALF_LIFE_DAYS)
    value = 100 * (
        WEIGHT_BEST_ANSWER * best
        + WEIGHT_ACCEPTED * (1.0 if accepted else 0.0)
        + WEIGHT_HELPFUL * helpful
        + WEIGHT_VIEWS * views
    )
    return Score(value=value, best_answer=best, accepted=accepted, helpful=helpful, views=views)


AnswerRow = tuple[int, int, int, Visibility]  # (post id, upvotes, downvotes, visibility)


def answer_rows(db: Session, thread_ids: Sequence[int]) -> dict[int, list[AnswerRow]]:
    """Every answer's votes and visibility for many threads, in one statement."""
    rows: dict[int, list[AnswerRow]] = {thread_id: [] for thread_id in thread_ids}
    if not thread_ids:
        return rows
    for post_id, thread_id, up, down, visibility in db.execute(
        select(Post.id, Post.thread_id, Post.upvotes, Post.downvotes, Post.visibility)
        .where(Post.thread_id.in_(thread_ids), Post.is_question.is_(False))
        .order_by(Post.id)
    ):
        rows[thread_id].append((post_id, up, down, visibility))
    return rows


def inputs_from(thread: Thread, rows: Iterable[AnswerRow]) -> ScoreInputs:
    """The inputs from the thread and its answers' (id, up, down, visibility) rows, for
    callers that load many threads' answers at once."""
    answers = tuple(
        AnswerVotes(
            up=up,
            down=down,
            visible=visibility == Visibility.VISIBLE,
            accepted=post_id == thread.accepted_post_id,
        )
        for post_id, up, down, visibility in rows
    )
    return ScoreInputs(
        answers=answers,
        helpful_marks=thread.helpful_count,
        views=thread.view_count,
        last_activity_at=thread.last_activity_at,
    )
