"""Scale-out: three `community worker` processes on one PostgreSQL database share the outbox,
the sweeps and the webhook deliveries, and each piece of work is done exactly once (real SMTP
and HTTP receivers on loopback, the session's Meilisearch); a sweep runs in one worker at a
time, so one that reads and then acts (trust levels) never acts twice."""

from __future__ import annotations

import email.utils
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from community import threads
from community.core import meili, migrate, outbox
from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.db import make_engine, make_session_factory
from community.core.models import (
    Brand,
    EmailPreference,
    Forum,
    Notification,
    Role,
    Thread,
    User,
)
from community.core.schemas import AnswerIn, AskIn
from community.core.settings import Settings
from community.worker import Worker
from crowdservice import webhooks
from crowdservice.models import DeliveryStatus, Escalation, Webhook, WebhookDelivery
from moderation import accounts
from tests.conftest import (
    MEILI_TEST_KEY,
    Inbox,
    ThrowawayPostgres,
    _empty_all_tables,
    add_user,
    loopback_http_server,
    make_settings,
    passwords_for,
)

COMMUNITY = str(Path(sys.executable).with_name("community"))
WORKERS = 3
DUE_THREADS = 3  # unanswered past their first-response time: one escalation each
DIGEST_READERS = 2
DELIVERIES = 6
WAIT_SECONDS = 60  # an upper bound on a loaded machine, not an expected duration


# --- a throwaway PostgreSQL database for this module --------------------------------------------


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    database = ThrowawayPostgres.create("community_scaleout")
    try:
        migrate.upgrade(database.url)
        yield database.url
    finally:
        database.drop()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    _empty_all_tables(engine)  # the suite's own clearing, after the test
    engine.dispose()


@pytest.fixture
def pg_settings(tmp_path: Path, pg_url: str, meili_server: meili.MeiliServer) -> Settings:
    return make_settings(tmp_path, pg_url, meili_server.url)


class People:
    """Accounts and content made through the real services, committed one by one."""

    def __init__(self, db: Session, settings: Settings) -> None:
        self.db = db
        self.passwords = passwords_for(settings)
        brand = Brand(slug="acme", name="Acme", description="", theme={}, default_locale="en")
        db.add(brand)
        db.flush()
        self.forum = Forum(brand_id=brand.id, slug="mobile", name="Mobile", description="Phones")
        db.add(self.forum)
        db.commit()
        self.brand = brand
        self.made = 0

    def user(self, name: str, **fields: Any) -> User:
        return add_user(self.db, self.passwords, name, **fields)

    def ask(self, author: User) -> Thread:
        self.made += 1
        thread = threads.ask(
            self.db,
            author,
            self.forum,
            AskIn(
                title=f"My phone number {self.made} did not move to the eSIM",
                body=f"I followed the steps for line {self.made} and nothing changed.",
                tags=[],
            ),
            locale="en",
        )
        self.db.commit()
        return thread

    def answer(self, author: User, thread: Thread) -> None:
        self.made += 1
        threads.answer(
            self.db, author, thread, AnswerIn(body=f"Restart it, then scan the code ({self.made}).")
        )
        self.db.commit()


# --- the workers as processes -------------------------------------------------------------------


class WorkerProcess:
    """A `community worker` subprocess whose output is read on a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [COMMUNITY, "worker"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def started(self) -> bool:
        return any(": started" in line for line in self.lines)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def exit_code(self) -> int:
        code = self.process.wait(timeout=30)
        self.reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def wait_until(condition: Callable[[], bool], what: str, workers: list[WorkerProcess]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        for worker in workers:
            if worker.process.poll() is not None:
                raise AssertionError(f"a worker exited: {''.join(worker.lines)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_SECONDS} s: {what}")
        time.sleep(0.05)


@pytest.fixture
def hooks() -> Iterator[tuple[list[str], int]]:
    """A helpdesk stand-in on loopback: the webhook-id of every request it received."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            received.append(self.headers["webhook-id"])
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with loopback_http_server(Handler) as port:
        yield received, port


def _count(db: Session, query: Any) -> int:
    db.rollback()  # see what the workers committed
    return int(db.scalar(query) or 0)


