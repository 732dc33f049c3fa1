"""What the admins' webhook pages list: a brand's webhooks with their deliveries counted by
status, one webhook's newest deliveries with every attempt, and a delivery by id."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from community.core.errors import NotFound
from community.core.models import Brand, User
from crowdservice import webhooks
from crowdservice.models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from tests.conftest import QA
from tests.crowdservice.helpers import add_webhook, escalated

UserFactory = Callable[..., User]


def _deliveries(
    db: Session, hook: Webhook, statuses: list[DeliveryStatus]
) -> list[WebhookDelivery]:
    rows = [
        WebhookDelivery(
            webhook_id=hook.id,
            event="escalation.handed_off",
            message_id=f"msg_{hook.id}_{index}",
            payload={},
            status=status,
        )
        for index, status in enumerate(statuses)
    ]
    db.add_all(rows)
    db.commit()
    return rows


def test_webhooks_with_their_deliveries_counted_by_status(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    busy, idle = add_webhook(db, item), add_webhook(db, item)
    other_brand = Brand(slug="other", name="Other")
    db.add(other_brand)
    db.commit()
    elsewhere = Webhook(
        brand_id=other_brand.id, url="https://other.example/hooks", secret="whsec_x",
        events=["escalation.resolved"], active=True,
    )  # fmt: skip
    db.add(elsewhere)
    db.commit()
    pending, succeeded, failed = (
        DeliveryStatus.PENDING,
        DeliveryStatus.SUCCEEDED,
        DeliveryStatus.FAILED,
    )
    _deliveries(db, busy, [pending, succeeded, succeeded, failed, succeeded])
    _deliveries(db, elsewhere, [failed])

    hooks = webhooks.brand_webhooks(db, item.thread.forum.brand)
    assert [hook.id for hook in hooks] == [busy.id, idle.id]
    counts = webhooks.delivery_counts(db, [hook.id for hook in hooks])
    assert counts[busy.id] == {"pending": 1, "succeeded": 3, "failed": 1}
    assert counts[idle.id] == {}  # no deliveries: nothing counted, and no error to read it
    assert elsewhere.id not in counts
    assert dict(webhooks.delivery_counts(db, [])) == {}


def test_the_delivery_log_newest_first_with_attempts_in_order(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    hook, other = add_webhook(db, item), add_webhook(db, item)
    first, second, third = _deliveries(db, hook, [DeliveryStatus.SUCCEEDED] * 3)
    (not_mine,) = _deliveries(db, other, [DeliveryStatus.PENDING])
    db.add_all(
        [
            WebhookAttempt(delivery_id=second.id, status_code=500, duration_ms=10),
            WebhookAttempt(delivery_id=second.id, status_code=200, duration_ms=12),
            WebhookAttempt(delivery_id=first.id, status_code=200, duration_ms=9),
            WebhookAttempt(delivery_id=not_mine.id, error="timeout", duration_ms=5000),
        ]
    )
    db.commit()

    log = webhooks.delivery_log(db, hook)
    assert [delivery.id for delivery in log.deliveries] == [third.id, second.id, first.id]
    assert [attempt.status_code for attempt in log.attempts[second.id]] == [500, 200]
    assert [attempt.status_code for attempt in log.attempts[first.id]] == [200]
    assert log.attempts[third.id] == []
    assert not_mine.id not in log.attempts
    short = webhooks.delivery_log(db, hook, limit=2)
    assert [delivery.id for delivery in short.deliveries] == [third.id, second.id]
    assert set(short.attempts) == {second.id}


def test_a_delivery_by_id(db: Session, qa: QA, make_user: UserFactory) -> None:
    item = escalated(db, qa, make_user("asker"))
    (delivery,) = _deliveries(db, add_webhook(db, item), [DeliveryStatus.FAILED])
    assert webhooks.get_delivery(db, delivery.id).id == delivery.id
    db.rollback()
    with pytest.raises(NotFound):
        webhooks.get_delivery(db, delivery.id + 1000)
