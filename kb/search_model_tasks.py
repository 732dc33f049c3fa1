"""The worker's side of a change of a brand's semantic search model (kb.search_model).

Meilisearch refuses to add a `userProvided` embedder to an index whose documents do not name
it in `_vectors`: every document must carry a vector or an explicit null for it. So before the
brand's indexes get their new embedders, each document they hold is given null for every new
embedder (a partial update: its text and the other models' vectors stay); embedders no longer
used are removed; only then are the index settings applied (Indexer.ensure_brand(force=True),
as for any settings change). The
vector events queued with the change then send each document again with its vector, computed
or found stored. Until then the document is found by its words.

A document deleted by another worker between the listing and the partial update comes back as
a bare shell (an id and null vectors); the ones whose thread or article is no longer live are
asked to be indexed again, which deletes them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from meilisearch.errors import MeilisearchApiError, MeilisearchCommunicationError
from meilisearch.errors import MeilisearchTimeoutError as MeiliTimeout
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from community import indexing
from community.db import begin_write
from community.models import Brand, Forum, Thread, Visibility
from community.outbox import OutboxEvent
from kb import vectors
from kb.models import Article, ArticleStatus
from kb.search import SearchEngine, SearchUnavailable
from kb.search_model import MODEL_CHANGED
from kb.tasks import Indexer

if TYPE_CHECKING:
    from community.worker import Worker

PAGE = 1000


def _meili(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except (MeilisearchApiError, MeilisearchCommunicationError, MeiliTimeout) as exc:
        raise SearchUnavailable(str(exc)) from exc


def _get(engine: SearchEngine, path: str) -> Any:
    return _meili(lambda: engine.client().http.get(path))


def _embedder_names(engine: SearchEngine, uid: str) -> set[str]:
    return set(dict(_get(engine, f"indexes/{uid}/settings/embedders") or {}))


def _remove(engine: SearchEngine, uid: str, names: list[str]) -> None:
    """Remove embedders (and their vectors) from the index. Not through the client's
    update_settings: meilisearch-python 0.43 fails on the null that removes one."""
    path = f"indexes/{uid}/settings/embedders"
    task = _meili(lambda: engine.client().http.patch(path, dict.fromkeys(names)))
    engine.wait(int(task["taskUid"]))


def _document_ids(engine: SearchEngine, uid: str) -> list[str]:
    ids: list[str] = []
    while True:
        path = f"indexes/{uid}/documents?fields=id&limit={PAGE}&offset={len(ids)}"
        page = _get(engine, path)
        results = page.get("results") or []
        ids.extend(str(document["id"]) for document in results)
        if len(results) < PAGE:
            return ids


def _fill(engine: SearchEngine, uid: str, added: list[str]) -> list[str]:
    """Give every document of the index null for each added embedder; its ids."""
    ids = _document_ids(engine, uid)
    index = engine.client().index(uid)
    tasks = []
    for start in range(0, len(ids), PAGE):
        chunk = [
            {"id": doc_id, "_vectors": dict.fromkeys(added)} for doc_id in ids[start : start + PAGE]
        ]
        tasks.append(int(_meili(partial(index.update_documents, chunk, primary_key="id")).task_uid))
    for task_uid in tasks:
        engine.wait(task_uid)
    return ids


class ModelChange:
    def __init__(self, indexer: Indexer, session_factory: sessionmaker[Session]) -> None:
        self.indexer = indexer
        self.session_factory = session_factory

    def run(self, brand_ids: list[int]) -> None:
        for brand_id in brand_ids:
            self._run(brand_id)

    def _run(self, brand_id: int) -> None:
        engine = self.indexer.engine
        with self.session_factory() as db:
            brand = db.get(Brand, brand_id)
            if brand is None:
                return
            keys = [spec.key for spec in vectors.model_specs(brand, engine.default_model)]
            db.expunge(brand)
        threads_uid, kb_uid = engine.threads_index(brand.slug), engine.kb_index(brand.slug)
        filled: dict[str, list[str]] = {}
        for uid in (threads_uid, kb_uid):
            if not engine.has_index(uid):
                continue  # created with the embedders by ensure_brand
            current = _embedder_names(engine, uid)
            if current - set(keys):
                _remove(engine, uid, sorted(current - set(keys)))
            added = [key for key in keys if key not in current]
            if added:
                filled[uid] = _fill(engine, uid, added)
        self.indexer.ensure_brand(brand, force=True)
        if filled:
            self._reindex_gone(brand_id, filled.get(threads_uid, []), filled.get(kb_uid, []))

    def _reindex_gone(self, brand_id: int, thread_docs: list[str], kb_docs: list[str]) -> None:
        thread_ids = {int(doc) for doc in thread_docs if doc.isdigit()}
        thread_ids |= {
            int(doc.removeprefix("solution-"))
            for doc in kb_docs
            if doc.startswith("solution-") and doc.removeprefix("solution-").isdigit()
        }
        article_ids = {
            int(doc.removeprefix("article-"))
            for doc in kb_docs
            if doc.startswith("article-") and doc.removeprefix("article-").isdigit()
        }
        with self.session_factory() as db:
            begin_write(db)
            visible = set(
                db.scalars(
                    select(Thread.id)
                    .join(Forum, Forum.id == Thread.forum_id)
                    .where(Forum.brand_id == brand_id, Thread.visibility == Visibility.VISIBLE)
                )
            )
            live = set(
                db.scalars(
                    select(Article.id).where(
                        Article.brand_id == brand_id,
                        Article.status == ArticleStatus.PUBLISHED,
                        Article.obsolete.is_(False),
                    )
                )
            )
            for thread_id in sorted(thread_ids - visible):
                indexing.thread_changed(db, thread_id)
            for article_id in sorted(article_ids - live):
                indexing.article_changed(db, article_id)
            db.commit()


def register(worker: Worker, indexer: Indexer) -> None:
    change = ModelChange(indexer, worker.session_factory)

    def on_changed(_db: Session, events: list[OutboxEvent]) -> Callable[[], None]:
        brand_ids = sorted({int(event.payload["brand_id"]) for event in events})
        return lambda: change.run(brand_ids)

    worker.register_batch(MODEL_CHANGED, on_changed)
