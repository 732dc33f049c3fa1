"""Article view counts, buffered in memory and added in one statement per article at flush."""

from __future__ import annotations

import logging
import threading
from collections import Counter

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from community.db import begin_write
from kb.models import Article

logger = logging.getLogger(__name__)


class ArticleViews:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self._pending: Counter[int] = Counter()
        self._lock = threading.Lock()

    def record(self, article_id: int) -> None:
        with self._lock:
            self._pending[article_id] += 1

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, Counter()
        if not batch:
            return 0
        try:
            with self._session_factory() as db:
                begin_write(db)
                for article_id, count in sorted(batch.items()):
                    db.execute(
                        update(Article)
                        .where(Article.id == article_id)
                        .values(view_count=Article.view_count + count)
                    )
                db.commit()
        except SQLAlchemyError:
            logger.exception("could not store article views; will retry")
            with self._lock:
                self._pending.update(batch)
            return 0
        return sum(batch.values())
