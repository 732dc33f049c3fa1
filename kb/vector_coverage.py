"""How many of a brand's searchable documents have a vector for every model (the admin page and
`community vectors status`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core.models import Brand, Forum, Thread, Visibility
from kb.models import Article, ArticleStatus, SearchVector
from kb.vectors import computed_specs, model_specs


@dataclass(frozen=True)
class Coverage:
    """How many of a brand's searchable documents have a vector for every model."""

    models: list[str]
    documents: int
    with_vectors: int

    @property
    def complete(self) -> bool:
        return self.with_vectors >= self.documents


def coverage(db: Session, brand: Brand, default_model: str) -> Coverage:
    specs = computed_specs(model_specs(brand, default_model))
    threads = (
        db.scalar(
            select(func.count())
            .select_from(Thread)
            .join(Forum, Forum.id == Thread.forum_id)
            .where(Forum.brand_id == brand.id, Thread.visibility == Visibility.VISIBLE)
        )
        or 0
    )
    articles = (
        db.scalar(
            select(func.count())
            .select_from(Article)
            .where(
                Article.brand_id == brand.id,
                Article.status == ArticleStatus.PUBLISHED,
                Article.obsolete.is_(False),
            )
        )
        or 0
    )
    if not specs:
        return Coverage([], threads + articles, 0)
    keys = [spec.key for spec in specs]
    complete = (
        select(SearchVector.subject)
        .where(SearchVector.brand_id == brand.id, SearchVector.model.in_(keys))
        .group_by(SearchVector.subject)
        .having(func.count() == len(keys))
        .subquery()
    )
    with_vectors = db.scalar(select(func.count()).select_from(complete)) or 0
    return Coverage(keys, threads + articles, min(with_vectors, threads + articles))
