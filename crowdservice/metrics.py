"""Crowd-service's gauges for /metrics (community.core.metrics), read from the database at each
scrape: the agents' queues, the service targets missed and not yet met, and the webhook
deliveries waiting or given up. community.wiring registers them at start-up."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core.models import Brand
from crowdservice.models import (
    ACTIVE_ESCALATION,
    BreachKind,
    DeliveryStatus,
    Escalation,
    Priority,
    SLABreach,
    WebhookDelivery,
)


def database_gauges(db: Session) -> Iterator[Metric]:
    yield escalation_queues(db)
    yield open_breaches(db)
    yield from webhook_deliveries(db)


def escalation_queues(db: Session) -> Metric:
    """Active escalations per brand, priority and status (a label set appears once a brand has
    one; series of brands without any are absent, not zero)."""
    gauge = GaugeMetricFamily(
        "community_escalations_active",
        "Escalations being worked on (not resolved or returned) by brand, priority and status",
        labels=["brand", "priority", "status"],
    )
    rows = db.execute(
        select(Brand.slug, Escalation.priority, Escalation.status, func.count())
        .join(Brand, Brand.id == Escalation.brand_id)
        .where(Escalation.status.in_(ACTIVE_ESCALATION))
        .group_by(Brand.slug, Escalation.priority, Escalation.status)
    )
    for brand, priority, status, count in rows:
        gauge.add_metric([brand, str(priority), str(status)], count)
    return gauge


def open_breaches(db: Session) -> Metric:
    """Targets missed whose response or resolution has not come yet."""
    counts = {(kind, priority): 0 for kind in BreachKind for priority in Priority}
    rows = db.execute(
        select(SLABreach.kind, SLABreach.priority, func.count())
        .where(SLABreach.met_at.is_(None))
        .group_by(SLABreach.kind, SLABreach.priority)
    )
    for kind, priority, count in rows:
        counts[BreachKind(kind), Priority(priority)] = count
    gauge = GaugeMetricFamily(
        "community_sla_breaches_open",
        "SLA targets missed and not met yet, by target (first_response, resolution) and priority",
        labels=["kind", "priority"],
    )
    for (kind, priority), count in counts.items():
        gauge.add_metric([kind.value, priority.value], count)
    return gauge


def webhook_deliveries(db: Session) -> Iterator[Metric]:
    pending, retrying, failed = db.execute(
        select(
            func.count().filter(WebhookDelivery.status == DeliveryStatus.PENDING),
            func.count().filter(
                WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.attempts > 0
            ),
            func.count().filter(WebhookDelivery.status == DeliveryStatus.FAILED),
        ).where(WebhookDelivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.FAILED]))
    ).one()
    yield GaugeMetricFamily(
        "community_webhook_deliveries_pending",
        "Webhook deliveries not delivered yet (first try or retrying)",
        value=pending,
    )
    yield GaugeMetricFamily(
        "community_webhook_deliveries_retrying",
        "Webhook deliveries that failed at least once and will be tried again",
        value=retrying,
    )
    yield GaugeMetricFamily(
        "community_webhook_deliveries_failed",
        "Webhook deliveries given up after the retry window (they stay until deleted)",
        value=failed,
    )
