"""The background worker: several at once never handle an outbox event twice, failures back
off, and `community worker` runs as its own process (delivering real e-mail) until SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community.core import outbox
from community.core.db import make_session_factory
from community.core.models import User
from community.core.settings import Settings
from community.worker import Worker
from tests.conftest import QA, Inbox, fresh

COMMUNITY = str(Path(sys.executable).with_name("community"))


def test_concurrent_workers_handle_each_event_exactly_once(
    settings: Settings, engine: Engine, db: Session
) -> None:
    for index in range(60):
        outbox.enqueue(db, "test.record", {"n": index})
    db.commit()
    handled: Counter[int] = Counter()
    lock = threading.Lock()

    def record(_db: Session, event: outbox.OutboxEvent) -> None:
        time.sleep(0.002)  # overlap the workers' claims
        with lock:
            handled[event.payload["n"]] += 1

    workers = [Worker(settings, make_session_factory(engine)) for _ in range(4)]
    for worker in workers:
        worker.register("test.record", record)
    barrier = threading.Barrier(len(workers))

    def drain(worker: Worker) -> None:
        barrier.wait()
        while worker.drain_outbox(limit=7):
            pass

    threads = [threading.Thread(target=drain, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(handled) == list(range(60))
    assert set(handled.values()) == {1}
    fresh(db)
    assert all(event.done_at is not None for event in db.scalars(select(outbox.OutboxEvent)))


def test_unknown_event_kinds_fail_visibly_and_are_retried_later(
    settings: Settings, engine: Engine, db: Session
) -> None:
    outbox.enqueue(db, "nobody.handles.this", {})
    db.commit()
    Worker(settings, make_session_factory(engine)).run_once()
    fresh(db)
    event = db.scalars(select(outbox.OutboxEvent)).one()
    assert event.done_at is None
    assert event.attempts == 1
    assert "no handler" in (event.last_error or "")


def test_worker_command_sends_mail_and_stops_on_sigterm(
    settings: Settings,
    database_url: str,
    qa: QA,
    make_user: Callable[..., User],
    smtp: tuple[Inbox, int],
    tmp_path: Path,
) -> None:
    inbox, port = smtp
    thread = qa.ask(make_user("asker"))
    qa.answer(make_user("helper"), thread)
    env = os.environ | {
        "DATABASE_URL": database_url,
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "SMTP_URL": f"smtp://127.0.0.1:{port}",
        "SECRET_KEY": settings.effective_secret_key,
        "WORKER_POLL_SECONDS": "0.2",
    }
    process = subprocess.Popen(
        [COMMUNITY, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not inbox.to("asker@example.com") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(inbox.to("asker@example.com")) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        output = process.stdout.read() if process.stdout else ""
        assert "worker: stopped" in output
    finally:
        if process.poll() is None:
            process.kill()
