"""Rows a request should not wait to write (views, search log): kept in memory and stored in
one short transaction per flush, every few seconds from the app's lifespan, at shutdown and,
for a buffer that flushes when full, whenever it fills. A flush that fails keeps its items for
the next one, so a busy database delays the rows but never fails or slows the request."""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable
from typing import Generic, Literal, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from community.core.db import begin_write

Item = TypeVar("Item", bound=Hashable)


class WriteBuffer(Generic[Item]):
    """Subclasses say how a batch is stored (`_store`, returning how many rows were new)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        what: str,
        limit: int,
        unique: bool,
        when_full: Literal["flush", "drop"],
        logger: logging.Logger,
    ) -> None:
        """`unique`: an item already waiting is not added again. `when_full`: "flush" stores
        the batch at once; "drop" loses new items until the next flush."""
        self._session_factory = session_factory
        self._what = what
        self._limit = limit
        self._unique = unique
        self._flush_when_full = when_full == "flush"
        self._logger = logger
        self._pending: list[Item] = []
        self._waiting: set[Item] = set()  # what a unique buffer holds, to find repeats
        self._lock = threading.Lock()

    def _add(self, item: Item) -> None:
        with self._lock:
            if not self._flush_when_full and len(self._pending) >= self._limit:
                return
            if self._unique:
                if item in self._waiting:
                    return
                self._waiting.add(item)
            self._pending.append(item)
            full = self._flush_when_full and len(self._pending) >= self._limit
        if full:
            self.flush()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Store the buffered items; return how many were new. A failed batch is kept."""
        with self._lock:
            batch, self._pending, self._waiting = self._pending, [], set()
        if not batch:
            return 0
        try:
            with self._session_factory() as db:
                begin_write(db)
                added = self._store(db, batch)
                db.commit()
        except SQLAlchemyError:
            self._logger.exception("could not store %d %s; will retry", len(batch), self._what)
            with self._lock:
                kept = batch + self._pending
                if self._unique:
                    kept = list(dict.fromkeys(kept))
                    self._waiting = set(kept)
                self._pending = kept
            return 0
        return added

    def _store(self, db: Session, batch: list[Item]) -> int:
        raise NotImplementedError
