"""Keyed outbox events (a thread's search update, say): one waiting event per kind and key,
found by the INSERT itself at commit (a partial unique index, ON CONFLICT), and locked by the
transaction that found it so that no worker claims it before that change is committed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session

from community.core import migrate, outbox
from community.core.db import make_engine, make_session_factory
from community.core.outbox import OutboxEvent
from tests.conftest import BACKENDS, fresh_database_url

KIND = "test.keyed"


def _waiting(db: Session, key: str) -> list[OutboxEvent]:
    db.expire_all()
    return list(
        db.scalars(
            select(OutboxEvent).where(
                OutboxEvent.kind == KIND,
                OutboxEvent.dedupe_key == key,
                OutboxEvent.done_at.is_(None),
                OutboxEvent.claimed_by.is_(None),
            )
        )
    )


def _change(db: Session, key: str, n: int = 1) -> None:
    outbox.enqueue(db, KIND, {"key": key, "n": n}, dedupe_key=key)


def test_changes_to_one_thing_leave_one_waiting_event(db: Session) -> None:
    for n in range(3):
        _change(db, "thread:1", n)
        db.commit()
    _change(db, "thread:1", 3)
    _change(db, "thread:1", 4)
    _change(db, "thread:2")
    db.commit()

    [first] = _waiting(db, "thread:1")
    assert first.payload == {"key": "thread:1", "n": 0}  # the first covers the later changes
    assert len(_waiting(db, "thread:2")) == 1


def test_nothing_is_written_before_the_commit_or_after_a_rollback(db: Session) -> None:
    _change(db, "thread:1")
    db.flush()
    assert db.scalar(select(func.count()).select_from(OutboxEvent)) == 0
    db.rollback()
    db.commit()
    assert _waiting(db, "thread:1") == []

    _change(db, "thread:2")
    savepoint = db.begin_nested()
    _change(db, "thread:3")
    savepoint.rollback()
    db.commit()
    assert len(_waiting(db, "thread:2")) == 1
    assert _waiting(db, "thread:3") == []


def test_a_claimed_event_takes_no_more_changes(db: Session) -> None:
    _change(db, "thread:1")
    db.commit()
    [claimed] = outbox.claim(db, "worker-a")
    db.commit()

    _change(db, "thread:1", 2)
    db.commit()

    [waiting] = _waiting(db, "thread:1")
    assert waiting.id != claimed.id and waiting.payload["n"] == 2


def test_a_keyed_event_is_due_now() -> None:
    with pytest.raises(ValueError, match="due now"):
        outbox.enqueue(None, KIND, {}, dedupe_key="x", delay=outbox.MAX_BACKOFF)  # type: ignore[arg-type]


@pytest.fixture
def committing_paused() -> Iterator[tuple[threading.Event, threading.Event]]:
    """While set up: a session marked `pause` stops inside its commit, after its keyed events
    are written and before COMMIT, until `go` is set."""
    reached, go = threading.Event(), threading.Event()

    def pause(db: Session) -> None:
        if db.info.get("pause"):
            reached.set()
            assert go.wait(30)

    event.listen(Session, "before_commit", pause)  # after the outbox's own listener
    try:
        yield reached, go
    finally:
        go.set()
        event.remove(Session, "before_commit", pause)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_no_worker_claims_a_waiting_event_while_a_change_it_covers_is_uncommitted(
    engine: Engine, db: Session, committing_paused: tuple[threading.Event, threading.Event]
) -> None:
    reached, go = committing_paused
    _change(db, "thread:1")
    db.commit()

    def write() -> None:
        with make_session_factory(engine)() as writer:
            writer.info["pause"] = True
            _change(writer, "thread:1", 2)
            writer.commit()

    writer_thread = threading.Thread(target=write)
    writer_thread.start()
    try:
        assert reached.wait(30)
        with make_session_factory(engine)() as worker:
            assert outbox.claim(worker, "worker-a") == []  # locked by the uncommitted change
            worker.rollback()
    finally:
        go.set()
        writer_thread.join(30)
    with make_session_factory(engine)() as worker:
        [claimed] = outbox.claim(worker, "worker-a")
        worker.commit()
    assert claimed.dedupe_key == "thread:1"
    assert _waiting(db, "thread:1") == []  # the change found the waiting event: no second one


def test_the_migration_merges_waiting_duplicates(backend: str, tmp_path: Path) -> None:
    url, remove = fresh_database_url(backend, tmp_path)
    try:
        migrate.upgrade(url, "0016")
        engine = make_engine(url)
        rows = [  # (key, claimed_by, done)
            ("thread:1", None, False), ("thread:1", None, False), ("thread:1", None, False),
            ("thread:1", "worker-a", False), ("thread:1", None, True), ("thread:2", None, False),
        ]  # fmt: skip
        with engine.begin() as connection:
            for key, claimed_by, done in rows:
                connection.execute(
                    text(
                        "INSERT INTO outbox_events (kind, dedupe_key, payload, created_at,"
                        " available_at, attempts, claimed_by, done_at) VALUES (:kind, :key, '{}',"
                        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, :claimed_by,"
                        " CASE WHEN :done THEN CURRENT_TIMESTAMP END)"
                    ),
                    {"kind": KIND, "key": key, "claimed_by": claimed_by, "done": done},
                )
        engine.dispose()

        migrate.upgrade(url)

        engine = make_engine(url)
        with engine.connect() as connection:
            left = connection.execute(
                text("SELECT id, dedupe_key, claimed_by, done_at IS NOT NULL FROM outbox_events")
            ).all()
        engine.dispose()
        assert sorted((key, claimed or "", done) for _id, key, claimed, done in left) == [
            ("thread:1", "", False), ("thread:1", "", True),
            ("thread:1", "worker-a", False), ("thread:2", "", False),
        ]  # fmt: skip
        waiting = [row_id for row_id, key, claimed, done in left if key == "thread:1"
                   and claimed is None and not done]  # fmt: skip
        assert waiting == [1]  # the earliest
    finally:
        remove()
