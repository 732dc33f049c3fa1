"""Telling the search side what changed. Services call these inside their transaction; the
worker (kb.tasks) re-reads the rows after commit, rescoring, promoting and indexing them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from community.core import outbox

THREAD_CHANGED = "search.thread"
ARTICLE_CHANGED = "search.article"
BRAND_SEARCH_SETTINGS = "search.settings"


def thread_changed(db: Session, thread_id: int) -> None:
    outbox.enqueue(db, THREAD_CHANGED, {"thread_id": thread_id}, dedupe_key=f"thread:{thread_id}")


def article_changed(db: Session, article_id: int) -> None:
    outbox.enqueue(
        db, ARTICLE_CHANGED, {"article_id": article_id}, dedupe_key=f"article:{article_id}"
    )


def brand_search_settings_changed(db: Session, brand_id: int) -> None:
    outbox.enqueue(
        db, BRAND_SEARCH_SETTINGS, {"brand_id": brand_id}, dedupe_key=f"brand:{brand_id}"
    )
