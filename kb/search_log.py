"""Recording searches without writing in the search request: rows are buffered in memory and
stored in batches (like views), so a busy database never slows or fails a search."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from community.core.clock import utcnow
from community.core.db import begin_write
from kb.models import SearchQuery

logger = logging.getLogger(__name__)
MAX_BUFFER = 2_000


@dataclass(frozen=True, slots=True)
class _Entry:
    brand_id: int
    query: str
    scope: str
    locale: str
    result_count: int
    degraded: bool
    user_id: int | None
    at: object


class SearchLog:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self._pending: list[_Entry] = []
        self._lock = threading.Lock()

    def record(
        self,
        *,
        brand_id: int,
        query: str,
        scope: str,
        locale: str,
        result_count: int,
        degraded: bool,
        user_id: int | None,
    ) -> None:
        entry = _Entry(brand_id, query, scope, locale, result_count, degraded, user_id, utcnow())
        with self._lock:
            if len(self._pending) < MAX_BUFFER:  # under a flood, analytics may drop; search never
                self._pending.append(entry)

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            with self._session_factory() as db:
                begin_write(db)
                db.add_all(
                    SearchQuery(
                        brand_id=entry.brand_id,
                        query=entry.query,
                        scope=entry.scope,
                        locale=entry.locale,
                        result_count=entry.result_count,
                        degraded=entry.degraded,
                        user_id=entry.user_id,
                        created_at=entry.at,
                    )
                    for entry in batch
                )
                db.commit()
        except SQLAlchemyError:
            logger.exception("could not store %d searches; will retry", len(batch))
            with self._lock:
                self._pending = batch + self._pending
            return 0
        return len(batch)
