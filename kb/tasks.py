"""Worker handlers that keep the knowledge base and the search indexes in step with the
database. A changed thread goes through two named steps: the KB's promotion (kb.promotion.refresh:
rescore, then promote or withdraw its community solution), then indexing (Indexer.threads: upsert
or delete its documents as the database now says, waiting for Meilisearch to confirm each write).
Failures raise, so the outbox retries with back-off."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from community.core import outbox
from community.core.db import begin_write
from community.core.indexing import (
    ARTICLE_CHANGED,
    BRAND_SEARCH_SETTINGS,
    SCOPE_CHANGED,
    THREAD_CHANGED,
)
from community.core.jobs import Worker
from community.core.models import Brand, Forum, Post, Thread, Visibility
from community.core.outbox import OutboxEvent
from community.core.page_store import shared_store
from kb import duplicates, promotion, vector_computing, vectors
from kb.documents import article_document, solution_document, thread_document
from kb.models import Article, ArticleStatus, Solution
from kb.reindex import reindex_brand, request_vectors
from kb.search import KB_SETTINGS, THREAD_SETTINGS, SearchEngine, SearchUnavailable, synonym_map
from kb.search_model import MODEL_CHANGED


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


def brand_embedders(engine: SearchEngine, brand: Brand) -> dict[str, dict[str, Any]]:
    """The Meilisearch embedders of the brand's indexes: one per model it searches with."""
    return {
        spec.key: spec.meili_settings() for spec in vectors.model_specs(brand, engine.default_model)
    }


