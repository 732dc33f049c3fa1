"""Promotion decides a whole batch in a fixed number of statements (the importer promotes
thousands of solved threads at once) with exactly the outcome of deciding each thread alone:
the same scores, solutions, withdrawals and article suggestions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import time_machine
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from community.core.clock import utcnow
from community.core.models import Post, Thread, ThreadStatus, User, Visibility
from kb import promotion
from kb.models import CandidateStatus, PromotionCandidate, Solution
from tests.conftest import QA
from tests.test_statement_counts import counting

UserFactory = Callable[..., User]
Snapshot = dict[str, dict[int, Any]]


def _solved(
    db: Session, qa: QA, asker: User, helper: User, votes: list[tuple[int, int]], **extra: int
) -> Thread:
    """A solved thread whose answers have the given (up, down) totals; the first is accepted."""
    thread = qa.ask(asker, title=f"Roaming stops after the update, case {qa.made}")
    answers = [qa.answer(helper, thread) for _ in votes]
    for answer, (up, down) in zip(answers, votes, strict=True):
        db.execute(update(Post).where(Post.id == answer.id).values(upvotes=up, downvotes=down))
    db.execute(
        update(Thread)
        .where(Thread.id == thread.id)
        .values(status=ThreadStatus.SOLVED, accepted_post_id=answers[0].id, **extra)
    )
    db.commit()
    return thread


def _scenario(db: Session, qa: QA, make_user: UserFactory) -> dict[str, int]:
    asker, helper = make_user("asker"), make_user("helper")
    threads = {
        # Crosses the solution threshold (35) and the article threshold (60).
        "outstanding": _solved(db, qa, asker, helper, [(12, 0), (1, 1)], helpful_count=30),
        # Crosses the solution threshold only.
        "strong": _solved(db, qa, asker, helper, [(2, 0)]),
        # Equal net votes: the agents see the earliest answer's.
        "tie": _solved(db, qa, asker, helper, [(9, 0), (12, 3), (11, 2)], helpful_count=30),
        "hidden_accepted": _solved(db, qa, asker, helper, [(12, 0)], helpful_count=30),
        "withdrawn": _solved(db, qa, asker, helper, [(0, 4)]),
        "repromoted": _solved(db, qa, asker, helper, [(6, 0)]),
        "suggested": _solved(db, qa, asker, helper, [(12, 0)], helpful_count=30),
        "merged": _solved(db, qa, asker, helper, [(0, 0)]),
        "open": qa.ask(asker, title="Voicemail greeting resets itself"),
    }
    ids = {name: thread.id for name, thread in threads.items()}
    hidden = db.scalar(select(Thread.accepted_post_id).where(Thread.id == ids["hidden_accepted"]))
    db.execute(update(Post).where(Post.id == hidden).values(visibility=Visibility.HIDDEN))
    db.execute(
        update(Thread).where(Thread.id == ids["merged"]).values(merged_into_id=ids["strong"])
    )
    brand_id = qa.forum.brand_id
    long_ago = utcnow() - timedelta(days=30)
    for name, withdrawn_at in (("withdrawn", None), ("repromoted", long_ago)):
        db.add(
            Solution(
                thread_id=ids[name],
                brand_id=brand_id,
                score_at_promotion=50.0,
                promoted_at=long_ago,
                withdrawn_at=withdrawn_at,
            )
        )
    db.add(Solution(thread_id=ids["suggested"], brand_id=brand_id, score_at_promotion=80.0))
    for name in ("suggested", "merged"):
        db.add(
            PromotionCandidate(
                thread_id=ids[name], brand_id=brand_id, score=70.0, reasons={"usefulness": 70.0}
            )
        )
    db.commit()
    return ids


def _snapshot(db: Session) -> Snapshot:
    db.flush()
    return {
        "usefulness": dict(db.execute(select(Thread.id, Thread.usefulness)).all()),
        "solutions": {
            row.thread_id: (row.score_at_promotion, row.promoted_at, row.withdrawn_at)
            for row in db.scalars(select(Solution))
        },
        "candidates": {
            row.thread_id: (row.score, row.reasons, row.status, row.updated_at)
            for row in db.scalars(select(PromotionCandidate))
        },
    }


def test_a_batch_decides_exactly_as_each_thread_alone_in_a_few_statements(
    db: Session, engine: Engine, qa: QA, make_user: UserFactory
) -> None:
    ids = _scenario(db, qa, make_user)
    with time_machine.travel(utcnow() + timedelta(hours=1), tick=False):
        with counting(engine) as statements:
            changes = promotion.refresh(db, [*ids.values(), 999_999])
            db.flush()
        batch = _snapshot(db)
        db.rollback()
        for thread_id in ids.values():
            promotion.refresh(db, [thread_id])
        alone = _snapshot(db)
        db.rollback()

    assert batch == alone
    # Eight loads (threads, forums, brands, answers, solutions, candidates, accepted answers)
    # and one write per table and set of columns changed: the same for 9 threads as for 500.
    assert len(statements) <= 16, "\n".join(statements)

    solutions, candidates = batch["solutions"], batch["candidates"]
    live = {thread_id for thread_id, (_, _, withdrawn) in solutions.items() if withdrawn is None}
    assert live == {
        ids[name] for name in ("outstanding", "strong", "tie", "repromoted", "suggested")
    }
    assert set(changes) == set(ids.values())
    assert all(changes[i].solution_live == (i in live) for i in ids.values())
    assert solutions[ids["withdrawn"]][2] is not None
    assert ids["hidden_accepted"] not in solutions
    assert set(candidates) == {ids[name] for name in ("outstanding", "tie", "suggested", "merged")}
    assert candidates[ids["tie"]][1]["votes"] == {"up": 9, "down": 0}
    assert candidates[ids["outstanding"]][1]["votes"] == {"up": 12, "down": 0}
    assert round(candidates[ids["suggested"]][0], 3) == batch["usefulness"][ids["suggested"]]
    assert candidates[ids["merged"]][2] == CandidateStatus.DISMISSED
    assert candidates[ids["merged"]][1]["merged_into"] == ids["strong"]
    assert candidates[ids["suggested"]][2] == CandidateStatus.SUGGESTED
    assert batch["usefulness"][ids["outstanding"]] > 60 > batch["usefulness"][ids["strong"]] > 35
