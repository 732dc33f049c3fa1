"""The transactional outbox: side effects (e-mail now; search indexing and webhooks later) are
written as rows in the same transaction as the change, and a worker acts on them after commit.

Rows carry ids, never copies of content: the handler re-reads the current state, so a late,
repeated or out-of-order run does the right thing. Claiming works on both databases: on
PostgreSQL with FOR UPDATE SKIP LOCKED (any number of workers), on SQLite inside the single
writer lock (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Index,
    Integer,
    String,
    Text,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Mapped, Session, mapped_column
from sqlalchemy.sql.dml import Insert

from community.core.at_commit import OUTBOX_ORDER, Deferred
from community.core.clock import utcnow
from community.core.db import Base, BigIntId, JSONDocument, UTCDateTime, dialect_insert
from community.core.errors import NotFound
from community.core.logs import REQUEST_ID_MAX_LENGTH, origin_request_id

CLAIM_SECONDS = 120
# Rows per statement when many events are written at once (an import asks for tens of thousands).
BULK_ROWS = 1000
MAX_BACKOFF = timedelta(hours=6)


_WAITING_KEYED = text("dedupe_key IS NOT NULL AND done_at IS NULL AND claimed_by IS NULL")


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_due", "done_at", "available_at", "id"),
        # One waiting event per kind and key: a change finds it (and locks it) with the INSERT
        # itself. A claimed event leaves the index for good (claimed_by is never cleared).
        Index(
            "uq_outbox_events_waiting_key",
            "kind",
            "dedupe_key",
            unique=True,
            postgresql_where=_WAITING_KEYED,
            sqlite_where=_WAITING_KEYED,
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    # Events with the same kind and key that are still waiting are one piece of work.
    dedupe_key: Mapped[str | None] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(40))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The request that caused this work (None: a job or a command did); the worker logs with it.
    request_id: Mapped[str | None] = mapped_column(String(REQUEST_ID_MAX_LENGTH))


def enqueue(
    db: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    delay: timedelta | None = None,
    dedupe_key: str | None = None,
) -> OutboxEvent | None:
    """Record work for after commit: the event, or None for a keyed one (written at commit).

    With a dedupe key, an event still waiting for the same key covers this change too (handlers
    re-read the current state). The event is written just before COMMIT (community.core.at_commit),
    as an INSERT that finds a waiting one instead and locks it until the transaction ends, so a
    worker cannot claim it in between and miss the change (it skips locked rows); on SQLite the
    writer lock gives the same guarantee. Keyed events are due now (no delay)."""
    if dedupe_key is not None:
        if delay is not None:
            raise ValueError("an event with a dedupe key is due now")
        _KEYED.add(db, (kind, dedupe_key, payload))
        return None
    event = OutboxEvent(
        kind=kind,
        payload=payload,
        available_at=utcnow() + (delay or timedelta()),
        request_id=origin_request_id(),
    )
    db.add(event)
    return event


def enqueue_keyed_now(db: Session, kind: str, keyed: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Keyed events (dedupe key, payload) written now, in this order, not at commit: for work
    that must come before events queued after it in the same transaction (the worker takes
    events in id order), and for bulk requests. A waiting event of the same key covers its
    change as with `enqueue`, and stays locked until the transaction ends."""
    _upsert(db, [(kind, key, payload) for key, payload in dict(keyed).items()])


def _upsert(db: Session, keyed: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
    """(kind, dedupe key, payload) rows, in this order: several in one executemany (psycopg
    pipelines it: one round trip)."""
    now, request_id = utcnow(), origin_request_id()
    rows = [
        {"kind": kind, "dedupe_key": key, "payload": payload, "created_at": now,
         "available_at": now, "attempts": 0, "request_id": request_id}
        for kind, key, payload in keyed
    ]  # fmt: skip
    upsert = _upsert_waiting(db.get_bind().dialect.name)
    for start in range(0, len(rows), BULK_ROWS):
        chunk = rows[start : start + BULK_ROWS]
        db.execute(upsert, chunk[0] if len(chunk) == 1 else chunk)


@functools.cache
def _upsert_waiting(dialect_name: str) -> Insert:
    """Built once per dialect: every vote and answer sends it."""
    upsert = dialect_insert(dialect_name)(OutboxEvent.__table__)
    return upsert.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=[OutboxEvent.kind, OutboxEvent.dedupe_key],
        index_where=_WAITING_KEYED,
        set_={"dedupe_key": upsert.excluded.dedupe_key},  # a no-op that locks the waiting row
    )


