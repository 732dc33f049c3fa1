"""Public KB pages: the KB home, the search page (KB or the whole community), suggestions while
asking, article pages with "Was this helpful?"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from community.core import policy
from community.core import service as community_service
from community.core.auth import OptionalUser, client_ip
from community.core.clock import utcnow
from community.core.db import SessionDep, begin_write
from community.core.errors import FormErrors, NotFound
from community.core.forms import MAX_ID, whole_number
from community.core.i18n import active_locale
from community.core.i18n import gettext as _
from community.core.models import Brand
from community.core.page_cache import keep_at_most, replay_on_hit
from community.core.ratelimit import limited
from community.core.viewcount import viewer_key
from community.core.web import flash_redirect, is_htmx, page_viewer_key, render
from crowdservice.known_issues import ask_form
from crowdservice.known_issues.models import KnownIssue
from kb import article_feedback, ask_sessions, service, service_search, suggestions
from kb.models import AskArm
from kb.search import SearchEngine, SearchUnavailable
from kb.search_access import search_access
from kb.service_search import Hit, Scope

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]


# A page built from the search index changes when the worker has indexed, which bumps no
# generation: the page cache keeps it this long at most (community.core.page_cache).
INDEX_PAGE_SECONDS = 5.0


def engine_of(request: Request) -> SearchEngine:
    """The search engine, for a page that the page cache then keeps INDEX_PAGE_SECONDS at most."""
    keep_at_most(request, INDEX_PAGE_SECONDS)
    engine: SearchEngine = request.app.state.search
    return engine


def _default_brand(request: Request, db: SessionDep) -> Brand:
    brand = community_service.default_brand(db, request.app.state.settings.default_brand)
    if brand is None:
        raise NotFound()
    return brand


def _visitor(request: Request, user_id: int | None) -> str:
    return viewer_key(
        user_id=user_id, session_token=request.state.session_token, ip=client_ip(request)
    )


@router.get("/kb", name="kb_default")
def kb_default(request: Request, db: SessionDep) -> Response:
    return RedirectResponse(f"/b/{_default_brand(request, db).slug}/kb", status_code=303)


@router.get("/search", name="search_default")
def search_default(request: Request, db: SessionDep) -> Response:
    target = f"/b/{_default_brand(request, db).slug}/search"
    if request.url.query:
        target += f"?{request.url.query}"
    return RedirectResponse(target, status_code=303)


@router.get("/b/{brand_slug}/kb", response_class=HTMLResponse, name="kb_home")
def kb_home(request: Request, db: SessionDep, user: OptionalUser, brand_slug: str) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    return render(
        request,
        "kb/home.html",
        {
            "brand": brand,
            "articles": service.published(db, brand, limit=12),
            "solutions": service.recent_solutions(db, brand, limit=12, reader=user),
            "is_curator": policy.can_curate(user, brand.id),
        },
    )


@router.get(
    "/b/{brand_slug}/search",
    response_class=HTMLResponse,
    name="search",
    dependencies=[limited("search")],
)
def search_page(
    request: Request,
    db: SessionDep,
    user: OptionalUser,
    brand_slug: str,
    q: str = "",
    scope: str = "kb",
    page: int = 1,
    type: str = "",
    tags: str = "",
    forum: str = "",
    locale: str = "",
    kind: str = "",
    status: str = "",
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    chosen_scope: Scope = "community" if scope == "community" else "kb"
    results = None
    if q.strip() or any((type, tags, forum, locale, kind, status)):
        results = service_search.search(
            db,
            engine_of(request),
            brand,
            q,
            scope=chosen_scope,
            filters={
                "type": type,
                "tags": tags,
                "forum": forum,
                "locale": locale,
                "kind": kind,
                "status": status,
            },
            page=page,
            locale=active_locale(),
            user_id=user.id if user else None,
            log=request.app.state.search_log,
            reader=user,
        )
        logged = service_search.log_entry(brand, q, chosen_scope, active_locale(), results)
        if logged is not None:
            replay_on_hit(request, "search", logged)
    return render(
        request,
        "kb/search.html",
        {"brand": brand, "q": q[:200], "scope": chosen_scope, "results": results},
        block="results",
    )


@router.get(
    "/b/{brand_slug}/kb/suggest",
    response_class=HTMLResponse,
    name="kb_suggest",
    dependencies=[limited("search")],
)
def suggest(
    request: Request, db: SessionDep, user: OptionalUser, brand_slug: str, title: str = ""
) -> Response:
    """Answers that may already exist, shown while a question's title is typed; none for a
    visitor in the brand's deflection holdout (kb.ask_sessions). A signed-in visitor's session
    and its group are recorded, in either group. Open known issues the title reports come
    first (crowdservice.known_issues.ask_form)."""
    recording = len(suggestions.typed_title(title)) >= suggestions.SUGGEST_MIN_CHARS
    if recording:
        # It reads, then writes the session: as a writer from the start, so on SQLite a page's
        # other request writing meanwhile (the preview, an upload) is waited for, not a 503.
        begin_write(db)
    brand = community_service.get_brand(db, brand_slug)
    hits: list[Hit] = []
    issues: list[KnownIssue] = []
    degraded = False
    if recording:
        visitor = _visitor(request, user.id if user else None)
        now = utcnow()
        arm, session = ask_sessions.visit_session(
            db, brand, visitor, signed_in=user is not None, now=now
        )
        # Known issues first: they need no Meilisearch, and their impressions are written in
        # the same transaction as the session.
        issues = ask_form.ask_form_issues(
            db,
            brand,
            suggestions.typed_title(title),
            arm=arm,
            session=session,
            default_model=engine_of(request).default_model,
            now=now,
        )
        db.commit()
        if arm == AskArm.SUGGESTIONS:
            hits, degraded = suggestions.suggest(
                db, engine_of(request), brand, title, locale=active_locale(), reader=user
            )
    return render(
        request,
        "kb/_suggestions.html",
        {
            "brand": brand,
            "hits": hits,
            "known_issues": issues,
            "degraded": degraded,
            "q": title[:200],
        },
        # Per visitor (their holdout group, their session's impressions): never from a cache.
        headers={"cache-control": "private"},
    )


@router.post("/kb/deflect", status_code=204, name="kb_deflect")
def deflect(
    request: Request,
    db: SessionDep,
    user: OptionalUser,
    brand: FormText = "",
    entry_type: FormText = "",
    entry_id: FormText = "0",
    q: FormText = "",
) -> Response:
    """Someone writing a question opened a suggestion (sent by the page with sendBeacon)."""
    found = community_service.get_brand(db, brand[:40])
    service_search.record_deflection(
        db,
        found,
        user=user,
        visitor_key=_visitor(request, user.id if user else None),
        query=q,
        entry_type=entry_type[:20],
        entry_id=whole_number(entry_id or "0", field="entry_id", low=0, high=MAX_ID),
    )
    db.commit()
    return Response(status_code=204)


def count_article_view(request: Request, article_id: int, user_id: int | None = None) -> None:
    """Also the page cache's replay: a view served from the cache counts too."""
    key = page_viewer_key(request, user_id)
    if key is not None:
        request.app.state.article_views.record(article_id, key)


