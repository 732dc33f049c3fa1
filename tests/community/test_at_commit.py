"""Writes recorded during a transaction and sent before COMMIT (community.core.at_commit): each
kind in its turn, after the session's own pending changes, so the widest lock is taken last."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.orm import Session

from community.core.at_commit import Deferred
from community.core.models import Brand


def test_kinds_are_sent_in_their_order_after_the_sessions_pending_changes(db: Session) -> None:
    sent: list[tuple[str, list[int], bool]] = []

    def recorder(name: str) -> Deferred[int]:
        def send(session: Session, items: list[int]) -> None:
            sent.append((name, items, bool(session.new or session.dirty)))

        # A kind lives as long as the process: each run of the test makes new ones.
        return Deferred(
            f"test.{name}.{uuid.uuid4()}", send, order={"late": 1_000_001, "early": 1_000_000}[name]
        )

    late = recorder("late")  # made first, sent last
    early = recorder("early")
    late.add(db, 1)
    early.add(db, 2)
    late.add(db, 3)
    db.add(Brand(slug="at-commit", name="At commit"))
    db.commit()
    assert sent == [("early", [2], False), ("late", [1, 3], False)]


def test_a_kind_is_made_once() -> None:
    name = f"test.twice.{uuid.uuid4()}"
    Deferred(name, lambda _db, _items: None, order=1)
    with pytest.raises(ValueError, match="already"):
        Deferred(name, lambda _db, _items: None, order=1)


def test_a_rollback_forgets_what_was_recorded(db: Session) -> None:
    sent: list[list[int]] = []
    kind: Deferred[int] = Deferred(
        f"test.rolled.{uuid.uuid4()}", lambda _db, items: sent.append(items), order=5
    )
    kind.add(db, 1)
    db.rollback()
    kind.add(db, 2)
    db.commit()
    assert sent == [[2]]
