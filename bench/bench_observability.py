"""What observability costs: the request middleware (request id, latency histogram) per request,
and one /metrics scrape over a PostgreSQL database with a deep outbox, a busy support queue and
many webhook deliveries (the gauges' queries).

    .venv/bin/python bench/bench_observability.py
    .venv/bin/python bench/bench_observability.py --rows 20000   # smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from common import DEFAULT_ADMIN_URL, calibrate, code_version, console, run_main, throwaway_postgres
from sqlalchemy import insert

from community.core import metrics, migrate
from community.core.clock import utcnow
from community.core.db import make_engine, make_session_factory
from community.core.models import Brand, Forum, Thread, User
from community.core.outbox import OutboxEvent
from community.wiring import register_metrics
from crowdservice.models import Escalation, SLABreach, Webhook, WebhookDelivery

REQUESTS = 20_000
SCRAPES = 30


async def _answer(_scope: Any, _receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _requests(app: Any, count: int) -> float:
    """Microseconds per request through `app` (no server, no network)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: Any) -> None:
        return None

    scope = {"type": "http", "method": "GET", "path": "/t/1", "headers": [], "root_path": ""}
    started = time.perf_counter()
    for _ in range(count):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - started) / count * 1e6


def middleware_cost() -> tuple[float, float]:
    plain = min(asyncio.run(_requests(_answer, REQUESTS)) for _ in range(3))
    observed = min(
        asyncio.run(_requests(metrics.ObservedRequests(_answer), REQUESTS)) for _ in range(3)
    )
    return plain, observed


def seed(url: str, rows: int) -> None:
    engine = make_engine(url)
    now = utcnow()
    with make_session_factory(engine)() as db:
        brand = Brand(slug="acme", name="Acme", description="", theme={}, default_locale="en")
        db.add(brand)
        db.flush()
        forum = Forum(brand_id=brand.id, slug="f", name="F", description="")
        user = User(
            username="u",
            username_key="u",
            display_name="U",
            email="u@example.com",
            email_key="u@example.com",
            password_hash="!",  # noqa: S106 - nobody signs in
        )
        db.add_all([forum, user])
        db.flush()
        hook = Webhook(brand_id=brand.id, url="https://h.example/", secret="s" * 32)
        db.add(hook)
        db.flush()
        db.execute(
            insert(Thread),
            [
                {"forum_id": forum.id, "author_id": user.id, "title": f"t{n}", "locale": "en"}
                for n in range(rows // 10)
            ],
        )
        thread_ids = list(range(1, rows // 10 + 1))
        db.execute(
            insert(OutboxEvent),
            [{"kind": "search.thread", "payload": {"id": n}} for n in range(rows)],
        )
        db.execute(
            insert(Escalation),
            [
                {
                    "thread_id": thread_id,
                    "brand_id": brand.id,
                    "reason": "no_response",
                    "priority": ("P1", "P2", "P3", "P4")[thread_id % 4],
                    "status": ("open", "claimed", "resolved", "returned")[thread_id % 4],
                    "first_response_due_at": now,
                    "resolution_due_at": now + timedelta(hours=4),
                }
                for thread_id in thread_ids
            ],
        )
        db.execute(
            insert(SLABreach),
            [
                {"escalation_id": n, "kind": "first_response", "priority": "P1", "due_at": now}
                for n in thread_ids[::3]
            ],
        )
        db.execute(
            insert(WebhookDelivery),
            [
                {
                    "webhook_id": hook.id,
                    "event": "escalation.created",
                    "message_id": f"m{n}",
                    "payload": {},
                    "status": ("pending", "succeeded", "failed")[n % 3],
                }
                for n in range(rows // 10)
            ],
        )
        db.commit()
    engine.dispose()


def scrape_times(url: str) -> list[float]:
    engine = make_engine(url)
    register_metrics()
    state = SimpleNamespace(engine=engine, session_factory=make_session_factory(engine))
    metrics.render(state)  # warm: connections, statement caches
    times = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        metrics.render(state)
        times.append((time.perf_counter() - started) * 1000)
    engine.dispose()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="pending outbox rows")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    console.print(f"code {code_version()}, machine speed {calibrate():.0f} ms (lower is faster)")
    plain, observed = middleware_cost()
    console.print(
        f"middleware: {observed - plain:.1f} µs per request "
        f"({plain:.1f} µs bare ASGI call, {observed:.1f} µs with ObservedRequests)"
    )
    with throwaway_postgres(args.admin_url, "bench_observability") as database:
        migrate.upgrade(database.sqlalchemy_url)
        seed(database.sqlalchemy_url, args.rows)
        times = scrape_times(database.sqlalchemy_url)
    console.print(
        f"/metrics scrape with {args.rows:,} pending outbox rows, {args.rows // 10:,} "
        f"escalations and webhook deliveries: median {statistics.median(times):.1f} ms, "
        f"max {max(times):.1f} ms ({SCRAPES} scrapes)"
    )
    return 0


if __name__ == "__main__":
    run_main(main)
