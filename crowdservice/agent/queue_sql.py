"""The queue's clock in SQL, so the database pages and counts the queue without Python reading
every active escalation: whether the resolution clock is stopped right now, the seconds left
until the due time that matters, overdue or not, and "on a visible thread". The same
arithmetic in Python, for one escalation, is crowdservice/agent/clocks.py.

`Escalation.queue_due_at` holds the due time that matters with the pauses that ended; a pause
still running adds the time since `waiting_since`, so for an item waiting on the customer the
seconds left stay what they were when the wait began.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, exists, literal_column, not_, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from community.core.models import Thread, Visibility
from crowdservice.models import ACTIVE_ESCALATION, Escalation


class epoch_seconds(FunctionElement[float]):  # noqa: N801 - an SQL function, named as one
    """A UTC timestamp as seconds since 1970, on PostgreSQL and SQLite."""

    type = Float()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds)
def _epoch_postgresql(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"CAST(EXTRACT(EPOCH FROM {value}) AS DOUBLE PRECISION)"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC as naive text, which julianday() reads as UTC (day 2440587.5 is 1970).
    value = compiler.process(element.clauses, **kw)
    return f"((julianday({value}) - 2440587.5) * 86400.0)"


def active() -> ColumnElement[bool]:
    """Active escalations, written as the partial indexes' condition is (literal values, so
    PostgreSQL can use those indexes whatever plan it caches for the statement)."""
    return Escalation.status.in_([literal_column(f"'{value}'") for value in ACTIVE_ESCALATION])


def on_visible_thread() -> ColumnElement[bool]:
    """The thread is visible: none of the few threads not shown is this one. Checked against
    those (ix_threads_not_visible), as joining the visible threads read every one of them."""
    shown: ColumnElement[str] = literal_column(f"'{Visibility.VISIBLE.value}'")
    hidden = aliased(Thread, name="hidden_threads")
    return not_(exists().where(hidden.id == Escalation.thread_id, hidden.visibility != shown))


def pause_running(now: datetime) -> ColumnElement[bool]:
    """The resolution clock is stopped: waiting on the customer after the first response
    (the first-response clock never pauses)."""
    return and_(
        Escalation.first_response_at.is_not(None),
        Escalation.waiting_since.is_not(None),
        Escalation.waiting_since <= now,
    )


def overdue(now: datetime, *, paused: bool | None = None) -> ColumnElement[bool]:
    """The due time that matters has passed. `paused` says which rows the caller selected
    (True: only those whose pause runs, False: only the others, None: both)."""
    running = Escalation.queue_due_at < now
    # A stopped clock keeps the time left when the wait began.
    stopped = Escalation.queue_due_at < Escalation.waiting_since
    if paused is None:
        return or_(and_(pause_running(now), stopped), and_(not_(pause_running(now)), running))
    return stopped if paused else running


def seconds_left(now: datetime, *, paused: bool) -> ColumnElement[float]:
    """Seconds until the due time that matters (negative once missed), for rows whose pause
    runs (`paused`) or for the others: the queue's order."""
    due = epoch_seconds(Escalation.queue_due_at)
    if paused:
        return due - epoch_seconds(Escalation.waiting_since)
    return due - now.timestamp()
