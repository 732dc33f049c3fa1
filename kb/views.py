"""Article views: like thread views (community.core.viewcount), once per viewer per article per
day, buffered in memory and written in batches."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from community.core.clock import utcnow
from community.core.viewcount import MAX_BUFFER, store_new_views
from community.core.write_buffer import WriteBuffer
from kb.models import Article, ArticleView

logger = logging.getLogger(__name__)


class ArticleViews(WriteBuffer[tuple[int, str, date]]):
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        super().__init__(
            session_factory,
            what="article views",
            limit=MAX_BUFFER,
            unique=True,
            when_full="flush",
            logger=logger,
        )
        self._last_prune: date | None = None

    def record(self, article_id: int, key: str) -> None:
        self._add((article_id, key, utcnow().date()))

    def _store(self, db: Session, batch: list[tuple[int, str, date]]) -> int:
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
