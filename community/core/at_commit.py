"""Writes recorded during a transaction and sent just before its COMMIT.

Some rows are everyone's: a forum's counters take every answer in the forum, a thread's waiting
search event every vote in the thread. PostgreSQL keeps a row it updated (or locked) locked until
the transaction ends, so a write made where the change happens holds that lock through the rest
of the request, and other requests wait. Recorded here and sent last, the lock lasts one
statement and the commit.

The kinds are sent in the order given when each is made (`order`, lowest first): writes that
lock rows few others touch (a thread's counters, an outbox event's waiting row) go before those
that lock rows everyone shares (a forum's counters), so the widest lock is taken last and held
shortest.

Nothing is lost or sent twice: the writes are part of the transaction. A rollback drops them (a
savepoint's rollback only those recorded inside it); a transaction closed without a commit
forgets them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

Item = TypeVar("Item")

# Each kind's turn at commit, lowest first: one global order of locks, so that two transactions
# never wait for each other in a cycle. A thread's row comes before the outbox events about the
# thread (a first answer already locked it, changing its status), and those before the rows
# every writer in a forum shares.
COUNTERS_ORDER = 10  # a post's, a thread's and an author's counters
OUTBOX_ORDER = 20  # an outbox event's waiting row: locked by the writers of the same thing
SHARED_COUNTERS_ORDER = 30  # a forum's counters: every answer and question in it


@dataclass(frozen=True, slots=True)
class _Recorded(Generic[Item]):
    transaction: SessionTransaction  # where it was recorded (a savepoint's rollback drops it)
    item: Item


class Deferred(Generic[Item]):
    """Items of one kind recorded with `add` and handed to `send` (once per commit, all of them,
    in the order recorded) just before the transaction commits, after the kinds of a lower
    `order`. Make one per kind at import time: the Session listeners are registered once, for
    every session."""

    def __init__(
        self, name: str, send: Callable[[Session, list[Item]], None], *, order: int
    ) -> None:
        self.key = f"at_commit.{name}"
        if any(kind.key == self.key for kind in _KINDS):
            # Both would take the items recorded under the one key: the first sends them all.
            raise ValueError(f"an at-commit kind named {name!r} is already made")
        self.send = send
        self.order = order
        _KINDS.append(self)
        _KINDS.sort(key=lambda kind: kind.order)
        event.listen(Session, "after_soft_rollback", self._after_soft_rollback)
        event.listen(Session, "after_transaction_end", self._after_transaction_end)

    def add(self, db: Session, item: Item) -> None:
        transaction = db.get_nested_transaction() or db.get_transaction() or db.begin()
        recorded: list[_Recorded[Item]] = db.info.setdefault(self.key, [])
        recorded.append(_Recorded(transaction, item))

    def _before_commit(self, db: Session) -> None:
        if db.in_nested_transaction():
            return  # a savepoint released: the outer transaction's commit sends them
        recorded: list[_Recorded[Item]] = db.info.pop(self.key, [])
        if recorded:
            self.send(db, [entry.item for entry in recorded])

    def _after_soft_rollback(self, db: Session, previous: SessionTransaction) -> None:
        recorded: list[_Recorded[Item]] | None = db.info.get(self.key)
        if recorded:
            db.info[self.key] = [e for e in recorded if not _within(e.transaction, previous)]

    def _after_transaction_end(self, db: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:
            db.info.pop(self.key, None)  # closed without a commit (a commit sent them already)


_KINDS: list[Deferred[Any]] = []


@event.listens_for(Session, "before_commit")
def _send_all(db: Session) -> None:
    if not db.in_nested_transaction() and any(kind.key in db.info for kind in _KINDS):
        # The session's own pending changes first (the commit would flush them after these
        # hooks): the last statement before COMMIT is then the widest lock's.
        db.flush()
    for kind in _KINDS:
        kind._before_commit(db)


def _within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False
