"""Recording searches without writing in the search request: rows are buffered in memory and
stored in batches (like views), so a busy database never slows or fails a search."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from community.core.clock import utcnow
from community.core.write_buffer import WriteBuffer
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


class SearchLog(WriteBuffer[_Entry]):
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        # Under a flood, analytics may drop entries; search never waits for them.
        super().__init__(
            session_factory,
            what="searches",
            limit=MAX_BUFFER,
            unique=False,
            when_full="drop",
            logger=logger,
        )

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
        self._add(_Entry(brand_id, query, scope, locale, result_count, degraded, user_id, utcnow()))

    def _store(self, db: Session, batch: list[_Entry]) -> int:
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
        return len(batch)
