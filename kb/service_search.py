"""Searching the KB and the community: Meilisearch first, a database query when it is down (and
the page says results may be incomplete). Every search is recorded for the content-gap report;
opened suggestions on the ask form are recorded as possible deflections (the suggestions
themselves are in `kb.suggestions`)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from markupsafe import Markup
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session, selectinload

from community.core.forum_access import readable_forums_clause
from community.core.language import detect_language
from community.core.models import Brand, Forum, Post, Tag, Thread, ThreadStatus, User, Visibility
from kb import query_vectors, vectors
from kb.documents import plain_text
from kb.models import Article, ArticleStatus, DeflectionEvent, Solution
from kb.search import SearchEngine, SearchUnavailable
from kb.search_access import Reader, SearchAccess, search_access
from kb.search_log import SearchLog
from kb.search_queries import Semantic, equals

Scope = Literal["kb", "community"]
QUERY_MAX = 200
PER_PAGE = 10
KB_FACETS = ["type", "tags", "forum", "locale"]
THREAD_FACETS = ["kind", "status", "tags", "forum", "locale"]
FILTERABLE = {
    "kb": {"type", "tags", "forum", "locale"},
    "community": {"kind", "status", "tags", "forum", "locale"},
}


@dataclass
class Hit:
    kind: str  # "solution", "article" or "thread"
    entry_id: int
    title: str
    url: str
    snippet: Markup
    title_html: Markup
    tags: list[str] = field(default_factory=list)
    forum: str | None = None
    status: str | None = None
    locale: str = "en"
    # What the ask form's suggestions say of it: "article", "solved" or "answered".
    state: str | None = None


@dataclass
class Facet:
    name: str
    values: list[tuple[str, int, bool]]  # value, count, selected


@dataclass
class SearchPage:
    query: str
    scope: Scope
    hits: list[Hit]
    total: int
    page: int
    total_pages: int
    facets: list[Facet]
    filters: dict[str, str]
    degraded: bool = False


def marked(text: str) -> Markup:
    """Escape what Meilisearch returned, then turn its highlight markers into <mark>."""
    escaped = html.escape(text, quote=False)
    return Markup(escaped.replace("\x02", "<mark>").replace("\x03", "</mark>"))  # noqa: S704


def _first(formatted: dict[str, Any], names: list[str]) -> str:
    for name in names:
        value = formatted.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _hit_from_document(document: dict[str, Any]) -> Hit:
    formatted = document.get("_formatted") or document
    kind = document.get("type") or "thread"
    title = _first(document, ["title_en", "title_es"])
    snippet = _first(
        formatted,
        ["summary_en", "summary_es", "body_en", "body_es", "question_en", "question_es"],
    )
    return Hit(
        kind=str(kind),
        entry_id=int(document.get("entry_id") or document.get("thread_id") or 0),
        title=title,
        url=str(document.get("url", "#")),
        snippet=marked(snippet),
        title_html=marked(_first(formatted, ["title_en", "title_es"]) or title),
        tags=list(document.get("tags") or []),
        forum=document.get("forum_name") or document.get("forum"),
        status=document.get("status"),
        locale=str(document.get("locale") or "en"),
    )


def clean_filters(scope: Scope, raw: dict[str, str]) -> dict[str, str]:
    allowed = FILTERABLE[scope]
    return {key: value[:60] for key, value in raw.items() if key in allowed and value}


def search(
    db: Session,
    engine: SearchEngine,
    brand: Brand,
    query: str,
    *,
    scope: Scope = "kb",
    filters: dict[str, str] | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
    locale: str = "en",
    user_id: int | None = None,
    log: SearchLog | None = None,
    facets: bool = True,
    reader: Reader | None = None,
) -> SearchPage:
    """`reader`: who searches (None: a visitor). They find only what they may read: nothing in
    forums closed to them, nothing of an archived brand (kb.search_access)."""
    text = " ".join(query.split())[:QUERY_MAX]
    chosen = clean_filters(scope, filters or {})
    page = max(1, min(page, 100))
    access = search_access(db, brand, reader)
    if access.nothing:
        result = SearchPage(
            query=text, scope=scope, hits=[], total=0, page=1, total_pages=1, facets=[],
            filters=chosen,
        )  # fmt: skip
    else:
        try:
            result = _meili(
                engine, brand, text, scope, chosen, (page, per_page), locale, facets, access
            )
        except SearchUnavailable:
            result = _database(db, brand, text, scope, chosen, page, per_page, reader)
    logged = log_entry(brand, query, scope, locale, result)
    if log is not None and logged is not None:
        log.record(**logged, user_id=user_id)
    return result


def log_entry(
    brand: Brand, query: str, scope: Scope, locale: str, result: SearchPage
) -> dict[str, Any] | None:
    """What the search log keeps of a search (without who searched), or None for a search
    without words (a filter alone), which it does not keep."""
    text = " ".join(query.split())[:QUERY_MAX]
    if not text:
        return None
    return {
        "brand_id": brand.id,
        "query": text,
        "scope": scope,
        "locale": locale,
        "result_count": result.total,
        "degraded": result.degraded,
    }


# The share of the semantic ranking in hybrid search, chosen with make eval-relevance on the
# duplicate pairs of the three dumps (see README, "Relevance on real data").
SEARCH_SEMANTIC_RATIO = 0.5


def semantic_for(
    engine: SearchEngine,
    brand: Brand,
    text: str,
    language: str,
    ratio: float,
    *,
    model: str | None = None,
) -> Semantic | None:
    """The hybrid part of a search: the query's vector from the brand's model for its
    language (or the one named `model`), or None (lexical search) when the brand has no
    model or it cannot run now."""
    if not text.strip() or ratio <= 0:
        return None
    specs = vectors.model_specs(brand, engine.default_model)
    if len(specs) > 1:
        # Models by language ("auto"): a question clearly written in another language than
        # the reader's interface goes to the model for its own language.
        language = detect_language(text, fallback=language)
    if model is not None:
        specs = [spec for spec in specs if spec.name == model]
    spec = query_vectors.query_spec(specs, language) if model is None else next(iter(specs), None)
    if spec is None:
        return None
    vector = query_vectors.query_vector(spec, text)
    return Semantic(spec.key, vector, ratio) if vector is not None else None


def _meili(
    engine: SearchEngine,
    brand: Brand,
    text: str,
    scope: Scope,
    chosen: dict[str, str],
    paging: tuple[int, int],
    locale: str,
    with_facets: bool,
    access: SearchAccess,
) -> SearchPage:
    page, per_page = paging
    uid = engine.kb_index(brand.slug) if scope == "kb" else engine.threads_index(brand.slug)
    highlight = (
        ["title_en", "title_es", "summary_en", "summary_es", "body_en", "body_es"]
        if scope == "kb"
        else ["title_en", "title_es", "question_en", "question_es"]
    )
    # Counting facet values costs Meilisearch several milliseconds a query: only for callers
    # that show them.
    facet_names = (KB_FACETS if scope == "kb" else THREAD_FACETS) if with_facets else []
    result = engine.search(
        uid,
        text,
        filters=[equals(name, value) for name, value in sorted(chosen.items())]
        + access.filters(kb=scope == "kb"),
        facets=facet_names,
        page=page,
        per_page=per_page,
        locale=locale,
        highlight=highlight,
        semantic=semantic_for(engine, brand, text, locale, SEARCH_SEMANTIC_RATIO),
    )
    facets = [
        Facet(
            name=name,
            values=[
                (value, count, chosen.get(name) == value)
                for value, count in sorted(
                    result.facets.get(name, {}).items(), key=lambda item: (-item[1], item[0])
                )[:12]
            ],
        )
        for name in facet_names
        if result.facets.get(name)
    ]
    return SearchPage(
        query=text,
        scope=scope,
        hits=[_hit_from_document(document) for document in result.hits],
        total=result.total,
        page=result.page,
        total_pages=max(result.total_pages, 1),
        facets=facets,
        filters=chosen,
    )


# --- the database fallback -------------------------------------------------------------------


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_words(text: str) -> list[str]:
    return [word for word in text.lower().split() if len(word) > 1][:8]


def _database(
    db: Session,
    brand: Brand,
    text: str,
    scope: Scope,
    chosen: dict[str, str],
    page: int,
    per_page: int,
    reader: Reader | None,
) -> SearchPage:
    """Plain substring matching over titles and bodies: slower and cruder, never wrong about
    what may be shown (the same visibility and forum access rules as the pages)."""
    words = search_words(text)
    hits: list[Hit] = []
    if scope == "kb":
        hits = database_kb_hits(db, brand, words, chosen, reader)
    else:
        hits = database_thread_hits(db, brand, words, chosen, reader)
    start = (page - 1) * per_page
    total = len(hits)
    return SearchPage(
        query=text,
        scope=scope,
        hits=hits[start : start + per_page],
        total=total,
        page=page,
        total_pages=max(1, -(-total // per_page)),
        facets=[],
        filters=chosen,
        degraded=True,
    )


def _matches(columns: list[Any], words: list[str]) -> Any:
    return and_(
        *[or_(*[column.ilike(_like(word), escape="\\") for column in columns]) for word in words]
    )


SelectT = TypeVar("SelectT", bound=Select)  # type: ignore[type-arg]


def _thread_filters(
    statement: SelectT, brand: Brand, chosen: dict[str, str], reader: Reader | None
) -> SelectT:
    statement = statement.join(Forum, Forum.id == Thread.forum_id).where(
        Forum.brand_id == brand.id, readable_forums_clause(reader, brand.id)
    )
    if "forum" in chosen:
        statement = statement.where(Forum.slug == chosen["forum"])
    if "locale" in chosen:
        statement = statement.where(Thread.locale == chosen["locale"])
    if "tags" in chosen:
        statement = statement.where(Thread.tags.any(Tag.name == chosen["tags"]))
    return statement


def database_thread_hits(
    db: Session, brand: Brand, words: list[str], chosen: dict[str, str], reader: Reader | None
) -> list[Hit]:
    statement = (
        select(Thread, Post)
        .join(Post, and_(Post.thread_id == Thread.id, Post.is_question.is_(True)))
        .where(Thread.visibility == Visibility.VISIBLE)
    )
    statement = _thread_filters(statement, brand, chosen, reader)
    if "kind" in chosen:
        statement = statement.where(Thread.kind == chosen["kind"])
    if "status" in chosen and chosen["status"] in ThreadStatus._value2member_map_:
        statement = statement.where(Thread.status == chosen["status"])
    if words:
        statement = statement.where(_matches([Thread.title, Post.body_source], words))
    rows = db.execute(
        statement.options(selectinload(Thread.tags))
        .order_by(Thread.usefulness.desc(), Thread.id.desc())
        .limit(200)
    ).all()
    return [
        Hit(
            kind="thread",
            entry_id=thread.id,
            title=thread.title,
            url=f"/t/{thread.id}",
            snippet=marked(plain_text(question.body_html, 240)),
            title_html=marked(thread.title),
            tags=[tag.name for tag in thread.tags],
            status=thread.status.value,
            locale=thread.locale,
        )
        for thread, question in rows
    ]


def database_kb_hits(
    db: Session, brand: Brand, words: list[str], chosen: dict[str, str], reader: Reader | None
) -> list[Hit]:
    hits: list[tuple[float, Hit]] = []
    if chosen.get("type") in (None, "solution"):
        statement = (
            select(Thread, Post)
            .join(Solution, Solution.thread_id == Thread.id)
            .join(Post, and_(Post.thread_id == Thread.id, Post.is_question.is_(True)))
            .where(Solution.withdrawn_at.is_(None), Thread.visibility == Visibility.VISIBLE)
        )
        statement = _thread_filters(statement, brand, chosen, reader)
        if words:
            statement = statement.where(_matches([Thread.title, Post.body_source], words))
        for thread, question in db.execute(statement.limit(200)).all():
            hits.append(
                (
                    thread.usefulness,
                    Hit(
                        kind="solution",
                        entry_id=thread.id,
                        title=thread.title,
                        url=f"/t/{thread.id}",
                        snippet=marked(plain_text(question.body_html, 240)),
                        title_html=marked(thread.title),
                        locale=thread.locale,
                    ),
                )
            )
    if chosen.get("type") in (None, "article"):
        articles = select(Article).where(
            Article.brand_id == brand.id,
            Article.status == ArticleStatus.PUBLISHED,
            Article.obsolete.is_(False),
        )
        if "locale" in chosen:
            articles = articles.where(Article.locale == chosen["locale"])
        if words:
            articles = articles.where(
                _matches([Article.title, Article.summary, Article.body_source], words)
            )
        for article in db.scalars(articles.limit(200)):
            hits.append(
                (
                    100.0,
                    Hit(
                        kind="article",
                        entry_id=article.id,
                        title=article.title,
                        url=f"/kb/articles/{article.id}",
                        snippet=marked(article.summary or plain_text(article.body_html, 240)),
                        title_html=marked(article.title),
                        tags=article.tag_list,
                        locale=article.locale,
                    ),
                )
            )
    hits.sort(key=lambda pair: -pair[0])
    return [hit for _score, hit in hits]


def record_deflection(
    db: Session,
    brand: Brand,
    *,
    user: User | None,
    visitor_key: str,
    query: str,
    entry_type: str,
    entry_id: int,
) -> DeflectionEvent:
    event = DeflectionEvent(
        brand_id=brand.id,
        user_id=user.id if user else None,
        visitor_key=visitor_key,
        query=" ".join(query.split())[:QUERY_MAX],
        entry_type=entry_type
        if entry_type in ("solution", "article", "thread", "known_issue")
        else "other",
        entry_id=entry_id,
    )
    db.add(event)
    return event
