"""Helpdesk webhooks: per-brand endpoints that receive escalation events, signed the Standard
Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`). The helpdesk's signed
call-back that reports the ticket it opened is in crowdservice.callbacks.

- `endpoints`: the webhooks admins create, change, rotate the secret of and delete, and the
  guard that refuses URLs on private, loopback, link-local, multicast or reserved addresses
  (server-side request forgery) unless the admin allowed them for testing;
- `delivery`: at-least-once delivery with a per-message id (written in the caller's
  transaction, claimed with a lease, sent outside any transaction, retried for 24 hours on the
  Standard Webhooks schedule), manual redelivery, and the worker's periodic run;
- `log`: what the admins' pages list: the webhooks with their deliveries by status, and one
  webhook's deliveries with their attempts.
"""

from crowdservice.webhooks.delivery import (
    deliver_due,
    enqueue_event,
    redeliver,
    register,
)
from crowdservice.webhooks.endpoints import (
    EVENTS,
    check_url,
    create_webhook,
    delete_webhook,
    get_webhook,
    is_public_address,
    masked_secret,
    new_secret,
    rotate_secret,
    update_webhook,
)
from crowdservice.webhooks.log import (
    DeliveryLog,
    brand_webhooks,
    delivery_counts,
    delivery_log,
    get_delivery,
)

__all__ = [
    "EVENTS",
    "DeliveryLog",
    "brand_webhooks",
    "check_url",
    "create_webhook",
    "delete_webhook",
    "deliver_due",
    "delivery_counts",
    "delivery_log",
    "enqueue_event",
    "get_delivery",
    "get_webhook",
    "is_public_address",
    "masked_secret",
    "new_secret",
    "redeliver",
    "register",
    "rotate_secret",
    "update_webhook",
]
