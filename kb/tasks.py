"""Worker handlers that keep the knowledge base and the search indexes in step with the
database: rescore and promote changed threads, then upsert or delete their documents, waiting
for Meilisearch to confirm each write. Failures raise, so the outbox retries with back-off."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from community.indexing import ARTICLE_CHANGED, BRAND_SEARCH_SETTINGS, THREAD_CHANGED
from community.models import Brand, Forum, Post, Thread, Visibility
from community.outbox import OutboxEvent
from kb import promotion
from kb.documents import article_document, solution_document, thread_document
from kb.models import Article, ArticleStatus
from kb.scoring import rescore
from kb.search import KB_SETTINGS, THREAD_SETTINGS, SearchEngine, synonym_map

if TYPE_CHECKING:
    from community.worker import Worker


@dataclass
class _Writes:
    upserts: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    deletes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def send(self, engine: SearchEngine) -> None:
        tasks = [engine.upsert(uid, docs) for uid, docs in self.upserts.items()]
        tasks += [engine.delete(uid, ids) for uid, ids in self.deletes.items()]
        for task in tasks:
            if task is not None:
                engine.wait(task)


class Indexer:
    """Builds documents from the database and writes them to a SearchEngine."""

    def __init__(self, engine: SearchEngine) -> None:
        self.engine = engine
        self._ready: set[str] = set()

    def ensure_brand(self, brand: Brand, *, force: bool = False) -> None:
        synonyms = synonym_map(brand.synonyms or [])
        for uid, settings in (
            (self.engine.kb_index(brand.slug), KB_SETTINGS),
            (self.engine.threads_index(brand.slug), THREAD_SETTINGS),
        ):
            if force or uid not in self._ready:
                self.engine.ensure_index(uid, settings, synonyms)
                self._ready.add(uid)

    def threads(self, db: Session, thread_ids: list[int]) -> Callable[[], None]:
        """Rescore and promote in the database; return the index writes to make after the
        caller commits (so no database lock is held while Meilisearch works)."""
        writes = _Writes()
        loaded = db.scalars(
            select(Thread)
            .where(Thread.id.in_(thread_ids))
            .options(
                selectinload(Thread.forum).selectinload(Forum.brand),
                selectinload(Thread.tags),
            )
        )
        brands: dict[int, Brand] = {}
        for thread in loaded:
            brand = thread.forum.brand
            brands[brand.id] = brand
            score = rescore(db, thread)
            change = promotion.apply(db, thread, score)
            posts = list(
                db.scalars(
                    select(Post)
                    .where(Post.thread_id == thread.id, Post.visibility == Visibility.VISIBLE)
                    .options(selectinload(Post.author))
                )
            )
            threads_uid, kb_uid = (
                self.engine.threads_index(brand.slug),
                self.engine.kb_index(brand.slug),
            )
            if thread.visibility == Visibility.VISIBLE:
                writes.upserts[threads_uid].append(thread_document(thread, posts))
            else:
                writes.deletes[threads_uid].append(str(thread.id))
            # A published article written from this thread supersedes its raw solution.
            superseded = db.scalar(
                select(Article.id).where(
                    Article.source_thread_id == thread.id,
                    Article.status == ArticleStatus.PUBLISHED,
                    Article.obsolete.is_(False),
                )
            )
            if change.solution_live and change.solution is not None and superseded is None:
                writes.upserts[kb_uid].append(solution_document(change.solution, posts))
            else:
                writes.deletes[kb_uid].append(f"solution-{thread.id}")
        return lambda: self._send(list(brands.values()), writes)

    def articles(self, db: Session, article_ids: list[int]) -> Callable[[], None]:
        writes = _Writes()
        loaded = db.scalars(
            select(Article)
            .where(Article.id.in_(article_ids))
            .options(selectinload(Article.brand), selectinload(Article.forum))
        )
        brands: dict[int, Brand] = {}
        for article in loaded:
            brands[article.brand.id] = article.brand
            uid = self.engine.kb_index(article.brand.slug)
            if article.is_live:
                writes.upserts[uid].append(article_document(article))
            else:
                writes.deletes[uid].append(f"article-{article.id}")
        return lambda: self._send(list(brands.values()), writes)

    def _send(self, brands: list[Brand], writes: _Writes) -> None:
        for brand in brands:
            self.ensure_brand(brand)
        writes.send(self.engine)


def register(worker: Worker, engine: SearchEngine) -> Indexer:
    indexer = Indexer(engine)

    def on_threads(db: Session, events: list[OutboxEvent]) -> Callable[[], None]:
        return indexer.threads(db, sorted({int(event.payload["thread_id"]) for event in events}))

    def on_articles(db: Session, events: list[OutboxEvent]) -> Callable[[], None]:
        return indexer.articles(db, sorted({int(event.payload["article_id"]) for event in events}))

    def on_settings(db: Session, events: list[OutboxEvent]) -> Callable[[], None]:
        brands = [
            brand
            for brand_id in {int(event.payload["brand_id"]) for event in events}
            if (brand := db.get(Brand, brand_id)) is not None
        ]

        def apply() -> None:
            for brand in brands:
                indexer.ensure_brand(brand, force=True)

        return apply

    worker.register_batch(THREAD_CHANGED, on_threads)
    worker.register_batch(ARTICLE_CHANGED, on_articles)
    worker.register_batch(BRAND_SEARCH_SETTINGS, on_settings)
    return indexer