def _seed_sweep_work(people: People) -> dict[str, list[User]]:
    """What the sweeps find on their first run: threads past their first-response time,
    daily-digest readers with unread notifications, a member who earned trust level 1 and a
    suspension that ran out."""
    db, now = people.db, utcnow()
    helper = people.user("helper")
    admin = people.user("boss", role=Role.ADMIN)
    due = [people.user(f"waiting{n}") for n in range(DUE_THREADS)]
    for asker in due:
        thread = people.ask(asker)
        thread.first_response_due_at = now - timedelta(minutes=1)
    readers = [
        people.user(
            f"reader{n}",
            email_notifications=EmailPreference.DAILY,
            created_at=now - timedelta(days=2),
        )
        for n in range(DIGEST_READERS)
    ]
    for reader in readers:
        people.answer(helper, people.ask(reader))
    people.user(
        "regular",
        trust_level=0,
        days_visited=1,
        threads_read=5,
        created_at=now - timedelta(days=2),
        last_seen_at=now,
    )
    offender = people.user("offender")
    people.ask(offender)
    accounts.suspend(db, admin, offender, days=1, reason="spam")
    offender.suspended_until = now - timedelta(minutes=1)
    db.commit()
    return {"helper": [helper], "due": due, "readers": readers}


def _seed_deliveries(people: People, port: int) -> None:
    hook = Webhook(
        brand_id=people.brand.id,
        url=f"http://127.0.0.1:{port}/hooks",
        secret=webhooks.new_secret(),
        events=["escalation.handed_off"],
        active=True,
        allow_private=True,
    )
    people.db.add(hook)
    people.db.flush()
    for n in range(DELIVERIES):
        webhooks.enqueue_event(people.db, people.brand.id, "escalation.handed_off", {"n": n})
    people.db.commit()


def _claimers(db: Session) -> set[str]:
    db.rollback()
    return {
        holder
        for holder in db.scalars(select(outbox.OutboxEvent.claimed_by).distinct())
        if holder is not None
    }


def _outbox_drained(db: Session) -> bool:
    """Nothing due is left (a badge check waits a minute on purpose: not due yet)."""
    return (
        _count(
            db,
            select(func.count())
            .select_from(outbox.OutboxEvent)
            .where(
                outbox.OutboxEvent.done_at.is_(None),
                outbox.OutboxEvent.available_at <= utcnow(),
            ),
        )
        == 0
    )


def test_three_worker_processes_share_the_work_and_do_each_piece_once(
    pg_engine: Engine,
    pg_settings: Settings,
    smtp: tuple[Inbox, int],
    hooks: tuple[list[str], int],
    tmp_path: Path,
) -> None:
    inbox, smtp_port = smtp
    received, hook_port = hooks
    db = make_session_factory(pg_engine)()
    people = People(db, pg_settings)
    seeded = _seed_sweep_work(people)
    _seed_deliveries(people, hook_port)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MEILI_")} | {
        "DATABASE_URL": pg_settings.database_url or "",
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "SECRET_KEY": pg_settings.effective_secret_key,
        "WORKER_POLL_SECONDS": "0.05",
        "MEILI_URL": pg_settings.meili_url or "",
        "MEILI_MASTER_KEY": MEILI_TEST_KEY,
        "MEILI_INDEX_PREFIX": pg_settings.meili_index_prefix,
        "SEARCH_MODEL": "off",
        "EMBEDDED_WORKER": "false",
    }
    workers = [WorkerProcess(env) for _ in range(WORKERS)]
    try:
        wait_until(lambda: all(worker.started for worker in workers), "workers up", workers)
        # Outbox work in waves once all three poll: whichever wakes first takes a wave, so
        # after a few waves each has claimed some (the claims' holders say who).
        helper = seeded["helper"][0]
        for wave in range(40):
            asker = people.user(f"asker{wave}")
            people.answer(helper, people.ask(asker))
            wait_until(lambda: _outbox_drained(db), f"wave {wave} done", workers)
            if len(_claimers(db)) == WORKERS:
                break
        wait_until(lambda: len(received) >= DELIVERIES, "webhook deliveries", workers)
        wait_until(
            lambda: _count(db, select(func.count()).select_from(Escalation)) >= DUE_THREADS,
            "escalations",
            workers,
        )
        wait_until(
            lambda: _count(db, _audits("user.suspension_ended")) >= 1, "the suspension", workers
        )
        wait_until(lambda: _count(db, _audits("trust.promoted")) >= 1, "trust", workers)
        # Settled: nothing left to do and every e-mail the notifications call for has arrived.
        wait_until(
            lambda: _outbox_drained(db) and len(inbox.messages) >= _expected_mail(db, seeded),
            "the e-mails",
            workers,
        )
        for worker in workers:  # all at once: each takes a moment to exit
            worker.terminate()
        for worker in workers:
            assert worker.exit_code() == 0, "".join(worker.lines)
            assert "worker: stopped" in "".join(worker.lines)
    finally:
        for worker in workers:
            worker.kill()

    # Every worker claimed some of the outbox; every event was handled once, never retried.
    assert len(_claimers(db)) == WORKERS
    events = list(
        db.scalars(select(outbox.OutboxEvent).where(outbox.OutboxEvent.available_at <= utcnow()))
    )
    assert events and all(e.done_at is not None and e.attempts == 1 for e in events)
    # Each e-mail once: one per notification of an immediate reader, one digest per daily one.
    ids = [message["Message-ID"] for message in inbox.messages]
    assert len(ids) == len(set(ids)) == _expected_mail(db, seeded)
    to = Counter(email.utils.parseaddr(message["To"])[1] for message in inbox.messages)
    assert all(to[reader.email or ""] == 1 for reader in seeded["readers"])
    assert db.scalar(select(func.count()).select_from(Notification).where(
        Notification.emailed_at.is_(None))) == 0  # fmt: skip
    # Each webhook delivery sent once and recorded once.
    assert sorted(received) == sorted(set(received)) and len(received) == DELIVERIES
    deliveries = list(db.scalars(select(WebhookDelivery)))
    assert [(d.status, d.attempts) for d in deliveries] == [
        (DeliveryStatus.SUCCEEDED, 1)
    ] * DELIVERIES
    # Each sweep's effect once: one escalation per due thread, one promotion, one suspension end.
    escalated = Counter(db.scalars(select(Escalation.thread_id)))
    assert len(escalated) == DUE_THREADS and set(escalated.values()) == {1}
    assert _count(db, _audits("escalation.created")) == DUE_THREADS
    assert _count(db, _audits("trust.promoted")) == 1
    assert _count(db, _audits("user.suspension_ended")) == 1
    # The search index has every visible thread, written by the workers.
    visible = _count(db, select(func.count()).select_from(Thread))
    stats = httpx.get(
        f"{pg_settings.meili_url}/indexes/{pg_settings.meili_index_prefix}threads_acme/stats",
        headers={"Authorization": f"Bearer {MEILI_TEST_KEY}"},
    )
    assert stats.json()["numberOfDocuments"] == visible
    db.close()


