"""The job runner: it claims outbox rows, dispatches them to the handlers the packages
registered, backs failures off, and runs the periodic sweeps when they are due. It knows no job:
each package's `tasks.register(worker)` adds its own (community.worker wires them all).

`community worker` runs it as its own process; embedded mode runs it on a thread inside
`community serve`. Any number of workers can run on PostgreSQL: outbox rows are claimed with
SKIP LOCKED, and a sweep runs in one worker at a time (a transaction-level advisory lock named
after it: a worker that finds it taken skips its turn), so a sweep that reads and then acts
(trust levels, suspensions) never acts twice. A sweep that shares its work safely itself
(webhook deliveries, claimed with a lease) says `exclusive=False` and runs in every worker.
On SQLite one writer at a time already orders the sweeps.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from community.core import logs, outbox
from community.core.clock import utcnow
from community.core.db import begin_write
from community.core.metrics import JOBS
from community.core.settings import Settings

logger = logging.getLogger(__name__)

Handler = Callable[[Session, outbox.OutboxEvent], None]
# Batch handlers do their database work in the given session and return what to do after it
# commits (writes to other systems), so no database lock is held while those run.
BatchHandler = Callable[[Session, list[outbox.OutboxEvent]], Callable[[], None] | None]


@dataclass
class Periodic:
    name: str
    every: timedelta
    run: Callable[[Session], None]
    last_run: datetime | None = field(default=None)
    exclusive: bool = True


class Worker:
    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.worker_id = worker_id or f"{socket.gethostname()[:20]}-{uuid.uuid4().hex[:8]}"
        self.handlers: dict[str, Handler] = {}
        self.batch_handlers: dict[str, BatchHandler] = {}
        self.periodic: list[Periodic] = []

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def register_batch(self, kind: str, handler: BatchHandler) -> None:
        """A handler that takes every claimed event of its kind at once (one index write)."""
        self.batch_handlers[kind] = handler

    def every(
        self,
        name: str,
        interval: timedelta,
        run: Callable[[Session], None],
        *,
        exclusive: bool = True,
    ) -> None:
        """A sweep run in its own session (committed after it) every `interval`; in one
        worker at a time unless `exclusive=False` (see the module's docstring)."""
        self.periodic.append(Periodic(name, interval, run, exclusive=exclusive))

    # --- the loop ------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Drain what is due now and run the sweeps whose time has come."""
        processed = self.drain_outbox()
        self.run_periodic()
        return processed

    def run_forever(self, stop: threading.Event) -> None:
        logger.info("worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                logger.exception("worker cycle failed; continuing")
                busy = 0
            if not busy:
                stop.wait(self.settings.worker_poll_seconds)
        logger.info("worker %s stopped", self.worker_id)

    def drain_outbox(self, limit: int = 50) -> int:
        with self.session_factory() as db:
            begin_write(db)
            claimed = [
                (event.id, event.kind, event.request_id)
                for event in outbox.claim(db, self.worker_id, limit=limit)
            ]
            db.commit()
        batches: dict[str, list[tuple[int, str | None]]] = {}
        for event_id, kind, request_id in claimed:
            if kind in self.batch_handlers:
                batches.setdefault(kind, []).append((event_id, request_id))
            else:
                # The job's log lines carry the id of the request that caused it.
                with logs.request_id_bound(request_id):
                    self._handle(event_id)
        for kind, events in batches.items():
            with logs.request_id_bound(logs.batch_request_id([rid for _, rid in events])):
                self._handle_batch(kind, [event_id for event_id, _ in events])
        return len(claimed)

    def _handle_batch(self, kind: str, event_ids: list[int]) -> None:
        try:
            with self.session_factory() as db:
                begin_write(db)
                events = [
                    event
                    for event in db.scalars(
                        select(outbox.OutboxEvent).where(outbox.OutboxEvent.id.in_(event_ids))
                    )
                    if event.done_at is None and event.claimed_by == self.worker_id
                ]
                if not events:
                    return
                mine = [event.id for event in events]
                after_commit = self.batch_handlers[kind](db, events)
                db.commit()
            if after_commit is not None:
                after_commit()
            with self.session_factory() as db:
                begin_write(db)
                for event in db.scalars(
                    select(outbox.OutboxEvent).where(outbox.OutboxEvent.id.in_(mine))
                ):
                    outbox.mark_done(db, event)
                db.commit()
            JOBS.labels(kind, "ok").inc(len(mine))
            logger.debug("%d outbox events (%s) done", len(mine), kind)
            return
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("%d outbox events (%s) failed: %s", len(event_ids), kind, error)
            JOBS.labels(kind, "retried").inc(len(event_ids))
        with self.session_factory() as db:
            begin_write(db)
            for event in db.scalars(
                select(outbox.OutboxEvent).where(outbox.OutboxEvent.id.in_(event_ids))
            ):
                if event.done_at is None:
                    outbox.mark_failed(db, event, error)
            db.commit()

    def _handle(self, event_id: int) -> None:
        with self.session_factory() as db:
            begin_write(db)
            event = db.get(outbox.OutboxEvent, event_id)
            if event is None or event.done_at is not None or event.claimed_by != self.worker_id:
                return
            kind = event.kind  # the event's attributes expire on rollback
            handler = self.handlers.get(kind)
            try:
                if handler is None:
                    raise LookupError(f"no handler for outbox events of kind {event.kind!r}")
                handler(db, event)
                outbox.mark_done(db, event)
                db.commit()
                JOBS.labels(kind, "ok").inc()
                logger.debug("outbox event %s (%s) done", event_id, kind)
                return
            except Exception as exc:
                db.rollback()
                error = f"{type(exc).__name__}: {exc}"
                logger.warning("outbox event %s (%s) failed: %s", event_id, kind, error)
                JOBS.labels(kind, "retried").inc()
        with self.session_factory() as db:
            begin_write(db)
            failed = db.get(outbox.OutboxEvent, event_id)
            if failed is not None:
                outbox.mark_failed(db, failed, error)
                db.commit()

    def run_periodic(self) -> None:
        now = utcnow()
        for task in self.periodic:
            if task.last_run is not None and now - task.last_run < task.every:
                continue
            task.last_run = now
            with self.session_factory() as db:
                try:
                    if task.exclusive and not _take_sweep_lock(db, task.name):
                        continue  # another worker is running this sweep right now
                    task.run(db)
                    db.commit()
                    JOBS.labels(task.name, "ok").inc()
                except Exception:
                    db.rollback()
                    logger.exception("periodic task %s failed", task.name)
                    JOBS.labels(task.name, "failed").inc()


def _take_sweep_lock(db: Session, name: str) -> bool:
    """The sweep's PostgreSQL advisory lock for this transaction (released when it ends), or
    False when another worker holds it."""
    if db.get_bind().dialect.name != "postgresql":
        return True
    digest = hashlib.blake2b(f"community sweep: {name}".encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    return bool(db.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}))


def start_in_background(worker: Worker) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), name="worker", daemon=True)
    thread.start()
    return thread, stop
