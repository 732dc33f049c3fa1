"""Telling the search side what changed. Services call these inside their transaction; the
worker (kb.tasks) re-reads the rows after commit, rescoring, promoting and indexing them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from community.core import outbox

THREAD_CHANGED = "search.thread"
ARTICLE_CHANGED = "search.article"
BRAND_SEARCH_SETTINGS = "search.settings"
# A forum's access or a brand's archived state changed: the worker indexes every document of it
# again (kb.tasks), so their `access` and `brand_archived` fields follow.
SCOPE_CHANGED = "search.scope"


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


def forum_access_changed(db: Session, forum_id: int) -> None:
    """Call after changing `Forum.access` (in the same transaction). Searches already leave out
    the forums a reader may not read as the database says at that moment (kb.search_access);
    this brings the forum's documents in line, thread by thread, through the worker."""
    outbox.enqueue(db, SCOPE_CHANGED, {"forum_id": forum_id}, dedupe_key=f"forum:{forum_id}")


def brand_archived(db: Session, brand_id: int) -> None:
    """Call after archiving a brand or bringing it back (after changing `Brand.archived_at`, in
    the same transaction): every thread, solution and article of it is indexed again."""
    outbox.enqueue(db, SCOPE_CHANGED, {"brand_id": brand_id}, dedupe_key=f"brand:{brand_id}")
