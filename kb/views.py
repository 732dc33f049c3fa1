"""Article views: like thread views (community.core.viewcount), once per viewer per article per
day, buffered in memory and written in batches."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import date, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from community.core.clock import utcnow
from community.core.db import begin_write
from community.core.viewcount import MAX_BUFFER, store_new_views
from kb.models import Article, ArticleView

logger = logging.getLogger(__name__)


class ArticleViews:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self._pending: set[tuple[int, str, date]] = set()
        self._lock = threading.Lock()
        self._last_prune: date | None = None

    def record(self, article_id: int, key: str) -> None:
        with self._lock:
            self._pending.add((article_id, key, utcnow().date()))
            full = len(self._pending) >= MAX_BUFFER
        if full:
            self.flush()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Store buffered views; return how many were new. Failed batches are kept for later."""
        with self._lock:
            batch, self._pending = self._pending, set()
        if not batch:
            return 0
        try:
            with self._session_factory() as db:
                begin_write(db)
                added = self._store(db, batch)
                db.commit()
        except SQLAlchemyError:
            logger.exception("could not store %d article views; will retry", len(batch))
            with self._lock:
                self._pending |= batch
            return 0
        return added

    def _store(self, db: Session, batch: set[tuple[int, str, date]]) -> int:
        article_ids = {article_id for article_id, _key, _day in batch}
        existing = set(db.scalars(select(Article.id).where(Article.id.in_(article_ids))))
        rows: list[dict[str, object]] = [
            {"article_id": article_id, "viewer_key": key, "day": day}
            for article_id, key, day in sorted(batch)
            if article_id in existing
        ]
        added = 0
        if rows:
            stored = store_new_views(db, ArticleView, ArticleView.article_id, rows)
            for article_id, count in sorted(Counter(row[0] for row in stored).items()):
                db.execute(
                    update(Article)
                    .where(Article.id == article_id)
                    .values(view_count=Article.view_count + count)
                )
            added = len(stored)
        today = utcnow().date()
        if self._last_prune != today:
            db.execute(delete(ArticleView).where(ArticleView.day < today - timedelta(days=1)))
            self._last_prune = today
        return added
