"""Writes recorded during a transaction and sent just before its COMMIT.

Some rows are everyone's: a forum's counters take every answer in the forum, a thread's waiting
search event every vote in the thread. PostgreSQL keeps a row it updated (or locked) locked until
the transaction ends, so a write made where the change happens holds that lock through the rest
of the request, and other requests wait. Recorded here and sent last, the lock lasts one
statement and the commit.

Nothing is lost or sent twice: the writes are part of the transaction. A rollback drops them (a
savepoint's rollback only those recorded inside it); a transaction closed without a commit
forgets them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class _Recorded(Generic[Item]):
    transaction: SessionTransaction  # where it was recorded (a savepoint's rollback drops it)
    item: Item


class Deferred(Generic[Item]):
    """Items of one kind recorded with `add` and handed to `send` (once per commit, all of them,
    in the order recorded) just before the transaction commits. Make one per kind at import
    time: the Session listeners are registered once, for every session."""

    def __init__(self, name: str, send: Callable[[Session, list[Item]], None]) -> None:
        self.key = f"at_commit.{name}"
        self.send = send
        event.listen(Session, "before_commit", self._before_commit)
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


def _within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False
