"""Delivering webhook events, at least once, with a per-message id so receivers can drop
repeats:

- `enqueue_event` writes one delivery per subscribed webhook in the caller's transaction, so
  nothing is sent for a change that rolls back and nothing is lost once it commits;
- `deliver_due` (run by the worker every few seconds) claims due deliveries with a lease
  (SKIP LOCKED on PostgreSQL; a conditional update inside SQLite's writer lock), commits the
  claim, then posts each one outside any transaction, and records the attempt afterwards.
  A claimed delivery is never sent by two workers at once, and a delivery that succeeded is
  never sent again unless an admin asks for it (`redeliver`, same message id);
- failures are retried on the schedule Standard Webhooks recommends (5 s, 5 min, 30 min, 2 h,
  5 h, 10 h, 10 h) until the next try would fall more than 24 hours after the event.

Each request goes to the address the URL guard checked (with the original Host header and TLS
server name), so DNS cannot swap it in between.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlunsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook as StandardWebhook

from community.core import netguard, outbox, tls
from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.db import begin_write
from community.core.errors import Conflict
from community.core.i18n import gettext as _
from community.core.jobs import Worker
from community.core.models import User
from community.core.policy import ensure_admin
from crowdservice.models import (
    DeliveryStatus,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from crowdservice.webhooks.endpoints import EVENTS, parse_url

logger = logging.getLogger(__name__)

# Standard Webhooks' recommended retry schedule: the wait after the 1st, 2nd, ... failure.
BACKOFF = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
RETRY_WINDOW = timedelta(hours=24)
DELIVERY_INTERVAL = timedelta(seconds=5)
USER_AGENT = "community-webhooks/1.0"


def enqueue_event(
    db: Session,
    brand_id: int,
    event: str,
    payload: dict[str, Any],
    *,
    escalation_id: int | None = None,
) -> list[WebhookDelivery]:
    """One delivery per active webhook of the brand that subscribed to `event`, written in the
    caller's transaction (flushed, not committed): nothing is sent before it commits."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    json.dumps(payload)  # fail here, in the caller's transaction, not later in the worker
    webhooks = db.scalars(
        select(Webhook)
        .where(Webhook.brand_id == brand_id, Webhook.active.is_(True))
        .order_by(Webhook.id)
    )
    now = utcnow()
    deliveries = [
        WebhookDelivery(
            webhook_id=webhook.id,
            escalation_id=escalation_id,
            event=event,
            message_id="msg_" + secrets.token_urlsafe(18),
            payload=payload,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for webhook in webhooks
        if event in webhook.events
    ]
    db.add_all(deliveries)
    db.flush()
    return deliveries


@dataclass(frozen=True, slots=True)
class _Job:
    """What a claimed delivery needs once the claiming transaction has ended."""

    delivery_id: int
    message_id: str
    event: str
    payload: dict[str, Any]
    created_at: datetime
    url: str
    secret: str
    allow_private: bool
    active: bool


@dataclass(frozen=True, slots=True)
class _Outcome:
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _claim(db: Session, token: str, now: datetime, lease: timedelta, limit: int) -> list[_Job]:
    ids = outbox.lease_due(
        db,
        WebhookDelivery.id,
        due=(WebhookDelivery.status == DeliveryStatus.PENDING)
        & (WebhookDelivery.next_attempt_at <= now),
        order_by=[WebhookDelivery.next_attempt_at, WebhookDelivery.id],
        holder_column=WebhookDelivery.locked_by,
        until_column=WebhookDelivery.locked_until,
        holder=token,
        now=now,
        lease=lease,
        limit=limit,
    )
    if not ids:
        return []
    rows = db.execute(
        select(WebhookDelivery, Webhook)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id.in_(ids), WebhookDelivery.locked_by == token)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
    ).all()
    return [
        _Job(
            delivery_id=delivery.id,
            message_id=delivery.message_id,
            event=delivery.event,
            payload=dict(delivery.payload),
            created_at=delivery.created_at,
            url=webhook.url,
            secret=webhook.secret,
            allow_private=webhook.allow_private,
            active=webhook.active,
        )
        for delivery, webhook in rows
    ]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def message_body(event: str, created_at: datetime, payload: dict[str, Any]) -> str:
    """The JSON body, serialised once per attempt: the bytes sent are the bytes signed."""
    return json.dumps(
        {"type": event, "timestamp": _iso(created_at), "data": payload},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _send(client: httpx.Client, job: _Job, attempted_at: datetime) -> _Outcome:
    started = time.perf_counter()

    def outcome(status_code: int | None, error: str | None) -> _Outcome:
        elapsed = int((time.perf_counter() - started) * 1000)
        return _Outcome(attempted_at, status_code, error and error[:500], elapsed)

    if not job.active:
        return outcome(None, "The webhook is switched off.")
    try:
        target = parse_url(job.url)
        address = netguard.checked_addresses(target, allow_private=job.allow_private)[0]
    except netguard.Refused as exc:
        return outcome(None, f"Refused: {exc}")
    host = f"[{address}]" if address.version == 6 else str(address)
    # Connect to the address that was checked; keep the name for Host and TLS (SNI and
    # certificate verification), so a DNS answer changed in between cannot redirect us.
    pinned = urlunsplit((target.scheme, f"{host}:{target.port}", target.path, target.query, ""))
    body = message_body(job.event, job.created_at, job.payload)
    signature = StandardWebhook(job.secret).sign(job.message_id, attempted_at, body)
    headers = {
        "host": target.netloc,
        "webhook-id": job.message_id,
        "webhook-timestamp": str(math.floor(attempted_at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        request = client.build_request(
            "POST", pinned, content=body.encode(), headers=headers, extensions=extensions
        )
        # Only the status matters: do not read (or let a receiver make us buffer) the body.
        response = client.send(request, stream=True)
        response.close()
    except httpx.HTTPError as exc:
        return outcome(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return outcome(response.status_code, None)


def next_attempt_after(attempts: int, failed_at: datetime, created_at: datetime) -> datetime | None:
    """When to try again after the `attempts`-th attempt failed; None once that would fall
    outside the retry window (24 hours after the event)."""
    delay = BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]
    following = failed_at + delay
    return following if following <= created_at + RETRY_WINDOW else None


def _record(db: Session, job: _Job, outcome: _Outcome, token: str) -> None:
    begin_write(db)
    delivery = db.get(WebhookDelivery, job.delivery_id, with_for_update=True)
    if delivery is None:
        db.rollback()  # the webhook was deleted while this attempt ran
        return
    db.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            attempted_at=outcome.attempted_at,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    delivery.attempts += 1
    if delivery.status == DeliveryStatus.SUCCEEDED:
        db.commit()  # another attempt already got through; a success is never undone
        return
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    if outcome.succeeded:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.delivered_at = outcome.attempted_at
        delivery.next_attempt_at = None
        delivery.locked_by = delivery.locked_until = None
    elif delivery.locked_by == token:
        following = next_attempt_after(delivery.attempts, outcome.attempted_at, job.created_at)
        if following is None:
            delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = following
        delivery.locked_by = delivery.locked_until = None
    # else: our lease ran out and another worker holds the delivery; it decides what is next.
    db.commit()


def deliver_due(
    session_factory: sessionmaker[Session],
    *,
    worker_id: str,
    now: datetime | None = None,
    limit: int = 20,
    timeout: float = 10.0,
) -> int:
    """Send the deliveries that are due; returns how many were attempted.

    `now` fixes the clock for the whole run (claims, signatures, the log); by default each
    step reads the current time."""

    def clock() -> datetime:
        return now or utcnow()

    token = f"{worker_id[:45]}/{secrets.token_hex(6)}"
    # Long enough for the whole batch to time out one by one, so a claim never lapses while
    # this worker may still be sending it.
    lease = timedelta(seconds=60 + limit * (timeout * 2 + 5))
    with session_factory() as db:
        begin_write(db)
        jobs = _claim(db, token, clock(), lease, limit)
        db.commit()
    if not jobs:
        return 0
    with httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        verify=tls.client_context(),
    ) as client:
        for job in jobs:
            outcome = _send(client, job, clock())
            if not outcome.succeeded:
                logger.info(
                    "webhook delivery %s failed: %s",
                    job.delivery_id,
                    outcome.error or outcome.status_code,
                )
            with session_factory() as db:
                _record(db, job, outcome, token)
    return len(jobs)


def redeliver(
    db: Session, admin: User, delivery: WebhookDelivery, *, ip: str | None = None
) -> WebhookDelivery:
    """Send a delivery again soon, with the same message id (receivers can de-duplicate).
    Outside the 24-hour window a failed redelivery is not retried on its own."""
    ensure_admin(admin)
    now = utcnow()
    if (
        delivery.status == DeliveryStatus.PENDING
        and delivery.locked_until is not None
        and delivery.locked_until > now
    ):
        raise Conflict(_("This delivery is being sent right now. Try again in a moment."))
    before = {"status": delivery.status.value, "attempts": delivery.attempts}
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    db.flush()
    record_audit(
        db, actor=admin, action="webhook.redelivered", target_type="webhook_delivery",
        target_id=delivery.id, before=before,
        after={"status": delivery.status.value, "message_id": delivery.message_id}, ip=ip,
    )  # fmt: skip
    return delivery


def register(worker: Worker) -> None:
    """Add the delivery run to a worker's periodic tasks."""

    def run(_db: Session) -> None:
        deliver_due(worker.session_factory, worker_id=worker.worker_id)

    # Claims with a lease (see deliver_due), so every worker may send at once.
    worker.every("webhook deliveries", DELIVERY_INTERVAL, run, exclusive=False)