class Indexer:
    """Builds documents from the database and writes them to a SearchEngine."""

    def __init__(
        self, engine: SearchEngine, session_factory: sessionmaker[Session] | None = None
    ) -> None:
        self.engine = engine
        # For rebuilding a brand's indexes when its model changes (see ensure_brand).
        self.session_factory = session_factory
        self._ready: set[str] = set()

    def ensure_brand(self, brand: Brand, *, force: bool = False) -> None:
        synonyms = synonym_map(brand.synonyms or [])
        embedders = brand_embedders(self.engine, brand)
        for uid, settings in (
            (self.engine.kb_index(brand.slug), KB_SETTINGS),
            (self.engine.threads_index(brand.slug), THREAD_SETTINGS),
        ):
            # Keyed by the models too: a brand that changed model gets its embedders now,
            # before documents carrying the new vectors arrive.
            ready = f"{uid}|{','.join(sorted(embedders))}"
            if force or ready not in self._ready:
                try:
                    self.engine.ensure_index(uid, settings, synonyms, embedders)
                except SearchUnavailable as exc:
                    if exc.code != "vector_embedding_error" or self.session_factory is None:
                        raise
                    # Meilisearch cannot add a model to an index whose documents have no
                    # vectors for it: build the brand's indexes anew beside the live ones
                    # (documents with the vectors known, the rest asked for) and swap.
                    self._rebuild(brand.id)
                    self._ready.update(
                        f"{name}|{','.join(sorted(embedders))}"
                        for name in (
                            self.engine.kb_index(brand.slug),
                            self.engine.threads_index(brand.slug),
                        )
                    )
                    return
                self._ready.add(ready)

    def _rebuild(self, brand_id: int) -> None:
        assert self.session_factory is not None
        with self.session_factory() as db:
            brand = db.get(Brand, brand_id)
            if brand is not None:
                reindex_brand(db, self.engine, brand)
        request_vectors(self.session_factory, self.engine, brand_id)

    def threads(self, db: Session, thread_ids: list[int]) -> Callable[[], None]:
        """Build the threads' documents (and their live community solutions') from the
        database; return the index writes to make after the caller commits (so no database
        lock is held while Meilisearch works). Reads only: promotion is kb.promotion's step."""
        writes = _Writes()
        loaded = list(
            db.scalars(
                select(Thread)
                .where(Thread.id.in_(thread_ids))
                .options(
                    selectinload(Thread.forum).selectinload(Forum.brand),
                    selectinload(Thread.tags),
                )
            )
        )
        brands: dict[int, Brand] = {}
        specs: dict[int, list[vectors.ModelSpec]] = {}
        for thread in loaded:
            brand = thread.forum.brand
            if brand.id not in specs:
                specs[brand.id] = vectors.model_specs(brand, self.engine.default_model)
        keys = sorted({spec.key for brand_specs in specs.values() for spec in brand_specs})
        stored = vectors.stored(db, [vectors.thread_subject(t.id) for t in loaded], keys)
        live_solutions = {
            solution.thread_id: solution
            for solution in db.scalars(
                select(Solution).where(
                    Solution.thread_id.in_(thread_ids), Solution.withdrawn_at.is_(None)
                )
            )
        }
        for thread in loaded:
            brand = thread.forum.brand
            brands[brand.id] = brand
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
            subject = vectors.thread_subject(thread.id)
            brand_specs = specs[brand.id]
            vectors_field = vectors.vectors_field(brand_specs, subject, stored)
            if thread.visibility == Visibility.VISIBLE:
                document = thread_document(thread, posts)
                if brand_specs:
                    document["_vectors"] = vectors_field
                    digest = vectors.text_hash(vectors.thread_text(thread, posts))
                    if vectors.missing(brand_specs, subject, digest, stored):
                        vectors.request_thread_vectors(db, thread.id)
                writes.upserts[threads_uid].append(document)
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
            live_solution = live_solutions.get(thread.id)
            if live_solution is not None and superseded is None:
                solution = solution_document(live_solution, posts)
                if brand_specs:
                    solution["_vectors"] = vectors_field
                writes.upserts[kb_uid].append(solution)
            else:
                writes.deletes[kb_uid].append(f"solution-{thread.id}")
        return lambda: self._send(list(brands.values()), writes)

    def articles(self, db: Session, article_ids: list[int]) -> Callable[[], None]:
        writes = _Writes()
        loaded = list(
            db.scalars(
                select(Article)
                .where(Article.id.in_(article_ids))
                .options(selectinload(Article.brand), selectinload(Article.forum))
            )
        )
        brands: dict[int, Brand] = {}
        specs: dict[int, list[vectors.ModelSpec]] = {}
        for article in loaded:
            if article.brand.id not in specs:
                specs[article.brand.id] = vectors.model_specs(
                    article.brand, self.engine.default_model
                )
        keys = sorted({spec.key for brand_specs in specs.values() for spec in brand_specs})
        stored = vectors.stored(db, [vectors.article_subject(a.id) for a in loaded], keys)
        for article in loaded:
            brands[article.brand.id] = article.brand
            uid = self.engine.kb_index(article.brand.slug)
            if article.is_live:
                document = article_document(article)
                brand_specs = specs[article.brand.id]
                if brand_specs:
                    subject = vectors.article_subject(article.id)
                    document["_vectors"] = vectors.vectors_field(brand_specs, subject, stored)
                    digest = vectors.text_hash(vectors.article_text(article))
                    if vectors.missing(brand_specs, subject, digest, stored):
                        vectors.request_article_vectors(db, article.id)
                writes.upserts[uid].append(document)
            else:
                writes.deletes[uid].append(f"article-{article.id}")
        return lambda: self._send(list(brands.values()), writes)

    def _send(self, brands: list[Brand], writes: _Writes) -> None:
        for brand in brands:
            self.ensure_brand(brand)
        writes.send(self.engine)


def index_scope_again(db: Session, events: list[OutboxEvent]) -> None:
    """The worker's side of community.core.indexing.forum_access_changed and brand_archived: an
    indexing event for every visible thread of the forums and brands named (and every article of
    the brands), written now; the worker then indexes them in its usual batches."""
    forum_ids = {int(e.payload["forum_id"]) for e in events if "forum_id" in e.payload}
    brand_ids = {int(e.payload["brand_id"]) for e in events if "brand_id" in e.payload}
    in_scope = Forum.id.in_(forum_ids) | Forum.brand_id.in_(brand_ids)
    thread_ids = db.scalars(
        select(Thread.id)
        .join(Forum, Forum.id == Thread.forum_id)
        .where(in_scope, Thread.visibility == Visibility.VISIBLE)
        .order_by(Thread.id)
    )
    outbox.enqueue_keyed_now(
        db, THREAD_CHANGED, [(f"thread:{tid}", {"thread_id": tid}) for tid in thread_ids]
    )
    article_ids = db.scalars(
        select(Article.id).where(Article.brand_id.in_(brand_ids)).order_by(Article.id)
    )
    outbox.enqueue_keyed_now(
        db, ARTICLE_CHANGED, [(f"article:{aid}", {"article_id": aid}) for aid in article_ids]
    )


