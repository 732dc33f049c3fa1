"""Prometheus metrics at /metrics, and the request middleware that feeds them and gives each
request its id (docs/observability.md lists every metric).

Three kinds of figures:

- counted as things happen (request latency here, job outcomes in community.core.jobs):
  prometheus-client metrics, shared by every process of a host
  through its multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set;
- read from the database at scrape time, one cheap query per source (outbox depth here; the
  domains add theirs with `add_database_gauges` at start-up, from community.wiring), so they are
  right whichever process answers;
- read from the answering process at scrape time (its database pool, its search breaker).

/metrics answers a request bearing `Authorization: Bearer <METRICS_TOKEN>` when that token is
set, else loopback clients only; anyone else gets the site's 404, so it is not advertised.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from community.core import logs
from community.core.clock import utcnow
from community.core.errors import NotFound
from community.core.outbox import OutboxEvent
from community.core.settings import Settings

logger = logging.getLogger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
# Labels take a bounded set of values: a client's made-up method or path must not create series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"

REQUEST_SECONDS = Histogram(
    "community_http_request_duration_seconds",
    "Time from a request's arrival to its response's end, by route template",
    ["route", "method", "status"],
)
JOBS = Counter(
    "community_worker_jobs",
    "Jobs the worker ran: outbox events by kind (ok, retried) and sweeps by name (ok, failed)",
    ["kind", "outcome"],
)


# --- requests ----------------------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def route_template(scope: Scope) -> str:
    """The path pattern that handled the request ("/t/{thread_id}"), never the raw path."""
    # Set by the router (and for HEAD, by community.core.protocol.HeadAsGet).
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str) and path:
        return path
    if "app_root_path" in scope:
        # A mounted app answered (static files): the router names no route, the mount's path
        # is what the root path gained.
        return str(scope["root_path"])[len(scope["app_root_path"]) :] or UNMATCHED_ROUTE
    return UNMATCHED_ROUTE


_REQUEST_ID = logs.REQUEST_ID_HEADER.lower().encode()
_STATUS_CLASSES = {first: f"{first}xx" for first in range(1, 6)}
# The histogram's child per label set: labels() validates and locks on every call.
_timers: dict[tuple[str, str, int], Histogram] = {}


def _timer(route: str, method: str, status: int) -> Histogram:
    # Bounded keys, like the labels: a made-up method is "other".
    key = (route, method if method in _METHODS else "other", status // 100)
    timer = _timers.get(key)
    if timer is None:
        status_class = _STATUS_CLASSES.get(key[2], "other")
        timer = _timers[key] = REQUEST_SECONDS.labels(key[0], key[1], status_class)
    return timer


class ObservedRequests:
    """Gives each request its id (a well-formed X-Request-ID from the client or proxy, else a
    new one) in the logging context and the response headers, and times it by route.

    Plain ASGI, the outermost layer: the time includes every middleware (queueing for a
    database connection too), and a 503 or an error page carries the id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = logs.accept_request_id(_header(scope, _REQUEST_ID))
        header = _REQUEST_ID
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (header, request_id.encode())]
            await send(message)

        started = time.perf_counter()
        token = logs.request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logs.request_id.reset(token)
            _timer(route_template(scope), scope["method"], status).observe(
                time.perf_counter() - started
            )


# --- figures read at scrape time -------------------------------------------------------------

DatabaseGauges = Callable[[Session], Iterable[Metric]]
_database_gauges: list[DatabaseGauges] = []


def add_database_gauges(source: DatabaseGauges) -> None:
    """Compute these gauges at each scrape (one cheap query); adding one again is a no-op."""
    if source not in _database_gauges:
        _database_gauges.append(source)


def outbox_gauges(db: Session) -> Iterator[Metric]:
    pending, retrying, oldest = db.execute(
        select(
            func.count(),
            func.count().filter(OutboxEvent.attempts > 0),
            func.min(OutboxEvent.created_at),
        ).where(OutboxEvent.done_at.is_(None))
    ).one()
    yield GaugeMetricFamily(
        "community_outbox_pending", "Outbox events not done yet (due or delayed)", value=pending
    )
    yield GaugeMetricFamily(
        "community_outbox_retrying",
        "Outbox events not done that failed at least once (backing off)",
        value=retrying,
    )
    age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    yield GaugeMetricFamily(
        "community_outbox_oldest_pending_age_seconds",
        "Age of the oldest outbox event not done yet (0 when none)",
        value=max(age, 0.0),
    )


add_database_gauges(outbox_gauges)


class _ScrapeTimeGauges(Collector):
    """The database's gauges and this process's pool and search breaker."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from self._pool()
        search = getattr(self.state, "search", None)
        if search is not None and self.state.settings.meili_url:
            # A configured server that is not available: a recent failure opened the breaker.
            yield GaugeMetricFamily(
                "community_search_breaker_open",
                "1 while this process skips Meilisearch after a failure, else 0",
                value=int(not search.available),
            )
        with self.state.session_factory() as db:
            for source in tuple(_database_gauges):
                try:
                    yield from list(source(db))
                except SQLAlchemyError:
                    # The other figures still matter most when the database struggles.
                    logger.exception("metrics: %s failed", source.__qualname__)
                    db.rollback()

    def _pool(self) -> Iterator[Metric]:
        pool = self.state.engine.pool
        checked_out = getattr(pool, "checkedout", None)
        size = getattr(pool, "size", None)
        if checked_out is None or size is None:
            return  # a pool that does not count (SQLite in memory)
        yield GaugeMetricFamily(
            "community_db_pool_checked_out",
            "Database connections this process has in use",
            value=checked_out(),
        )
        yield GaugeMetricFamily(
            "community_db_pool_size", "Connections this process's pool keeps open", value=size()
        )


class _Scrape(Collector):
    def __init__(self, collectors: list[Collector]) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def counted_metrics() -> Collector:
    """This process's counters, or every process's on this host in multiprocess mode."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def render(state: Any) -> bytes:
    """The exposition text for the app whose state is given."""
    return generate_latest(_Scrape([counted_metrics(), _ScrapeTimeGauges(state)]))


def may_scrape(request: Request, settings: Settings) -> bool:
    if settings.metrics_token:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), settings.metrics_token.encode()
        )
    # request.client is the socket peer, or the forwarded client when the peer is one of
    # TRUSTED_PROXIES (uvicorn's proxy headers), as for rate limits.
    return request.client is not None and request.client.host in LOOPBACK


async def metrics_endpoint(request: Request) -> Response:
    if not may_scrape(request, request.app.state.settings):
        raise NotFound()
    body = await run_in_threadpool(render, request.app.state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
