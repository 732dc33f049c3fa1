"""The application factory: one FastAPI app serving pages, htmx fragments and /api/v1."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from community import api as community_api
from community import (
    api_docs,
    brand_admin_api,
    brand_admin_routes,
    brand_look_routes,
    brand_staff_routes,
    notification_routes,
    thread_api,
    thread_reading,
    thread_routes,
    upload_routes,
)
from community import routes as community_routes
from community.accounts import routes as accounts_routes
from community.accounts import sso_routes, two_factor_routes
from community.core import metrics, model_client
from community.core.admission import AdmissionControl
from community.core.auth import Passwords
from community.core.db import make_engine, make_read_session_factory, make_session_factory
from community.core.gc_control import collect_at_safe_points
from community.core.hosts import BrandHosts
from community.core.logs import configure_logging
from community.core.member_pages import MemberPages
from community.core.page_cache import PageCache, PageCacheMiddleware
from community.core.protocol import HeadAsGet, RequireUtf8Forms
from community.core.ratelimit import RateLimiter
from community.core.security import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
    csrf_protect,
    path_ids_exist,
    send_unavailable,
)
from community.core.settings import Settings
from community.core.throttle import LimitStore, LoginThrottle
from community.core.viewcount import ViewCounter
from community.core.web import (
    STATIC_DIR,
    add_page_context,
    build_templates,
    install_error_handlers,
)
from community.members import api as members_api
from community.members import avatars as member_avatars
from community.members import routes as members_routes
from community.wiring import register_metrics, subscribe_all
from crowdservice import routes as crowd_routes
from crowdservice import routes_admin as crowd_admin
from crowdservice import routes_agent as crowd_agent
from crowdservice import routes_followup as crowd_followup
from crowdservice import routes_insights as crowd_insights
from crowdservice import routes_known_issues as crowd_known_issues
from crowdservice import routes_saved_replies as crowd_saved_replies
from crowdservice import routes_webhooks as crowd_webhooks
from kb import api as kb_api
from kb import routes as kb_routes
from kb import routes_curation as kb_curation
from kb import routes_duplicates as kb_duplicates
from kb import routes_search_model as kb_search_model
from kb import service as kb_service
from kb.search import SearchEngine
from kb.search_log import SearchLog
from kb.views import ArticleViews
from moderation import api as moderation_api
from moderation import routes as moderation_routes
from moderation import routes_admin as moderation_admin

logger = logging.getLogger(__name__)


async def _flush_views_periodically(flushes: list[Callable[[], int]], settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.view_flush_seconds)
        for flush in flushes:
            try:
                await run_in_threadpool(flush)
            except Exception:  # a failed flush keeps its views buffered; never stop the loop
                logger.exception("view flush failed")


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings)
    subscribe_all()
    register_metrics()
    settings.effective_secret_key  # noqa: B018 - create the generated secret now, not mid-request
    # Query vectors and language guesses from the shared model server, when there is one.
    model_client.configure(settings.model_server_address)
    # An engine handed in belongs to the caller (tests share one): only dispose our own.
    owns_engine = engine is None
    engine = engine or make_engine(
        settings.sqlalchemy_url, concurrency=settings.max_concurrent_requests
    )
    session_factory = make_session_factory(engine)

    view_counter = ViewCounter(session_factory)
    article_views = ArticleViews(session_factory)
    search_log = SearchLog(session_factory)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The app's long-lived objects (templates, routes, ORM mappers) never need collecting;
        # freezing them keeps full GC pauses out of request latency.
        gc.collect()
        gc.freeze()
        # Python 3.11 collects cycles mid-allocation in any thread: a heap corruption under
        # load (community.core.gc_control).
        collect_at_safe_points()
        flusher = asyncio.create_task(
            _flush_views_periodically(
                [view_counter.flush, article_views.flush, search_log.flush], settings
            )
        )
        try:
            yield
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await run_in_threadpool(view_counter.flush)
            await run_in_threadpool(article_views.flush)
            await run_in_threadpool(search_log.flush)
            if owns_engine:
                engine.dispose()

    app = FastAPI(
        title="Community API",
        version="1",
        summary="Brand support community: forums, answers, knowledge base, moderation.",
        docs_url=None,  # our own page (community/api_docs.py): vendored, no CDN
        redoc_url=None,
        openapi_url="/openapi.json",
        # Every route, pages and API alike: ids in the path must be able to name a row, and
        # unsafe methods pass the CSRF check.
        dependencies=[Depends(path_ids_exist), Depends(csrf_protect)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.templates = build_templates()
    app.state.templates.globals["next_statuses"] = kb_service.next_statuses
    app.state.templates.globals["avatar"] = member_avatars.avatar  # no query: the user row
    app.state.passwords = Passwords(settings)
    # One store of counters for login throttling and rate limits, so one outage is one warning.
    app.state.limit_store = limit_store = LimitStore(settings)
    app.state.login_throttle = LoginThrottle(settings, limit_store)
    app.state.view_counter = view_counter
    app.state.article_views = article_views
    app.state.search_log = search_log
    app.state.page_cache = PageCache(settings)
    app.state.rate_limiter = RateLimiter(settings, limit_store)
    # Pages only read the indexes; the worker writes them (with its own engine).
    app.state.search = SearchEngine(settings, writes=False)

    install_error_handlers(app)
    app.add_route("/metrics", metrics.metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Most requests are a thread's page or write: their routes are matched first (routes are
    # tried in order, and FastAPI's included routers cost a few microseconds per route tried).
    app.include_router(thread_routes.router)
    if settings.api_docs_enabled:
        app.include_router(api_docs.router)
    app.include_router(community_api.probes)
    app.include_router(community_api.router)
    app.include_router(thread_api.router)
    app.include_router(kb_api.router)
    app.include_router(moderation_api.router)
    app.include_router(brand_look_routes.api)
    app.include_router(sso_routes.api)
    app.include_router(brand_admin_api.router)
    app.include_router(brand_staff_routes.api)
    # KB, moderation and support pages first: /b/{brand}/kb, /search, /mod, /conduct, /agent
    # and /insights must win over /b/{brand}/{forum} (those forum slugs are reserved).
    app.include_router(kb_routes.router)
    app.include_router(kb_curation.router)
    app.include_router(kb_search_model.router)
    # Before moderation's /b/{brand}/mod/{queue}: the duplicates section is not one of its queues.
    app.include_router(kb_duplicates.router)
    app.include_router(moderation_routes.router)
    app.include_router(moderation_admin.router)
    app.include_router(crowd_routes.router)
    app.include_router(crowd_webhooks.router)
    app.include_router(crowd_agent.router)
    app.include_router(crowd_admin.router)
    app.include_router(crowd_insights.router)
    app.include_router(crowd_insights.api)
    app.include_router(crowd_followup.router)
    app.include_router(crowd_followup.api)
    app.include_router(crowd_saved_replies.router)
    app.include_router(crowd_saved_replies.api)
    app.include_router(crowd_known_issues.router)
    app.include_router(crowd_known_issues.api)
    add_page_context(app, crowd_known_issues.known_issue_banners)  # the brand's open issues
    app.include_router(community_routes.router)
    app.include_router(accounts_routes.router)
    app.include_router(two_factor_routes.router)
    app.include_router(brand_look_routes.router)
    app.include_router(sso_routes.router)
    app.include_router(brand_admin_routes.router)
    app.include_router(brand_staff_routes.router)
    app.include_router(thread_routes.forum_router)
    app.include_router(notification_routes.router)
    app.include_router(members_routes.router)
    app.include_router(members_api.router)
    app.include_router(upload_routes.router)
    app.include_router(upload_routes.api)

    # Inside the request context (it needs the viewer, the CSRF token, the language) and the
    # security headers (a cached page still gets this response's headers and CSP nonce).
    app.add_middleware(
        PageCacheMiddleware,
        replays={
            "thread_view": thread_routes.count_thread_view,
            "article_view": kb_routes.count_article_view,
            "search": kb_routes.log_search,
        },
    )
    # Added last = outermost: headers wrap everything, including 413s and error pages.
    app.add_middleware(
        RequestContextMiddleware,
        settings=settings,
        # The viewer's round is reads (and now and then a session touch): no transaction.
        session_factory=make_read_session_factory(engine),
        # Signed-in pages that members of one class share (the thread page, the hottest).
        member_pages=MemberPages({"thread": thread_reading.classify_member}),
    )
    # Which brand a Host is (and 400 for hosts the site does not know), before the viewer is
    # loaded; the brands' stylesheets are answered there, without a viewer or a query.
    app.add_middleware(BrandHosts)
    # Reads form bodies, so inside the size limit.
    app.add_middleware(RequireUtf8Forms)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        # An image and the form around it (community.core.uploads checks the image itself).
        larger=dict.fromkeys(upload_routes.UPLOAD_PATHS, settings.uploads_max_bytes + 64 * 1024),
    )
    app.add_middleware(HeadAsGet)
    # Outside everything that may touch the database, inside the security headers (a 503 gets
    # them too).
    app.add_middleware(
        AdmissionControl,
        limit=settings.max_concurrent_requests,
        queue_limit=settings.request_queue_limit,
        queue_seconds=settings.request_queue_seconds,
        refuse=send_unavailable,
    )
    app.add_middleware(SecurityHeadersMiddleware, settings=settings)
    # Outermost: the request id is set before anything logs, and the time covers every layer.
    app.add_middleware(metrics.ObservedRequests)
    return app
