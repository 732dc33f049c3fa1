"""Helpdesk webhooks: per-brand endpoints that receive escalation events, signed the Standard
Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`). The helpdesk's signed
call-back that reports the ticket it opened is in crowdservice.callbacks.

Delivery is at-least-once with a per-message id, so receivers can drop repeats:
- `enqueue_event` writes one delivery per subscribed webhook in the caller's transaction, so
  nothing is sent for a change that rolls back and nothing is lost once it commits;
- `deliver_due` (run by the worker every few seconds) claims due deliveries with a lease
  (SKIP LOCKED on PostgreSQL; a conditional update inside SQLite's writer lock), commits the
  claim, then posts each one outside any transaction, and records the attempt afterwards.
  A claimed delivery is never sent by two workers at once, and a delivery that succeeded is
  never sent again unless an admin asks for it (`redeliver`, same message id);
- failures are retried on the schedule Standard Webhooks recommends (5 s, 5 min, 30 min, 2 h,
  5 h, 10 h, 10 h) until the next try would fall more than 24 hours after the event.

URLs that resolve to private, loopback, link-local, multicast or reserved addresses are refused
(server-side request forgery) unless the admin allowed them for testing. The check runs when the
URL is saved and again at each delivery, and the request goes to the address that was checked
(with the original Host header and TLS server name), so DNS cannot swap it in between.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlunsplit

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook as StandardWebhook

from community import netguard
from community.clock import utcnow
from community.db import begin_write
from community.errors import Conflict, FormErrors, NotFound, PermissionDenied
from community.i18n import gettext as _
from community.models import Brand, Role, User
from crowdservice.models import (
    DeliveryStatus,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from moderation.audit import record_audit

if TYPE_CHECKING:
    from community.worker import Worker

logger = logging.getLogger(__name__)

EVENTS = (
    "escalation.created",
    "escalation.handed_off",
    "escalation.resolved",
    "escalation.returned",
)
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 24
MAX_URL_LENGTH = netguard.MAX_URL_LENGTH
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


# --- URLs and the SSRF guard (community.netguard, shared with brands' embedding services) ---

_Target = netguard.Target
_Refused = netguard.Refused
_checked_addresses = netguard.checked_addresses
is_public_address = netguard.is_public_address


def _parse_url(url: str) -> _Target:
    return netguard.parse_url(
        url,
        missing=_("Enter the URL of the helpdesk's webhook endpoint."),
        credentials=_("Do not put a user name or password in the URL: deliveries are signed."),
    )


def check_url(url: str, *, allow_private: bool) -> str:
    """The cleaned URL, or FormErrors({"url": why}) if deliveries may not go there."""
    cleaned = url.strip()
    try:
        _checked_addresses(_parse_url(cleaned), allow_private=allow_private)
    except _Refused as exc:
        raise FormErrors({"url": str(exc)}) from exc
    return cleaned


# --- managing webhooks (admins) ----------------------------------------------------------------


def _require_admin(user: User) -> None:
    if user.role != Role.ADMIN:
        raise PermissionDenied()


def _check_events(events: list[str]) -> list[str]:
    chosen = [event for event in EVENTS if event in set(events)]
    if not chosen or len(set(events)) != len(chosen):
        raise FormErrors({"events": _("Choose at least one of the offered events.")})
    return chosen


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def masked_secret(secret: str) -> str:
    """What the admin pages show after creation: enough to tell secrets apart, no more."""
    return secret[: len(SECRET_PREFIX) + 4] + "…"


def _checked_settings(
    url: str, events: list[str] | None, *, allow_private: bool, unchanged: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """The cleaned URL and events (`unchanged` where `events` is None), checked together so
    that the form shows every error at once."""
    errors: dict[str, str] = {}
    cleaned = url
    chosen = list(unchanged)
    try:
        cleaned = check_url(url, allow_private=allow_private)
    except FormErrors as exc:
        errors |= exc.errors
    if events is not None:
        try:
            chosen = _check_events(events)
        except FormErrors as exc:
            errors |= exc.errors
    if errors:
        raise FormErrors(errors)
    return cleaned, chosen


def _described(webhook: Webhook) -> dict[str, Any]:
    # Never the secret: audit rows are read by more people than the webhook settings.
    return {
        "url": webhook.url,
        "events": list(webhook.events),
        "active": webhook.active,
        "allow_private": webhook.allow_private,
        "brand_id": webhook.brand_id,
    }


def create_webhook(
    db: Session,
    admin: User,
    brand: Brand,
    *,
    url: str,
    events: list[str],
    allow_private: bool,
    ip: str | None = None,
) -> tuple[Webhook, str]:
    """A new webhook and its secret (the only time the secret is handed out)."""
    _require_admin(admin)
    cleaned, chosen = _checked_settings(url, events, allow_private=allow_private)
    secret = new_secret()
    webhook = Webhook(
        brand_id=brand.id,
        url=cleaned,
        secret=secret,
        events=chosen,
        active=True,
        allow_private=allow_private,
        created_by_id=admin.id,
    )
    db.add(webhook)
    db.flush()
    record_audit(
        db, actor=admin, action="webhook.created", target_type="webhook", target_id=webhook.id,
        after=_described(webhook), ip=ip,
    )  # fmt: skip
    return webhook, secret


def update_webhook(
    db: Session,
    admin: User,
    webhook: Webhook,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    allow_private: bool | None = None,
    active: bool | None = None,
    ip: str | None = None,
) -> Webhook:
    """Change what is given; the URL is checked again against the (new) private setting."""
    _require_admin(admin)
    before = _described(webhook)
    new_allow = webhook.allow_private if allow_private is None else allow_private
    new_url, chosen = _checked_settings(
        webhook.url if url is None else url,
        events,
        allow_private=new_allow,
        unchanged=webhook.events,
    )
    webhook.url = new_url
    webhook.allow_private = new_allow
    webhook.events = chosen
    if active is not None:
        webhook.active = active
    db.flush()
    record_audit(
        db, actor=admin, action="webhook.updated", target_type="webhook", target_id=webhook.id,
        before=before, after=_described(webhook), ip=ip,
    )  # fmt: skip
    return webhook


def delete_webhook(db: Session, admin: User, webhook: Webhook, *, ip: str | None = None) -> None:
    """Remove the webhook with its deliveries and their log (the audit row remains)."""
    _require_admin(admin)
    record_audit(
        db, actor=admin, action="webhook.deleted", target_type="webhook", target_id=webhook.id,
        before=_described(webhook), ip=ip,
    )  # fmt: skip
    db.delete(webhook)
    db.flush()


def rotate_secret(db: Session, admin: User, webhook: Webhook, *, ip: str | None = None) -> str:
    """A new secret, effective for the next attempt (and for call-backs) at once."""
    _require_admin(admin)
    webhook.secret = new_secret()
    db.flush()
    record_audit(
        db, actor=admin, action="webhook.secret_rotated", target_type="webhook",
        target_id=webhook.id, after={"secret_prefix": masked_secret(webhook.secret)}, ip=ip,
    )  # fmt: skip
    return webhook.secret


def get_webhook(db: Session, brand: Brand, webhook_id: int) -> Webhook:
    webhook = db.get(Webhook, webhook_id)
    if webhook is None or webhook.brand_id != brand.id:
        raise NotFound()
    return webhook


# --- events and delivery ---------------------------------------------------------------------


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
    free = or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now)
    due = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            free,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    if db.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(db.scalars(due))
    if not ids:
        return []
    # Conditional: on SQLite this runs inside the writer lock, on PostgreSQL on rows this
    # transaction holds; either way a row another worker took is left alone.
    db.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id.in_(ids),
            WebhookDelivery.status == DeliveryStatus.PENDING,
            free,
        )
        .values(locked_by=token, locked_until=now + lease)
        .execution_options(synchronize_session=False)
    )
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
        target = _parse_url(job.url)
        address = _checked_addresses(target, allow_private=job.allow_private)[0]
    except _Refused as exc:
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
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
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
    _require_admin(admin)
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
    from community.worker import Periodic  # the worker imports this module: import late

    def run(_db: Session) -> None:
        deliver_due(worker.session_factory, worker_id=worker.worker_id)

    worker.periodic.append(Periodic("webhook deliveries", DELIVERY_INTERVAL, run))