def log_search(request: Request, entry: dict[str, Any]) -> None:
    """The page cache's replay: a search page served from the cache is logged too (insights)."""
    request.app.state.search_log.record(**entry, user_id=None)


@router.get("/kb/articles/{article_id}", response_class=HTMLResponse, name="article")
def article_page(request: Request, db: SessionDep, user: OptionalUser, article_id: int) -> Response:
    article = service.access_article(db, user, article_id)
    if article.is_live:
        count_article_view(request, article.id, user.id if user else None)
        replay_on_hit(request, "article_view", article.id)
    related = []
    access = search_access(db, article.brand, user)
    if article.is_live and not access.nothing:
        try:
            found = engine_of(request).search(
                engine_of(request).kb_index(article.brand.slug),
                article.title,
                filters=access.filters(kb=True),  # no solution from a forum closed to the reader
                per_page=4,
                locale=article.locale,
            )
            related = [hit for hit in found.hits if hit.get("id") != f"article-{article.id}"][:3]
        except SearchUnavailable:
            related = []
    return render(
        request,
        "kb/article.html",
        {
            "article": article,
            "brand": article.brand,
            "related": related,
            "is_curator": policy.can_curate(user, article.brand_id),
            "feedback_sent": None,
        },
    )


@router.post("/kb/articles/{article_id}/feedback", response_class=HTMLResponse, name="feedback")
def feedback(
    request: Request,
    db: SessionDep,
    user: OptionalUser,
    article_id: int,
    helpful: FormText = "",
    comment: FormText = "",
) -> Response:
    article = service.access_article(db, user, article_id)
    if helpful not in ("yes", "no"):
        raise FormErrors({"helpful": _("Choose one of the offered options.")})
    article_feedback.record_feedback(
        db,
        article,
        user=user,
        visitor_key=_visitor(request, user.id if user else None),
        helpful=helpful == "yes",
        comment=comment,
    )
    db.commit()
    if not is_htmx(request):
        return flash_redirect(
            request, f"/kb/articles/{article.id}", _("Thank you for your feedback.")
        )
    db.refresh(article)
    return render(
        request,
        "kb/_feedback.html",
        {
            "article": article,
            "feedback_sent": helpful == "yes",
            "is_curator": policy.can_curate(user, article.brand_id),
        },
    )
