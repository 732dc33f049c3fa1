"""What the admins' webhook pages show: a brand's webhooks with how their deliveries stand, and
one webhook's recent deliveries with every attempt at each."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core.errors import NotFound
from community.core.models import Brand
from crowdservice.models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery

LOG_LIMIT = 100


def brand_webhooks(db: Session, brand: Brand) -> list[Webhook]:
    return list(
        db.scalars(select(Webhook).where(Webhook.brand_id == brand.id).order_by(Webhook.id))
    )


def delivery_counts(db: Session, webhook_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per webhook, how many of its deliveries are "pending", "succeeded" or "failed"; a status
    no delivery has is absent (reading a webhook with no deliveries gives {})."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for webhook_id, status, count in db.execute(
        select(WebhookDelivery.webhook_id, WebhookDelivery.status, func.count())
        .where(WebhookDelivery.webhook_id.in_(webhook_ids))
        .group_by(WebhookDelivery.webhook_id, WebhookDelivery.status)
    ):
        counts[webhook_id][DeliveryStatus(status).value] = count
    return counts


@dataclass(frozen=True, slots=True)
class DeliveryLog:
    deliveries: list[WebhookDelivery]  # newest first
    attempts: dict[int, list[WebhookAttempt]]  # by delivery id, oldest first; [] for none


def delivery_log(db: Session, webhook: Webhook, *, limit: int = LOG_LIMIT) -> DeliveryLog:
    deliveries = list(
        db.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )
    attempts: dict[int, list[WebhookAttempt]] = defaultdict(list)
    for attempt in db.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_([delivery.id for delivery in deliveries]))
        .order_by(WebhookAttempt.id)
    ):
        attempts[attempt.delivery_id].append(attempt)
    return DeliveryLog(deliveries=deliveries, attempts=attempts)


def get_delivery(db: Session, delivery_id: int) -> WebhookDelivery:
    """A delivery, locked for the caller's transaction (a redelivery must not race the
    worker's claim of it)."""
    delivery = db.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise NotFound()
    return delivery
