"""Semantic search's document vectors: which models a brand searches with, the text each
document is embedded as, the vectors the worker computes in batches and keeps (search_vectors).
A query's vector is in `kb.query_vectors`, how many documents have theirs in `kb.vector_coverage`,
the worker's computing of them in `kb.vector_computing`.

A brand's indexes hold one Meilisearch `userProvided` embedder per model; documents carry their
vectors in `_vectors`, so hybrid search (lexical and semantic, merged by Meilisearch) runs in one
request. Vectors are never computed on the request path of a write: a changed document is
indexed at once with the vector it had (or none), and an outbox event has the worker compute
the new one and index the document again. When the model cannot run, search stays lexical and
the events wait and retry: nothing is lost and the vectors catch up.

numpy is imported by the few functions here that need it (a document's `_vectors`, a blend)
and the models by the embedders when created: a web process whose brands search lexically reads
the model specs (none) and never loads either (docs/performance.md, "Memory").
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core import outbox
from community.core.models import Brand, Forum, Post, Thread, Visibility
from kb.documents import plain_text
from kb.embeddings import (
    HTTP,
    EmbedderConfigError,
    create_embedder,
    document_text,
    get_embedder,
)
from kb.models import Article, ArticleStatus, SearchVector

if TYPE_CHECKING:
    import numpy as np

    from kb.embeddings.cache import CachingEmbedder

logger = logging.getLogger(__name__)

VECTORS_NEEDED = "search.vectors"
# A thread got its first vector: the worker looks for threads it may duplicate (kb.duplicates).
FIRST_THREAD_VECTOR = "kb.first_thread_vector"
AUTO = "auto"
OFF = "off"


@dataclass(frozen=True)
class ModelSpec:
    """One model a brand's documents are embedded with."""

    key: str  # the embedder's name in the brand's Meilisearch indexes and in search_vectors
    name: str  # the registry name (kb.embeddings)
    options_json: str
    dimensions: int
    # The query languages this model serves; None: every language. With several models the
    # first that serves a query's language embeds it.
    languages: frozenset[str] | None = None
    # A blend: no model of its own, its vectors are its parts' (each unit length, scaled by the
    # square root of its weight, end to end), so that the cosine of two blended vectors is the
    # weighted sum of the parts' cosines. Never computed nor stored: made from the parts'.
    parts: tuple[tuple[ModelSpec, float], ...] = ()

    @property
    def options(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.options_json)
        return loaded

    @property
    def is_blend(self) -> bool:
        return bool(self.parts)

    def embedder(self) -> CachingEmbedder:
        if self.is_blend:
            raise TypeError(f"{self.key} is a blend of other models: it has no embedder")
        return get_embedder(self.name, self.options)

    def meili_settings(self) -> dict[str, Any]:
        return {"source": "userProvided", "dimensions": self.dimensions}


@functools.lru_cache(maxsize=64)
def spec_for(name: str, options_json: str, languages: frozenset[str] | None) -> ModelSpec:
    """The spec of one model with these options (cached: building one may load the model)."""
    options = json.loads(options_json)
    if name == HTTP:
        from kb.embeddings.remote import HttpEmbedderConfig  # only for a brand's own service

        config = HttpEmbedderConfig.model_validate(options)
        digest = hashlib.sha256(
            f"{config.url}|{config.model}|{config.dimensions}".encode()
        ).hexdigest()
        key, dimensions = f"http_{digest[:10]}", config.dimensions
    else:
        key, dimensions = name.replace("-", "_"), create_embedder(name, options).dimensions
    return ModelSpec(key, name, options_json, dimensions, languages)


# "auto" searches English with both models at once: MiniLM's cosine weighted 0.7, the
# multilingual model's 0.3. On the duplicate pairs of the three dumps (bench/bench_embeddings.py
# --blends) every weight from 0.6 to 0.8 found the same originals, two more in the first five
# than MiniLM alone (0.91 against 0.86); 0.7 is the middle of that plateau, not a tuned point.
# Models that err differently make fewer errors together; the vectors exist anyway ("auto"
# embeds every document with both), so the blend costs one more query vector (about 2 ms).
AUTO_BLEND_WEIGHTS = (0.7, 0.3)