def _write_keyed(db: Session, events: list[tuple[str, str, dict[str, Any]]]) -> None:
    """At commit: one row per waiting (kind, key), all in one round trip. Kinds keep the order
    they were recorded in; the keys of one kind are sorted, so two transactions that change the
    same things never wait for each other's rows in a cycle."""
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, key, payload in events:
        by_kind.setdefault(kind, {}).setdefault(key, payload)
    _upsert(
        db,
        [
            (kind, key, payload)
            for kind, payloads in by_kind.items()
            for key, payload in sorted(payloads.items(), key=lambda item: item[0])
        ],
    )


_KEYED: Deferred[tuple[str, str, dict[str, Any]]] = Deferred(
    "outbox.keyed", _write_keyed, order=OUTBOX_ORDER
)


def enqueue_many(db: Session, kind: str, payloads: list[dict[str, Any]]) -> None:
    """Record many events of one kind (no dedupe key) in one INSERT: the e-mails of a new
    post's notifications, say. Due now."""
    if not payloads:
        return
    now, request_id = utcnow(), origin_request_id()
    common = {"kind": kind, "created_at": now, "available_at": now, "attempts": 0}
    rows = [common | {"payload": payload, "request_id": request_id} for payload in payloads]
    db.execute(insert(OutboxEvent).values(rows))


def lease_due(
    db: Session,
    id_column: InstrumentedAttribute[int],
    *,
    due: ColumnElement[bool],
    order_by: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]],
    holder_column: InstrumentedAttribute[str | None],
    until_column: InstrumentedAttribute[datetime | None],
    holder: str,
    now: datetime,
    lease: timedelta,
    limit: int,
) -> list[int]:
    """Lease up to `limit` due rows that no live lease holds to `holder` until `now + lease`;
    returns their ids. The job queues (outbox events, webhook deliveries) claim with this.

    PostgreSQL locks the candidates FOR UPDATE SKIP LOCKED, so any number of workers claim
    different rows; on SQLite the caller holds the writer lock (BEGIN IMMEDIATE). The UPDATE
    repeats the conditions, so a row another worker took is left alone either way."""
    free = or_(until_column.is_(None), until_column < now)
    candidates = select(id_column).where(due, free).order_by(*order_by).limit(limit)
    if db.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(db.scalars(candidates))
    if not ids:
        return []
    db.execute(
        update(id_column.class_)
        .where(id_column.in_(ids), due, free)
        .values({holder_column: holder, until_column: now + lease})
        # Objects of these rows already in the session get the new holder from the database.
        .execution_options(synchronize_session="fetch")
    )
    return ids


def claim(db: Session, worker_id: str, *, limit: int = 50) -> list[OutboxEvent]:
    """Take up to `limit` due events for this worker; the caller commits right after."""
    now = utcnow()
    ids = lease_due(
        db,
        OutboxEvent.id,
        due=OutboxEvent.done_at.is_(None) & (OutboxEvent.available_at <= now),
        order_by=[OutboxEvent.id],
        holder_column=OutboxEvent.claimed_by,
        until_column=OutboxEvent.claimed_until,
        holder=worker_id,
        now=now,
        lease=timedelta(seconds=CLAIM_SECONDS),
        limit=limit,
    )
    if not ids:
        return []
    return list(
        db.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.id.in_(ids), OutboxEvent.claimed_by == worker_id)
            .order_by(OutboxEvent.id)
        )
    )


def mark_done(db: Session, event: OutboxEvent) -> None:
    event.done_at = utcnow()
    event.claimed_until = None
    event.attempts += 1


def mark_failed(db: Session, event: OutboxEvent, error: str) -> None:
    """Retry later with exponential back-off (30 s, 1 min, 2 min, ... up to 6 h)."""
    event.attempts += 1
    event.last_error = error[:2000]
    event.claimed_until = None
    backoff = min(timedelta(seconds=30 * 2 ** min(event.attempts - 1, 16)), MAX_BACKOFF)
    event.available_at = utcnow() + backoff


STUCK_LIMIT = 200


def stuck_events(db: Session, *, limit: int = STUCK_LIMIT) -> list[OutboxEvent]:
    """Work that failed at least once and is not done, the most tried first: what, why, when
    next (the admins' page)."""
    return list(
        db.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.done_at.is_(None), OutboxEvent.attempts > 0)
            .order_by(OutboxEvent.attempts.desc(), OutboxEvent.id)
            .limit(limit)
        )
    )


def retry_now(db: Session, event_id: int) -> OutboxEvent:
    """An admin skips the back-off: the event is due now and its lease is dropped, so the
    worker's next claim takes it. Work already done, or unknown, is a 404."""
    event = db.get(OutboxEvent, event_id)
    if event is None or event.done_at is not None:
        raise NotFound()
    event.available_at = utcnow()
    event.claimed_until = None
    return event