class VectorJob:
    """The worker's side of kb.vectors: compute what threads and articles lack, with no
    database transaction open while the models run, then store the vectors and index the
    documents again with them. A model that cannot run fails the batch: the outbox retries it
    with back-off, and search stays lexical meanwhile."""

    def __init__(self, indexer: Indexer, session_factory: sessionmaker[Session]) -> None:
        self.indexer = indexer
        self.session_factory = session_factory

    def run(self, thread_ids: list[int], article_ids: list[int]) -> None:
        default = self.indexer.engine.default_model
        with self.session_factory() as db:
            needed = vector_computing.needed_vectors(db, default, thread_ids, article_ids)
        computed = vector_computing.compute(needed)
        with self.session_factory() as db:
            begin_write(db)
            vector_computing.store(db, computed)
            sends = [self.indexer.threads(db, thread_ids)] if thread_ids else []
            if article_ids:
                sends.append(self.indexer.articles(db, article_ids))
            db.commit()
        for send in sends:
            send()


class ModelChange:
    """The worker's side of a change of a brand's semantic search model (kb.search_model): the
    brand's indexes get the new model's embedders and lose the old ones. Meilisearch cannot add a
    `userProvided` embedder to an index whose documents have no vectors for it, so Indexer's
    ensure_brand then builds the brand's indexes anew beside the live ones and swaps them in
    (searchers never see an empty index); the vector events queued with the change send each
    document again with its new vector. Until then a document is found by its words."""

    def __init__(self, indexer: Indexer, session_factory: sessionmaker[Session]) -> None:
        self.indexer = indexer
        self.session_factory = session_factory

    def run(self, brand_ids: list[int]) -> None:
        for brand_id in brand_ids:
            with self.session_factory() as db:
                brand = db.get(Brand, brand_id)
                if brand is None:
                    continue
                db.expunge(brand)
            self.indexer.ensure_brand(brand, force=True)


def register(worker: Worker) -> Indexer:
    """Search indexing, vectors, possible duplicates and search-model changes; the indexer is
    returned for the worker's callers (tests, benchmarks) that drive it directly."""
    indexer = Indexer(SearchEngine(worker.settings), worker.session_factory)
    engine = indexer.engine
    job = VectorJob(indexer, worker.session_factory)
    duplicates.register(worker, engine)

    pages = shared_store(worker.settings)

    def on_threads(db: Session, events: list[OutboxEvent]) -> Callable[[], None]:
        thread_ids = sorted({int(event.payload["thread_id"]) for event in events})
        changes = promotion.refresh(db, thread_ids)
        index = indexer.threads(db, thread_ids)
        if pages is None or not any(change.changed for change in changes.values()):
            return index

        def index_and_refresh_pages() -> None:
            # After the commit: a thread's page and the KB show its new KB status at once.
            pages.bump()
            index()

        return index_and_refresh_pages

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

    def on_vectors(_db: Session, events: list[OutboxEvent]) -> Callable[[], None]:
        thread_ids = sorted(
            {int(e.payload["thread_id"]) for e in events if "thread_id" in e.payload}
        )
        article_ids = sorted(
            {int(e.payload["article_id"]) for e in events if "article_id" in e.payload}
        )
        return lambda: job.run(thread_ids, article_ids)

    worker.register_batch(THREAD_CHANGED, on_threads)
    worker.register_batch(vectors.VECTORS_NEEDED, on_vectors)
    worker.register_batch(ARTICLE_CHANGED, on_articles)
    worker.register_batch(BRAND_SEARCH_SETTINGS, on_settings)

    def on_scope(db: Session, events: list[OutboxEvent]) -> None:
        index_scope_again(db, events)

    worker.register_batch(SCOPE_CHANGED, on_scope)
    change = ModelChange(indexer, worker.session_factory)

    def on_changed(_db: Session, events: list[OutboxEvent]) -> Callable[[], None]:
        brand_ids = sorted({int(event.payload["brand_id"]) for event in events})
        return lambda: change.run(brand_ids)

    worker.register_batch(MODEL_CHANGED, on_changed)
    return indexer