def blend(parts: Sequence[tuple[ModelSpec, float]], languages: frozenset[str] | None) -> ModelSpec:
    """A spec searching with several models at once (see ModelSpec.parts)."""
    return ModelSpec(
        key="_".join(["blend", *(spec.key for spec, _weight in parts)]),
        name="+".join(spec.name for spec, _weight in parts),
        options_json="{}",
        dimensions=sum(spec.dimensions for spec, _weight in parts),
        languages=languages,
        parts=tuple(parts),
    )


def model_specs(brand: Brand, default: str) -> list[ModelSpec]:
    """The models `brand` searches with: its own choice, else the site's default. "auto" is a
    blend of all-MiniLM-L6-v2 and the multilingual Universal Sentence Encoder for English
    queries (more accurate on English questions than either alone) and the multilingual model
    for every other language (a Spanish question finds an English answer); MiniLM alone is
    also indexed (the duplicate check is calibrated on it). A configuration that no longer
    validates is logged and searched lexically rather than failing every search."""
    name = brand.search_model or default
    options = brand.search_model_options if brand.search_model else {}
    if name == OFF:
        return []
    try:
        if name == AUTO:
            english = spec_for("minilm", "{}", frozenset({"en"}))
            multilingual = spec_for("use-multilingual", "{}", None)
            mixed = blend(
                list(zip((english, multilingual), AUTO_BLEND_WEIGHTS, strict=True)),
                english.languages,
            )
            return [mixed, english, multilingual]
        return [spec_for(name, json.dumps(options or {}, sort_keys=True), None)]
    except (EmbedderConfigError, ValueError) as exc:
        logger.warning("brand %s: semantic search is off: %s", brand.slug, exc)
        return []


def computed_specs(specs: Sequence[ModelSpec]) -> list[ModelSpec]:
    """The models whose vectors the worker computes and search_vectors keeps (not blends)."""
    return [spec for spec in specs if not spec.is_blend]


# --- texts -------------------------------------------------------------------------------------


def thread_subject(thread_id: int) -> str:
    return f"thread:{thread_id}"


def article_subject(article_id: int) -> str:
    return f"article:{article_id}"


def thread_text(thread: Thread, posts: Iterable[Post]) -> str:
    """Title, the start of the question and of the best answer (the accepted one, else the
    best scored): what a thread is about and what solves it. Its KB solution shares it."""
    visible = [post for post in posts if post.visibility == Visibility.VISIBLE]
    question = next((post for post in visible if post.is_question), None)
    answers = sorted(
        (post for post in visible if not post.is_question),
        key=lambda post: (post.id != thread.accepted_post_id, -post.score, post.id),
    )
    return document_text(
        thread.title,
        plain_text(question.body_html, 4000) if question else "",
        plain_text(answers[0].body_html, 4000) if answers else "",
    )


def article_text(article: Article) -> str:
    return document_text(article.title, article.summary or "", plain_text(article.body_html, 4000))


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- attaching stored vectors to documents ------------------------------------------------------


def stored(
    db: Session, subjects: Sequence[str], keys: Sequence[str]
) -> dict[tuple[str, str], SearchVector]:
    if not subjects or not keys:
        return {}
    found: dict[tuple[str, str], SearchVector] = {}
    for start in range(0, len(subjects), 500):
        for row in db.scalars(
            select(SearchVector).where(
                SearchVector.subject.in_(subjects[start : start + 500]),
                SearchVector.model.in_(keys),
            )
        ):
            found[(row.subject, row.model)] = row
    return found


def as_floats(blob: bytes) -> list[float]:
    import numpy as np

    return [float(value) for value in np.frombuffer(blob, dtype="<f4")]


def blended(pieces: Sequence[tuple[np.ndarray, float]]) -> np.ndarray:
    """Unit vectors scaled by the square roots of their weights, end to end: the dot product of
    two such vectors is the weighted sum of the parts' cosines (unit length when the weights
    sum to 1)."""
    import numpy as np

    return np.concatenate(
        [
            vector / (np.linalg.norm(vector) or 1.0) * np.float32(np.sqrt(weight))
            for vector, weight in pieces
        ]
    ).astype(np.float32)


