"""Thread views: once per viewer per thread per day, buffered in memory, stored in batches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.clock import utcnow
from community.models import Thread, ThreadView, User
from community.viewcount import ViewCounter, is_bot, viewer_key
from tests.conftest import QA, fresh, log_in

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}


def _views(db: Session, thread: Thread) -> int:
    fresh(db)
    stored = db.get(Thread, thread.id)
    assert stored is not None
    return stored.view_count


def test_page_views_are_buffered_then_counted_once_per_viewer_and_day(
    app: FastAPI,
    make_client: Callable[[], TestClient],
    db: Session,
    qa: QA,
    make_user: Callable[..., User],
) -> None:
    thread = qa.ask(make_user("asker"))
    counter: ViewCounter = app.state.view_counter
    reader, anonymous = make_client(), make_client()
    make_user("reader")
    log_in(reader, "reader")
    for _ in range(5):
        assert reader.get(f"/t/{thread.id}", headers=BROWSER).status_code == 200
        assert anonymous.get(f"/t/{thread.id}", headers=BROWSER).status_code == 200
    assert _views(db, thread) == 0  # nothing written while people read
    assert counter.pending() == 2
    assert counter.flush() == 2
    assert _views(db, thread) == 2

    reader.get(f"/t/{thread.id}", headers=BROWSER)
    assert counter.flush() == 0  # the same viewer, the same day: already counted
    assert _views(db, thread) == 2

    with time_machine.travel(utcnow() + timedelta(days=1)):
        reader.get(f"/t/{thread.id}", headers=BROWSER)
        assert counter.flush() == 1
    assert _views(db, thread) == 3


def test_bots_are_not_counted(
    app: FastAPI, client: TestClient, qa: QA, make_user: Callable[..., User]
) -> None:
    thread = qa.ask(make_user("asker"))
    client.get(f"/t/{thread.id}", headers={"User-Agent": "Googlebot/2.1"})
    client.get(f"/t/{thread.id}", headers={"User-Agent": ""})
    assert app.state.view_counter.pending() == 0
    assert is_bot("Mozilla/5.0 (compatible; bingbot/2.0)")
    assert not is_bot(BROWSER["User-Agent"])


def test_two_processes_never_count_one_viewer_twice(
    app: FastAPI, db: Session, qa: QA, make_user: Callable[..., User]
) -> None:
    """Two web processes each buffer the same view; the database keeps one."""
    thread = qa.ask(make_user("asker"))
    factory = app.state.session_factory
    first, second = ViewCounter(factory), ViewCounter(factory)
    key = viewer_key(user_id=None, session_token="same-browser", ip=None)
    first.record(thread.id, key)
    second.record(thread.id, key)
    assert first.flush() + second.flush() == 1
    assert _views(db, thread) == 1


def test_views_of_deleted_threads_are_dropped_and_old_keys_pruned(
    app: FastAPI, db: Session, qa: QA, make_user: Callable[..., User]
) -> None:
    author = make_user("asker")
    kept, gone = qa.ask(author), qa.ask(author, title="This one will be deleted soon")
    counter = ViewCounter(app.state.session_factory)
    with time_machine.travel(utcnow() - timedelta(days=3)):
        counter.record(kept.id, "old-viewer")
        counter.flush()
    counter.record(kept.id, "a")
    counter.record(gone.id, "b")
    gone_id = gone.id
    db.delete(gone)
    db.commit()
    assert counter.flush() == 1
    fresh(db)
    keys = {(view.thread_id, view.viewer_key) for view in db.scalars(select(ThreadView))}
    assert keys == {(kept.id, "a")}  # the 3-day-old key was pruned, the deleted thread dropped
    assert gone_id not in {view.thread_id for view in db.scalars(select(ThreadView))}
    assert db.scalar(select(func.count()).select_from(ThreadView)) == 1


def test_viewer_keys_do_not_reveal_who_viewed() -> None:
    key = viewer_key(user_id=42, session_token=None, ip=None)
    assert key == viewer_key(user_id=42, session_token=None, ip=None)  # stable within a day
    assert len(key) == 32
    assert set(key) <= set("0123456789abcdef")  # a hash, not the id
    assert key != viewer_key(user_id=None, session_token="42", ip=None)
    assert key != viewer_key(user_id=43, session_token=None, ip=None)
