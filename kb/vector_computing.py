"""The worker's side of semantic search's document vectors (kb.vectors): which vectors the
changed threads and articles lack for their brands' models, computing them in batches per model
(no database session held meanwhile), and storing them. Only the worker imports this module, and
numpy with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core import outbox
from community.core.clock import utcnow
from community.core.db import dialect_insert
from community.core.models import Brand, Forum, Post, Thread, Visibility
from kb.embeddings import EmbedderUnavailable
from kb.embeddings.health import health
from kb.models import Article, ArticleStatus, SearchVector
from kb.vectors import (
    FIRST_THREAD_VECTOR,
    ModelSpec,
    article_subject,
    article_text,
    computed_specs,
    model_specs,
    stored,
    text_hash,
    thread_subject,
    thread_text,
)

# Texts per model run in the worker: big enough to amortise a run, small enough that a batch
# that fails (a service timing out) is retried without much work lost.
EMBED_BATCH = 32


@dataclass(frozen=True)
class Needed:
    brand_id: int
    subject: str
    spec: ModelSpec
    text: str
    digest: str
    first: bool = False  # the subject had no vector of this model before


def needed_vectors(
    db: Session, default_model: str, thread_ids: Sequence[int], article_ids: Sequence[int]
) -> list[Needed]:
    """The vectors these threads and articles lack for their brands' models (a thread that is
    hidden or gone needs none: its documents leave the index)."""
    needed: list[Needed] = []
    brands: dict[int, list[ModelSpec]] = {}

    def specs_of(brand: Brand) -> list[ModelSpec]:
        if brand.id not in brands:
            brands[brand.id] = computed_specs(model_specs(brand, default_model))
        return brands[brand.id]

    texts: list[tuple[int, str, list[ModelSpec], str]] = []
    if thread_ids:
        threads = list(
            db.scalars(
                select(Thread)
                .join(Forum, Forum.id == Thread.forum_id)
                .where(Thread.id.in_(thread_ids), Thread.visibility == Visibility.VISIBLE)
            )
        )
        posts: dict[int, list[Post]] = {thread.id: [] for thread in threads}
        for post in db.scalars(
            select(Post).where(
                Post.thread_id.in_(list(posts)), Post.visibility == Visibility.VISIBLE
            )
        ):
            posts[post.thread_id].append(post)
        for thread in threads:
            brand = thread.forum.brand
            texts.append(
                (
                    brand.id,
                    thread_subject(thread.id),
                    specs_of(brand),
                    thread_text(thread, posts[thread.id]),
                )
            )
    if article_ids:
        for article in db.scalars(
            select(Article).where(
                Article.id.in_(article_ids),
                Article.status == ArticleStatus.PUBLISHED,
                Article.obsolete.is_(False),
            )
        ):
            texts.append(
                (
                    article.brand_id,
                    article_subject(article.id),
                    specs_of(article.brand),
                    article_text(article),
                )
            )
    keys = sorted({spec.key for _b, _s, specs, _t in texts for spec in specs})
    rows = stored(db, [subject for _b, subject, _s, _t in texts], keys)
    for brand_id, subject, specs, text in texts:
        digest = text_hash(text)
        for spec in specs:
            row = rows.get((subject, spec.key))
            if row is None or row.text_hash != digest:
                needed.append(Needed(brand_id, subject, spec, text, digest, first=row is None))
    return needed


def compute(needed: Sequence[Needed]) -> list[tuple[Needed, bytes]]:
    """Runs the models, in batches per model (no database session held meanwhile).
    EmbedderUnavailable when a model cannot run: the caller retries later."""
    by_model: dict[str, list[Needed]] = {}
    for item in needed:
        by_model.setdefault(item.spec.key, []).append(item)
    computed: list[tuple[Needed, bytes]] = []
    for key, items in by_model.items():
        embedder = items[0].spec.embedder()
        for start in range(0, len(items), EMBED_BATCH):
            batch = items[start : start + EMBED_BATCH]
            try:
                vectors = embedder.embed([item.text for item in batch])
            except EmbedderUnavailable as exc:
                health.failed(key, str(exc))
                raise
            health.worked(key)
            computed.extend(
                (item, np.asarray(vector, dtype="<f4").tobytes())
                for item, vector in zip(batch, vectors, strict=True)
            )
    return computed


def store(db: Session, computed: Sequence[tuple[Needed, bytes]]) -> None:
    """Insert or replace each vector (one row per subject and model); a thread's first vector
    asks for its duplicate check."""
    if not computed:
        return
    for thread_id in sorted(
        {
            int(item.subject.removeprefix("thread:"))
            for item, _blob in computed
            if item.first and item.subject.startswith("thread:")
        }
    ):
        outbox.enqueue(
            db, FIRST_THREAD_VECTOR, {"thread_id": thread_id}, dedupe_key=f"first:{thread_id}"
        )
    insert = dialect_insert(db)
    now = utcnow()
    rows = [
        {
            "brand_id": item.brand_id,
            "subject": item.subject,
            "model": item.spec.key,
            "text_hash": item.digest,
            "vector": blob,
            "updated_at": now,
        }
        for item, blob in computed
    ]
    for start in range(0, len(rows), 200):
        statement = insert(SearchVector).values(rows[start : start + 200])
        db.execute(
            statement.on_conflict_do_update(
                index_elements=["subject", "model"],
                set_={
                    "text_hash": statement.excluded.text_hash,
                    "vector": statement.excluded.vector,
                    "updated_at": statement.excluded.updated_at,
                    "brand_id": statement.excluded.brand_id,
                },
            )
        )