def _expected_mail(db: Session, seeded: dict[str, list[User]]) -> int:
    immediate = _count(
        db,
        select(func.count())
        .select_from(Notification)
        .join(User, User.id == Notification.user_id)
        .where(User.email_notifications == EmailPreference.IMMEDIATE),
    )
    return immediate + len(seeded["readers"])


def _audits(action: str) -> Any:
    return select(func.count()).select_from(AuditLog).where(AuditLog.action == action)


def test_a_sweep_runs_in_one_worker_at_a_time(pg_engine: Engine, pg_settings: Settings) -> None:
    """Worker A is inside the trust sweep (its promotion written, not committed) when worker B's
    turn comes: B skips it. Without the sweep's lock B would promote the same member again,
    writing a second audit entry once A commits."""
    db = make_session_factory(pg_engine)()
    people = People(db, pg_settings)
    people.user(
        "regular",
        trust_level=0,
        days_visited=1,
        threads_read=5,
        created_at=utcnow() - timedelta(days=2),
        last_seen_at=utcnow(),
    )
    first, second = (Worker(pg_settings, make_session_factory(pg_engine)) for _ in range(2))
    sweep = next(task for task in first.periodic if task.name == "trust and suspensions")
    inside, release = threading.Event(), threading.Event()
    real_run = sweep.run

    def paused(session: Session) -> None:
        real_run(session)
        session.flush()
        inside.set()
        release.wait(timeout=WAIT_SECONDS)

    sweep.run = paused
    first.periodic = [sweep]
    second.periodic = [t for t in second.periodic if t.name == "trust and suspensions"]
    a = threading.Thread(target=first.run_periodic)
    a.start()
    try:
        assert inside.wait(timeout=WAIT_SECONDS)
        b = threading.Thread(target=second.run_periodic)
        b.start()
        # With the lock B returns at once; without it B waits on A's row lock (bounded here).
        b.join(timeout=10)
    finally:
        release.set()
        a.join(timeout=WAIT_SECONDS)
    b.join(timeout=WAIT_SECONDS)
    assert not b.is_alive()
    assert _count(db, _audits("trust.promoted")) == 1
    promoted = db.scalar(select(User).where(User.username_key == "regular"))
    assert promoted is not None and promoted.trust_level == 1
    db.close()
