"""JSON API for search and the knowledge base (same services and rules as the pages)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status

from community.api import ERRORS
from community.core import policy
from community.core import service as community_service
from community.core.auth import BrandAdmin, Curator, OptionalUser, client_ip
from community.core.db import SessionDep
from community.core.i18n import active_locale
from community.core.models import Brand
from community.core.ratelimit import limited
from kb import search_model, service, service_search
from kb.models import Article
from kb.routes import engine_of
from kb.schemas import (
    ArticleCreateIn,
    ArticleIn,
    ArticleOut,
    ArticleStaffOut,
    CandidateOut,
    FacetOut,
    HttpEmbedderOut,
    SearchHitOut,
    SearchModelIn,
    SearchModelOut,
    SearchOut,
    StatusIn,
    VectorCoverageOut,
)

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["knowledge base"])  # type: ignore[arg-type]


@router.get(
    "/brands/{brand_slug}/search", response_model=SearchOut, dependencies=[limited("search")]
)
def api_search(
    request: Request,
    db: SessionDep,
    user: OptionalUser,
    brand_slug: str,
    q: Annotated[str, Query(max_length=200)] = "",
    scope: Literal["kb", "community"] = "kb",
    page: Annotated[int, Query(ge=1, le=100)] = 1,
    per_page: Annotated[int, Query(ge=1, le=50)] = 10,
    type: Annotated[str, Query(max_length=20)] = "",
    tags: Annotated[str, Query(max_length=40)] = "",
    forum: Annotated[str, Query(max_length=60)] = "",
    locale: Annotated[str, Query(max_length=8)] = "",
    kind: Annotated[str, Query(max_length=20)] = "",
    status_filter: Annotated[str, Query(alias="status", max_length=20)] = "",
    facets: Annotated[
        bool, Query(description="Count the values of each filter among the matches (slower)")
    ] = False,
) -> SearchOut:
    brand = community_service.get_brand(db, brand_slug)
    result = service_search.search(
        db,
        engine_of(request),
        brand,
        q,
        scope=scope,
        filters={
            "type": type,
            "tags": tags,
            "forum": forum,
            "locale": locale,
            "kind": kind,
            "status": status_filter,
        },
        page=page,
        per_page=per_page,
        locale=active_locale(),
        user_id=user.id if user else None,
        log=request.app.state.search_log,
        facets=facets,
        reader=user,
    )
    return SearchOut(
        query=result.query,
        scope=result.scope,
        total=result.total,
        page=result.page,
        total_pages=result.total_pages,
        degraded=result.degraded,
        hits=[
            SearchHitOut(
                kind=hit.kind,
                entry_id=hit.entry_id,
                title=hit.title,
                url=hit.url,
                snippet_html=str(hit.snippet),
                tags=hit.tags,
                locale=hit.locale,
            )
            for hit in result.hits
        ],
        facets=[FacetOut(name=facet.name, values=facet.values) for facet in result.facets],
    )


@router.get("/kb/articles/{article_id}", response_model=ArticleOut | ArticleStaffOut)
def api_article(db: SessionDep, user: OptionalUser, article_id: int) -> ArticleOut:
    article = service.access_article(db, user, article_id)
    if policy.can_curate(user, article.brand_id):
        return ArticleStaffOut.model_validate(article)
    return ArticleOut.model_validate(article)


@router.get("/brands/{brand_slug}/kb/articles", response_model=list[ArticleOut])
def api_articles(db: SessionDep, brand_slug: str) -> list[Article]:
    return service.published(db, community_service.get_brand(db, brand_slug), limit=100)


@router.post(
    "/brands/{brand_slug}/kb/articles",
    response_model=ArticleStaffOut,
    status_code=status.HTTP_201_CREATED,
)
def api_create_article(
    db: SessionDep, user: Curator, brand_slug: str, body: ArticleCreateIn
) -> Article:
    brand = community_service.get_brand(db, brand_slug)
    article = service.create_article(db, user, brand, body)
    db.commit()
    return service.access_article(db, user, article.id)


@router.put("/kb/articles/{article_id}", response_model=ArticleStaffOut)
def api_update_article(db: SessionDep, user: Curator, article_id: int, body: ArticleIn) -> Article:
    article = service.access_article(db, user, article_id)
    service.update_article(db, user, article, body)
    db.commit()
    return service.access_article(db, user, article_id)


@router.put("/kb/articles/{article_id}/status", response_model=ArticleStaffOut)
def api_article_status(db: SessionDep, user: Curator, article_id: int, body: StatusIn) -> Article:
    article = service.access_article(db, user, article_id)
    service.change_status(db, user, article, body.status)
    db.commit()
    return service.access_article(db, user, article_id)


@router.get("/brands/{brand_slug}/kb/candidates", response_model=list[CandidateOut])
def api_candidates(db: SessionDep, user: Curator, brand_slug: str) -> list[object]:
    return list(service.candidates(db, community_service.get_brand(db, brand_slug)))


def _search_model_out(request: Request, db: SessionDep, brand: Brand) -> SearchModelOut:
    described = search_model.describe(db, brand, request.app.state.settings.search_model)
    coverage = described.coverage
    return SearchModelOut(
        model=described.choice,
        site_default=described.site_default,
        embedders=described.embedders,
        http=HttpEmbedderOut.model_validate(described.http) if described.http else None,
        authorization_set=described.authorization_set,
        coverage=VectorCoverageOut(
            models=coverage.models,
            documents=coverage.documents,
            with_vectors=coverage.with_vectors,
            complete=coverage.complete,
        ),
    )


@router.get("/brands/{brand_slug}/search-model", response_model=SearchModelOut)
def api_search_model(
    request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str
) -> SearchModelOut:
    """The brand's semantic search model and how many documents have their vectors (admins)."""
    return _search_model_out(request, db, community_service.get_brand(db, brand_slug))


@router.put("/brands/{brand_slug}/search-model", response_model=SearchModelOut)
def api_set_search_model(
    request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str, body: SearchModelIn
) -> SearchModelOut:
    """Choose the brand's semantic search model (admins). The worker then gives the brand's
    indexes their new embedders and computes the documents' vectors."""
    brand = community_service.get_brand(db, brand_slug)
    fields = None
    if body.http is not None:
        http = body.http
        fields = search_model.HttpFields(
            url=http.url,
            dimensions=http.dimensions,
            request_format=http.request_format,
            response_path=http.response_path,
            model=http.model,
            timeout_seconds=http.timeout_seconds,
            batch_size=http.batch_size,
            allow_private=http.allow_private,
            authorization=http.authorization or None,
            clear_authorization=http.authorization == "",
        )
    search_model.do_set_search_model(
        db, user, brand, body.model, fields,
        default_model=request.app.state.settings.search_model, ip=client_ip(request),
    )  # fmt: skip
    db.commit()
    return _search_model_out(request, db, brand)
