"""Rebuilding search indexes from the database with no moment of an empty index, and rescoring
every thread. Used by `community reindex` and `community rescore` (and the importer)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from community.core.db import begin_write
from community.core.models import Brand, Forum, Post, Thread, Visibility
from kb import promotion, vectors
from kb.documents import article_document, solution_document, thread_document
from kb.models import Article, ArticleStatus, Solution
from kb.search import KB_SETTINGS, THREAD_SETTINGS, SearchEngine, synonym_map

BATCH = 500
Progress = Callable[[str, int, int], None]  # (label, done, total)


def _no_progress(_label: str, _done: int, _total: int) -> None:
    return None


def rescore_all(
    session_factory: sessionmaker[Session], *, progress: Progress = _no_progress
) -> int:
    """Recompute every thread's usefulness and apply promotion, in batches."""
    with session_factory() as db:
        ids = list(db.scalars(select(Thread.id).order_by(Thread.id)))
    for start in range(0, len(ids), BATCH):
        with session_factory() as db:
            promotion.refresh(db, ids[start : start + BATCH])
            db.commit()
        progress("rescore", min(start + BATCH, len(ids)), len(ids))
    return len(ids)


def _thread_batches(db: Session, brand: Brand) -> Iterator[list[Thread]]:
    ids = list(
        db.scalars(
            select(Thread.id)
            .join(Forum, Forum.id == Thread.forum_id)
            .where(Forum.brand_id == brand.id, Thread.visibility == Visibility.VISIBLE)
            .order_by(Thread.id)
        )
    )
    for start in range(0, len(ids), BATCH):
        yield list(
            db.scalars(
                select(Thread)
                .where(Thread.id.in_(ids[start : start + BATCH]))
                .options(
                    selectinload(Thread.forum).selectinload(Forum.brand),
                    selectinload(Thread.tags),
                )
            )
        )


def _posts_by_thread(db: Session, thread_ids: list[int]) -> dict[int, list[Post]]:
    grouped: dict[int, list[Post]] = {thread_id: [] for thread_id in thread_ids}
    for post in db.scalars(
        select(Post)
        .where(Post.thread_id.in_(thread_ids), Post.visibility == Visibility.VISIBLE)
        .options(selectinload(Post.author))
    ):
        grouped[post.thread_id].append(post)
    return grouped


@dataclass
class ReindexReport:
    threads: int = 0
    kb_entries: int = 0


def reindex_brand(
    db: Session, engine: SearchEngine, brand: Brand, *, progress: Progress = _no_progress
) -> ReindexReport:
    """Build fresh indexes beside the live ones, fill them, then swap atomically."""
    report = ReindexReport()
    synonyms = synonym_map(brand.synonyms or [])
    specs = vectors.model_specs(brand, engine.default_model)
    embedders = {spec.key: spec.meili_settings() for spec in specs}
    keys = [spec.key for spec in specs]
    stamp = str(int(time.time() * 1000))
    live_threads, live_kb = engine.threads_index(brand.slug), engine.kb_index(brand.slug)
    new_threads, new_kb = f"{live_threads}_rebuild_{stamp}", f"{live_kb}_rebuild_{stamp}"
    for uid, settings in ((new_threads, THREAD_SETTINGS), (new_kb, KB_SETTINGS)):
        engine.ensure_index(uid, settings, synonyms, embedders)
    total = (
        db.scalar(
            select(func.count())
            .select_from(Thread)
            .join(Forum, Forum.id == Thread.forum_id)
            .where(Forum.brand_id == brand.id, Thread.visibility == Visibility.VISIBLE)
        )
        or 0
    )
    tasks: list[int] = []
    live_solutions = set(
        db.scalars(
            select(Solution.thread_id).where(
                Solution.brand_id == brand.id, Solution.withdrawn_at.is_(None)
            )
        )
    )
    done = 0
    for batch in _thread_batches(db, brand):
        posts = _posts_by_thread(db, [thread.id for thread in batch])
        thread_docs: list[dict[str, Any]] = []
        kb_docs: list[dict[str, Any]] = []
        # Stored vectors go with the documents; what is missing is asked for afterwards
        # (vectors.request_missing), so a rebuild never waits for a model.
        stored = vectors.stored(db, [vectors.thread_subject(thread.id) for thread in batch], keys)
        for thread in batch:
            subject = vectors.thread_subject(thread.id)
            document = thread_document(thread, posts[thread.id])
            if specs:
                document["_vectors"] = vectors.vectors_field(specs, subject, stored)
            thread_docs.append(document)
            if thread.id in live_solutions:
                solution = Solution(thread_id=thread.id, brand_id=brand.id, score_at_promotion=0)
                solution.thread = thread
                kb_doc = solution_document(solution, posts[thread.id])
                if specs:
                    kb_doc["_vectors"] = document["_vectors"]
                kb_docs.append(kb_doc)
        for uid, docs in ((new_threads, thread_docs), (new_kb, kb_docs)):
            task = engine.upsert(uid, docs)
            if task is not None:
                tasks.append(task)
        report.threads += len(thread_docs)
        report.kb_entries += len(kb_docs)
        done += len(batch)
        progress(brand.slug, done, total)
    live_articles = list(
        db.scalars(
            select(Article)
            .where(
                Article.brand_id == brand.id,
                Article.status == ArticleStatus.PUBLISHED,
                Article.obsolete.is_(False),
            )
            .options(selectinload(Article.brand), selectinload(Article.forum))
        )
    )
    stored_articles = vectors.stored(
        db, [vectors.article_subject(article.id) for article in live_articles], keys
    )
    articles = []
    for article in live_articles:
        document = article_document(article)
        if specs:
            document["_vectors"] = vectors.vectors_field(
                specs, vectors.article_subject(article.id), stored_articles
            )
        articles.append(document)
    task = engine.upsert(new_kb, articles)
    if task is not None:
        tasks.append(task)
    report.kb_entries += len(articles)
    for task_uid in tasks:
        engine.wait(task_uid)
    # The live indexes must exist to be swapped; swapping is atomic for searchers.
    # (Their models are left alone: the new indexes replace them whole.)
    engine.ensure_index(live_threads, THREAD_SETTINGS, synonyms)
    engine.ensure_index(live_kb, KB_SETTINGS, synonyms)
    engine.swap([(live_threads, new_threads), (live_kb, new_kb)])
    engine.drop(new_threads)
    engine.drop(new_kb)
    return report


def request_vectors(
    session_factory: sessionmaker[Session], engine: SearchEngine, brand_id: int
) -> int:
    """Ask the worker for the vectors the brand's documents lack (after a rebuild or an
    import, whose documents went in with the vectors already known): the documents are
    searchable lexically at once and semantically as the vectors arrive."""
    with session_factory() as db:
        begin_write(db)
        brand = db.get(Brand, brand_id)
        if brand is None:
            return 0
        requested = vectors.request_missing(db, brand, engine.default_model)
        db.commit()
        return requested


def reindex_all(
    session_factory: sessionmaker[Session],
    engine: SearchEngine,
    *,
    brand_slug: str | None = None,
    progress: Progress = _no_progress,
) -> dict[str, ReindexReport]:
    reports = {}
    with session_factory() as db:
        statement = select(Brand).order_by(Brand.id)
        if brand_slug:
            statement = statement.where(Brand.slug == brand_slug)
        brands = list(db.scalars(statement))
        for brand in brands:
            reports[brand.slug] = reindex_brand(db, engine, brand, progress=progress)
    for brand in brands:
        request_vectors(session_factory, engine, brand.id)
    return reports