def vectors_field(
    specs: Sequence[ModelSpec], subject: str, rows: Mapping[tuple[str, str], SearchVector]
) -> dict[str, list[float] | None]:
    """A document's `_vectors`: every model of the index named, null when there is no vector
    yet (Meilisearch refuses a document that leaves a userProvided embedder out). A blend's is
    made from its parts' when they all have one. `rows` holds the parts' vectors too (every
    part of a brand's blend is one of its models)."""
    import numpy as np

    field: dict[str, list[float] | None] = {}
    for spec in specs:
        if spec.is_blend:
            found = [(rows.get((subject, part.key)), weight) for part, weight in spec.parts]
            field[spec.key] = (
                [
                    float(value)
                    for value in blended(
                        [
                            (np.frombuffer(row.vector, dtype="<f4"), weight)
                            for row, weight in found
                            if row
                        ]
                    )
                ]
                if all(row is not None for row, _weight in found)
                else None
            )
        else:
            row = rows.get((subject, spec.key))
            field[spec.key] = as_floats(row.vector) if row else None
    return field


def missing(
    specs: Sequence[ModelSpec],
    subject: str,
    digest: str,
    rows: Mapping[tuple[str, str], SearchVector],
) -> bool:
    """Whether some model has no vector of this text yet."""
    return any(
        (row := rows.get((subject, spec.key))) is None or row.text_hash != digest
        for spec in computed_specs(specs)
    )


def request_thread_vectors(db: Session, thread_id: int) -> None:
    outbox.enqueue(
        db, VECTORS_NEEDED, {"thread_id": thread_id}, dedupe_key=f"vectors:thread:{thread_id}"
    )


def request_article_vectors(db: Session, article_id: int) -> None:
    outbox.enqueue(
        db, VECTORS_NEEDED, {"article_id": article_id}, dedupe_key=f"vectors:article:{article_id}"
    )


# --- catching up ------------------------------------------------------------------------------


def request_missing(db: Session, brand: Brand, default_model: str) -> int:
    """Ask the worker for every vector `brand` lacks (after an import, a change of model, a
    restored database): one event per thread or article without a vector for every model.
    Returns how many were asked for."""
    specs = computed_specs(model_specs(brand, default_model))
    if not specs:
        return 0
    keys = [spec.key for spec in specs]
    complete = (
        select(SearchVector.subject)
        .where(SearchVector.brand_id == brand.id, SearchVector.model.in_(keys))
        .group_by(SearchVector.subject)
        .having(func.count() == len(keys))
    )
    have = set(db.scalars(complete))
    thread_ids = [
        thread_id
        for thread_id in db.scalars(
            select(Thread.id)
            .join(Forum, Forum.id == Thread.forum_id)
            .where(Forum.brand_id == brand.id, Thread.visibility == Visibility.VISIBLE)
            .order_by(Thread.id)
        )
        if thread_subject(thread_id) not in have
    ]
    article_ids = [
        article_id
        for article_id in db.scalars(
            select(Article.id).where(
                Article.brand_id == brand.id,
                Article.status == ArticleStatus.PUBLISHED,
                Article.obsolete.is_(False),
            )
        )
        if article_subject(article_id) not in have
    ]
    wanted = [("thread", thread_id) for thread_id in thread_ids] + [
        ("article", article_id) for article_id in article_ids
    ]
    # In bulk (an import asks for tens of thousands): one query for what is already waiting,
    # then one statement per thousand.
    waiting = set(
        db.scalars(
            select(outbox.OutboxEvent.dedupe_key).where(
                outbox.OutboxEvent.kind == VECTORS_NEEDED, outbox.OutboxEvent.done_at.is_(None)
            )
        )
    )
    keyed = [
        (f"vectors:{kind}:{entity_id}", {f"{kind}_id": entity_id})
        for kind, entity_id in wanted
        if f"vectors:{kind}:{entity_id}" not in waiting
    ]
    outbox.enqueue_keyed_now(db, VECTORS_NEEDED, keyed)
    return len(keyed)
