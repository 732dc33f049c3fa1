"""/metrics: Prometheus text for loopback scrapers or the token's bearer, nobody else; request
latency by route template; the outbox, support-queue and webhook gauges read from the database;
worker job outcomes; the search breaker and the database pool."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from community.core import jobs, outbox
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.models import User
from community.core.settings import Settings
from crowdservice.models import (
    BreachKind,
    DeliveryStatus,
    Escalation,
    EscalationReason,
    EscalationStatus,
    Priority,
    SLABreach,
    Webhook,
    WebhookDelivery,
)
from tests.conftest import QA

LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.7", 50000)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(app: FastAPI, headers: dict[str, str] | None = None) -> Samples:
    with TestClient(app, client=LOOPBACK) as scraper:
        response = scraper.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_served_to_loopback_only_without_a_token(app: FastAPI) -> None:
    with TestClient(app, client=REMOTE) as remote:
        hidden = remote.get("/metrics")
    assert hidden.status_code == 404
    assert "community_" not in hidden.text
    assert value(scrape(app), "community_outbox_pending") == 0


def test_with_a_token_only_its_bearer_is_served(app: FastAPI, settings: Settings) -> None:
    app.state.settings = settings.model_copy(update={"metrics_token": "scrape-me-0123456789"})
    with TestClient(app, client=LOOPBACK) as local, TestClient(app, client=REMOTE) as remote:
        assert local.get("/metrics").status_code == 404  # the token is needed from anywhere
        wrong = {"Authorization": "Bearer scrape-me-9876543210"}
        assert remote.get("/metrics", headers=wrong).status_code == 404
        assert remote.get("/metrics", headers={"Authorization": "Basic x"}).status_code == 404
        right = {"Authorization": "Bearer scrape-me-0123456789"}
        served = remote.get("/metrics", headers=right)
    assert served.status_code == 200
    assert "community_http_request_duration_seconds" in served.text


def test_request_latency_is_labelled_by_route_template_not_path(
    app: FastAPI, client: TestClient, qa: QA, make_user: Callable[..., User]
) -> None:
    thread = qa.ask(make_user("asker"))
    route = {"route": "/t/{thread_id}", "method": "GET", "status": "2xx"}
    before = value(scrape(app), "community_http_request_duration_seconds_count", **route)

    assert client.get(f"/t/{thread.id}").status_code == 200
    assert client.head(f"/t/{thread.id}").status_code == 200
    assert client.get("/no/such/page/12345").status_code == 404
    assert client.get("/static/favicon.svg").status_code == 200
    client.request("BREW", f"/t/{thread.id}")

    after = scrape(app)
    assert value(after, "community_http_request_duration_seconds_count", **route) == before + 1
    head = {**route, "method": "HEAD"}
    assert value(after, "community_http_request_duration_seconds_count", **head) >= 1
    unmatched = {"route": "<unmatched>", "method": "GET", "status": "4xx"}
    assert value(after, "community_http_request_duration_seconds_count", **unmatched) >= 1
    static = {"route": "/static", "method": "GET", "status": "2xx"}
    assert value(after, "community_http_request_duration_seconds_count", **static) >= 1
    methods = {dict(labels).get("method") for _name, labels in after}
    assert "other" in methods and "BREW" not in methods
    routes = {dict(labels).get("route") for _name, labels in after}
    assert f"/t/{thread.id}" not in routes
    assert not any(route and "12345" in route for route in routes)


def test_outbox_gauges_follow_pending_rows(app: FastAPI, db: Session) -> None:
    outbox.enqueue(db, "probe.metrics", {"id": 1})
    late = outbox.enqueue(db, "probe.metrics", {"id": 2}, delay=timedelta(minutes=5))
    db.commit()
    assert late is not None
    db.execute(
        update(outbox.OutboxEvent)
        .where(outbox.OutboxEvent.id == late.id)
        .values(created_at=utcnow() - timedelta(hours=1), attempts=1)
    )
    db.commit()

    samples = scrape(app)

    assert value(samples, "community_outbox_pending") == 2
    assert value(samples, "community_outbox_retrying") == 1
    assert 3600 <= value(samples, "community_outbox_oldest_pending_age_seconds") < 3700


def test_job_outcomes_are_counted_by_kind(app: FastAPI, db: Session, settings: Settings) -> None:
    worker = jobs.Worker(settings, make_session_factory(db.get_bind()))  # type: ignore[arg-type]
    worker.register("probe.ok", lambda _db, _event: None)

    def refuse(_db: Session, _event: outbox.OutboxEvent) -> None:
        raise RuntimeError("the far side said no")

    def broken_sweep(_db: Session) -> None:
        raise RuntimeError("sweep broke")

    worker.register("probe.fails", refuse)
    worker.every("probe sweep", timedelta(minutes=1), broken_sweep)
    outbox.enqueue(db, "probe.ok", {})
    outbox.enqueue(db, "probe.fails", {})
    db.commit()
    before = scrape(app)

    worker.run_once()

    after = scrape(app)
    for kind, outcome in [
        ("probe.ok", "ok"),
        ("probe.fails", "retried"),
        ("probe sweep", "failed"),
    ]:
        labels = {"kind": kind, "outcome": outcome}
        assert value(after, "community_worker_jobs_total", **labels) == (
            value(before, "community_worker_jobs_total", **labels) + 1
        ), labels
    assert value(after, "community_outbox_retrying") == 1


def test_support_queue_breach_and_webhook_gauges(
    app: FastAPI, db: Session, qa: QA, make_user: Callable[..., User]
) -> None:
    thread = qa.ask(make_user("asker"))
    now = utcnow()
    escalation = Escalation(
        thread_id=thread.id, brand_id=qa.forum.brand_id, reason=EscalationReason.CRITICAL,
        priority=Priority.P1, status=EscalationStatus.OPEN, first_response_due_at=now,
        resolution_due_at=now + timedelta(hours=4),
    )  # fmt: skip
    db.add(escalation)
    db.flush()
    db.add(
        SLABreach(
            escalation_id=escalation.id,
            kind=BreachKind.FIRST_RESPONSE,
            priority=Priority.P1,
            due_at=now,
        )
    )
    hook = Webhook(brand_id=qa.forum.brand_id, url="https://helpdesk.example/h", secret="s" * 32)
    db.add(hook)
    db.flush()
    for number, (status, attempts) in enumerate(
        [(DeliveryStatus.PENDING, 0), (DeliveryStatus.PENDING, 2), (DeliveryStatus.FAILED, 9)]
    ):
        db.add(
            WebhookDelivery(
                webhook_id=hook.id, event="escalation.created", message_id=f"m{number}",
                payload={}, status=status, attempts=attempts,
            )
        )  # fmt: skip
    db.commit()

    samples = scrape(app)

    active = {"brand": "acme", "priority": "P1", "status": "open"}
    assert value(samples, "community_escalations_active", **active) == 1
    breach = {"kind": "first_response", "priority": "P1"}
    assert value(samples, "community_sla_breaches_open", **breach) == 1
    assert (
        "community_sla_breaches_open",
        frozenset({"kind": "resolution", "priority": "P2"}.items()),
    ) in samples
    assert value(samples, "community_webhook_deliveries_pending") == 2
    assert value(samples, "community_webhook_deliveries_retrying") == 1
    assert value(samples, "community_webhook_deliveries_failed") == 1


def test_search_breaker_and_database_pool(app: FastAPI) -> None:
    before = scrape(app)
    assert value(before, "community_search_breaker_open") == 0
    assert value(before, "community_db_pool_size") > 0

    app.state.search._trip(ConnectionError("meilisearch went away"))

    assert value(scrape(app), "community_search_breaker_open") == 1
    app.state.search.reset_breaker()
    assert value(scrape(app), "community_search_breaker_open") == 0


# Two processes of one host count a job each (a forked child, as a pre-fork server's workers
# are), and the scrape shows both.
_TWO_PROCESSES = """
import os, sys
from prometheus_client import generate_latest
from community.core.metrics import JOBS, counted_metrics
child = os.fork()
JOBS.labels("probe.multi", "ok").inc()
if child == 0:
    os._exit(0)
os.waitpid(child, 0)
sys.stdout.write(generate_latest(counted_metrics()).decode())
"""


def test_several_processes_share_counters_in_multiprocess_mode(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    shown = subprocess.run(
        [sys.executable, "-c", _TWO_PROCESSES], env=env, check=True, timeout=60, capture_output=True
    ).stdout.decode()
    assert 'community_worker_jobs_total{kind="probe.multi",outcome="ok"} 2.0' in shown
    assert len(list(tmp_path.glob("counter_*.db"))) == 2


def test_the_pool_gauge_counts_connections_in_use(app: FastAPI, engine: Engine) -> None:
    idle = value(scrape(app), "community_db_pool_checked_out")
    with engine.connect():
        busy = value(scrape(app), "community_db_pool_checked_out")
    assert busy == idle + 1
