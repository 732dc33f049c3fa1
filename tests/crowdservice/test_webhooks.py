"""Helpdesk webhooks against a real HTTP receiver on loopback: Standard Webhooks signatures
(checked with the `standardwebhooks` package), the retry schedule and giving up after 24 hours,
exactly one delivery after success (also with two workers at once), the delivery log, manual
redelivery with the same message id, the SSRF guard, the admin pages and the helpdesk's signed
call-back."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks import WebhookVerificationError
from starlette.routing import NoMatchFound

from community.core import meili
from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.errors import Conflict, FormErrors, PermissionDenied
from community.core.models import Brand, Forum, Role, User
from community.core.settings import Settings
from community.worker import Worker
from crowdservice import callbacks, webhooks
from crowdservice.models import (
    DeliveryStatus,
    Escalation,
    EscalationReason,
    EscalationStatus,
    HelpdeskCallback,
    Priority,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from crowdservice.routes_webhooks import router
from tests.conftest import QA, csrf_token, fresh, loopback_http_server, run_concurrently

UserFactory = Callable[..., User]
RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]
HANDED_OFF = "escalation.handed_off"


# --- a real receiver -------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers with scripted
    status codes (then `default`)."""

    port: int = 0
    default: int = 200
    script: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def respond(self, *codes: int) -> None:
        with self.lock:
            self.script.extend(codes)

    def take(self, received: Received) -> int:
        with self.lock:
            self.requests.append(received)
            return self.script.pop(0) if self.script else self.default

    def ids(self) -> list[str]:
        return [request.headers["webhook-id"] for request in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {key.lower(): value for key, value in self.headers.items()}
            code = state.take(Received(self.path, headers, body))
            self.send_response(code)
            if 300 <= code < 400:
                self.send_header("location", "/elsewhere")
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with loopback_http_server(Handler) as port:
        state.port = port
        yield state


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def brand(db: Session, forum: Forum) -> Brand:
    found = db.get(Brand, forum.brand_id)
    assert found is not None
    return found


@pytest.fixture
def admin(make_user: UserFactory) -> User:
    return make_user("boss", role=Role.ADMIN)


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def site(app: FastAPI) -> FastAPI:
    """The app with this router mounted (until create_app registers it itself)."""
    try:
        app.url_path_for("admin_webhooks", brand_slug="x")
    except NoMatchFound:
        app.include_router(router)
    return app


def _hook(
    db: Session,
    admin: User,
    brand: Brand,
    url: str,
    *,
    events: tuple[str, ...] = (HANDED_OFF,),
    allow_private: bool = True,
) -> tuple[Webhook, str]:
    db.commit()
    webhook, secret = webhooks.create_webhook(
        db, admin, brand, url=url, events=list(events), allow_private=allow_private
    )
    db.commit()
    return webhook, secret


def _event(
    db: Session, brand: Brand, payload: dict[str, Any] | None = None, event: str = HANDED_OFF
) -> list[WebhookDelivery]:
    db.commit()
    made = webhooks.enqueue_event(db, brand.id, event, payload or {"escalation": {"id": 1}})
    db.commit()
    return made


def _deliveries(db: Session) -> list[WebhookDelivery]:
    fresh(db)
    return list(db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def _attempts(db: Session) -> list[WebhookAttempt]:
    fresh(db)
    return list(db.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)))


def _verify(secret: str, received: Received) -> Any:
    return StandardWebhook(secret).verify(received.body, received.headers)


def _deliver(factory: sessionmaker[Session], worker_id: str = "w1") -> int:
    return webhooks.deliver_due(factory, worker_id=worker_id, timeout=5.0)


def _escalation(db: Session, qa: QA, make_user: UserFactory, brand: Brand) -> Escalation:
    thread = qa.ask(make_user(f"asker{uuid.uuid4().hex[:6]}"))
    now = utcnow()
    escalation = Escalation(
        thread_id=thread.id,
        brand_id=brand.id,
        reason=EscalationReason.AUTHOR_REQUEST,
        priority=Priority.P2,
        status=EscalationStatus.HANDED_OFF,
        first_response_due_at=now + timedelta(minutes=15),
        resolution_due_at=now + timedelta(hours=24),
    )
    db.add(escalation)
    db.commit()
    return escalation


def _audit(db: Session, action: str) -> list[AuditLog]:
    fresh(db)
    return list(db.scalars(select(AuditLog).where(AuditLog.action == action)))


# --- the SSRF guard --------------------------------------------------------------------------

PRIVATE_URLS = [
    "http://127.0.0.1/hook",
    "http://10.1.2.3/hook",
    "http://192.168.1.20:8080/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fc00::1]/hook",
    "http://localhost:9999/hook",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_and_loopback_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(FormErrors) as refused:
        webhooks.check_url(url, allow_private=False)
    assert "private" in refused.value.errors["url"]
    assert webhooks.check_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://8.8.8.8/hook",
        "javascript:alert(1)",
        "http:///no-host",
        "http://user:password@8.8.8.8/hook",
        "https://8.8.8.8:99999/hook",
        "https://8.8.8.8/a b",
        "https://8.8.8.8/" + "a" * 500,
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(FormErrors) as refused:
        webhooks.check_url(url, allow_private=True)
    assert refused.value.errors["url"]


def test_public_addresses_are_accepted() -> None:
    assert webhooks.check_url(" https://8.8.8.8/hooks?x=1 ", allow_private=False) == (
        "https://8.8.8.8/hooks?x=1"
    )
    assert webhooks.check_url("http://[2001:4860:4860::8888]/h", allow_private=False)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("::ffff:8.8.8.8", True),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("fe80::1", False),
        ("ff02::1", False),
        ("::", False),
        ("192.0.2.1", False),  # documentation range
    ],
)
def test_address_classification(address: str, public: bool) -> None:
    assert webhooks.is_public_address(ipaddress.ip_address(address)) is public


# --- managing webhooks -----------------------------------------------------------------------


def test_create_returns_the_secret_once_and_audits_without_it(
    db: Session, admin: User, brand: Brand, make_user: UserFactory
) -> None:
    webhook, secret = _hook(db, admin, brand, "https://8.8.8.8/hooks", allow_private=False)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert webhook.secret == secret
    assert webhook.events == [HANDED_OFF]
    created = _audit(db, "webhook.created")
    assert len(created) == 1
    assert created[0].actor_id == admin.id
    assert secret not in json.dumps([created[0].before, created[0].after])

    rotated = webhooks.rotate_secret(db, admin, webhook)
    db.commit()
    assert rotated != secret and rotated.startswith("whsec_")
    (entry,) = _audit(db, "webhook.secret_rotated")
    assert rotated not in json.dumps([entry.before, entry.after])

    member = make_user("pat")
    with pytest.raises(PermissionDenied):
        webhooks.create_webhook(
            db, member, brand, url="https://8.8.8.8/", events=[HANDED_OFF], allow_private=False
        )
    with pytest.raises(PermissionDenied):
        webhooks.rotate_secret(db, member, webhook)
    with pytest.raises(FormErrors) as bad:
        webhooks.create_webhook(
            db, admin, brand, url="http://10.0.0.1/", events=["nope"], allow_private=False
        )
    assert set(bad.value.errors) == {"url", "events"}
    db.rollback()

    webhooks.delete_webhook(db, admin, webhook)
    db.commit()
    assert _audit(db, "webhook.deleted")
    assert db.scalar(select(func.count()).select_from(Webhook)) == 0


def test_events_go_only_to_active_subscribed_webhooks_and_only_after_commit(
    db: Session, admin: User, brand: Brand, receiver: Receiver, factory: sessionmaker[Session]
) -> None:
    subscribed, _secret = _hook(db, admin, brand, receiver.url("/a"))
    _hook(db, admin, brand, receiver.url("/b"), events=("escalation.resolved",))
    switched_off, _ = _hook(db, admin, brand, receiver.url("/c"))
    webhooks.update_webhook(db, admin, switched_off, active=False)
    db.commit()

    webhooks.enqueue_event(db, brand.id, HANDED_OFF, {"n": 1})
    db.rollback()  # the change that caused it did not happen: nothing may be sent
    assert _deliver(factory) == 0
    assert receiver.requests == []

    made = _event(db, brand)
    assert [delivery.webhook_id for delivery in made] == [subscribed.id]
    assert made[0].message_id.startswith("msg_")
    assert _deliver(factory) == 1
    assert [request.path for request in receiver.requests] == ["/a"]
    with pytest.raises(ValueError, match="unknown webhook event"):
        webhooks.enqueue_event(db, brand.id, "escalation.exploded", {})


# --- delivery --------------------------------------------------------------------------------


def test_delivery_is_signed_and_sent_once(
    db: Session, admin: User, brand: Brand, receiver: Receiver, factory: sessionmaker[Session]
) -> None:
    _webhook, secret = _hook(db, admin, brand, receiver.url())
    payload = {"escalation": {"id": 7, "priority": "P1"}, "thread": {"title": "Ñandú ✓ <b>"}}
    (delivery,) = _event(db, brand, payload)

    assert _deliver(factory) == 1
    (request,) = receiver.requests
    assert _verify(secret, request) == {
        "type": HANDED_OFF,
        "timestamp": delivery.created_at.isoformat().replace("+00:00", "Z"),
        "data": payload,
    }
    assert request.headers["webhook-id"] == delivery.message_id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("community-webhooks/")
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert request.headers["webhook-signature"].startswith("v1,")
    tampered = Received(request.path, request.headers, request.body.replace(b"P1", b"P4"))
    with pytest.raises(WebhookVerificationError):
        _verify(secret, tampered)

    (done,) = _deliveries(db)
    assert done.status == DeliveryStatus.SUCCEEDED
    assert done.delivered_at is not None
    assert (done.attempts, done.last_status_code, done.locked_by) == (1, 200, None)
    (attempt,) = _attempts(db)
    assert (attempt.status_code, attempt.error) == (200, None)
    assert attempt.duration_ms >= 0

    # No duplicate after success, however often the worker runs.
    assert _deliver(factory) == 0
    with time_machine.travel(utcnow() + timedelta(days=2)):
        assert _deliver(factory) == 0
    assert len(receiver.requests) == 1


def test_failures_are_retried_on_the_schedule_until_success(
    db: Session, admin: User, brand: Brand, receiver: Receiver, factory: sessionmaker[Session]
) -> None:
    receiver.respond(500, 503, 404)
    _webhook, secret = _hook(db, admin, brand, receiver.url())
    with time_machine.travel(utcnow(), tick=False) as clock:
        (delivery,) = _event(db, brand)
        expected = [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30)]
        for attempt, delay in enumerate(expected, start=1):
            assert _deliver(factory) == 1
            _verify(secret, receiver.requests[-1])  # fresh timestamp and signature each time
            (current,) = _deliveries(db)
            assert current.status == DeliveryStatus.PENDING
            assert current.attempts == attempt
            assert current.next_attempt_at == utcnow() + delay
            assert _deliver(factory) == 0  # not due yet
            clock.move_to(current.next_attempt_at)
        assert _deliver(factory) == 1
        _verify(secret, receiver.requests[-1])
    (done,) = _deliveries(db)
    assert done.status == DeliveryStatus.SUCCEEDED
    assert (done.attempts, done.last_status_code, done.next_attempt_at) == (4, 200, None)
    assert [attempt.status_code for attempt in _attempts(db)] == [500, 503, 404, 200]
    assert set(receiver.ids()) == {delivery.message_id}
    assert len({request.headers["webhook-timestamp"] for request in receiver.requests}) == 4
    assert len({request.body for request in receiver.requests}) == 1  # the same message

    with time_machine.travel(utcnow() + timedelta(hours=30)):
        assert _deliver(factory) == 0
    assert len(receiver.requests) == 4


def test_gives_up_after_24_hours(
    db: Session, admin: User, brand: Brand, receiver: Receiver, factory: sessionmaker[Session]
) -> None:
    receiver.default = 500
    _hook(db, admin, brand, receiver.url())
    start = utcnow()
    with time_machine.travel(start, tick=False) as clock:
        _event(db, brand)
        for _ in range(10):
            assert _deliver(factory) == 1
            (current,) = _deliveries(db)
            if current.status == DeliveryStatus.FAILED:
                break
            assert current.next_attempt_at is not None
            clock.move_to(current.next_attempt_at)
    (failed,) = _deliveries(db)
    assert failed.status == DeliveryStatus.FAILED
    assert (failed.attempts, failed.next_attempt_at, failed.locked_by) == (7, None, None)
    offsets = [attempt.attempted_at - start for attempt in _attempts(db)]
    assert offsets == [
        timedelta(0),
        timedelta(seconds=5),
        timedelta(minutes=5, seconds=5),
        timedelta(minutes=35, seconds=5),
        timedelta(hours=2, minutes=35, seconds=5),
        timedelta(hours=7, minutes=35, seconds=5),
        timedelta(hours=17, minutes=35, seconds=5),
    ]
    with time_machine.travel(start + timedelta(days=3)):
        assert _deliver(factory) == 0
    assert len(receiver.requests) == 7


def test_log_records_refused_connections_redirects_and_refused_addresses(
    db: Session, admin: User, brand: Brand, receiver: Receiver, factory: sessionmaker[Session]
) -> None:
    closed_port = meili.free_port()  # nothing listens there
    _hook(db, admin, brand, f"http://127.0.0.1:{closed_port}/hooks")
    _event(db, brand)
    assert _deliver(factory) == 1
    (refused,) = _deliveries(db)
    (attempt,) = _attempts(db)
    assert attempt.status_code is None
    assert attempt.error is not None and "ConnectError" in attempt.error
    assert refused.status == DeliveryStatus.PENDING
    assert refused.last_error == attempt.error and refused.last_status_code is None

    # Redirects are not followed: a 302 is a failed attempt, and nothing goes to the target.
    db.execute(delete(WebhookDelivery))
    db.commit()
    receiver.respond(302)
    redirected, _ = _hook(db, admin, brand, receiver.url("/moved"))
    _event(db, brand)
    assert _deliver(factory) >= 1
    assert [request.path for request in receiver.requests] == ["/moved"]
    (moved,) = [d for d in _deliveries(db) if d.webhook_id == redirected.id]
    assert (moved.status, moved.last_status_code) == (DeliveryStatus.PENDING, 302)

    # Checked again at delivery time: a webhook whose address is no longer allowed (its DNS
    # now points inside, or the testing switch was turned off) gets nothing.
    db.execute(delete(WebhookDelivery))
    db.execute(update(Webhook).values(allow_private=False))
    db.commit()
    _event(db, brand)
    receiver.requests.clear()
    assert _deliver(factory) == 2
    assert receiver.requests == []
    errors = [attempt.error or "" for attempt in _attempts(db)[-2:]]
    assert all(error.startswith("Refused:") and "private" in error for error in errors)


def test_a_webhook_switched_off_after_the_event_is_not_sent_to(
    db: Session, admin: User, brand: Brand, receiver: Receiver, factory: sessionmaker[Session]
) -> None:
    webhook, _ = _hook(db, admin, brand, receiver.url())
    _event(db, brand)
    webhooks.update_webhook(db, admin, webhook, active=False)
    db.commit()
    assert _deliver(factory) == 1
    assert receiver.requests == []
    (attempt,) = _attempts(db)
    assert attempt.error == "The webhook is switched off."


def test_two_workers_at_once_send_each_message_once(
    db: Session,
    admin: User,
    brand: Brand,
    receiver: Receiver,
    engine: Engine,
    factory: sessionmaker[Session],
    backend: str,
) -> None:
    _hook(db, admin, brand, receiver.url())
    for index in range(8):
        webhooks.enqueue_event(db, brand.id, HANDED_OFF, {"n": index})
    db.commit()
    counts: list[int] = []

    def work(worker_id: str) -> None:
        counts.append(_deliver(factory, worker_id))

    if backend == "postgresql":
        outcomes = run_concurrently(engine, [lambda _s, w=w: work(w) for w in ("w1", "w2")])
        assert outcomes == [("ok", ""), ("ok", "")]
    else:
        barrier = threading.Barrier(2)

        def run(worker_id: str) -> None:
            barrier.wait()
            work(worker_id)

        threads = [threading.Thread(target=run, args=(w,)) for w in ("w1", "w2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert sum(counts) == 8
    assert len(receiver.requests) == 8
    assert len(set(receiver.ids())) == 8
    assert all(d.status == DeliveryStatus.SUCCEEDED for d in _deliveries(db))
    assert _deliver(factory) == 0
    assert len(receiver.requests) == 8


def test_manual_redelivery_sends_again_with_the_same_id(
    db: Session,
    admin: User,
    brand: Brand,
    receiver: Receiver,
    factory: sessionmaker[Session],
    make_user: UserFactory,
) -> None:
    _webhook, secret = _hook(db, admin, brand, receiver.url())
    _event(db, brand)
    _deliver(factory)
    (delivery,) = _deliveries(db)
    with pytest.raises(PermissionDenied):
        webhooks.redeliver(db, make_user("agent1", role=Role.AGENT), delivery)
    db.rollback()
    webhooks.redeliver(db, admin, delivery)
    db.commit()
    assert _deliveries(db)[0].status == DeliveryStatus.PENDING
    assert _deliver(factory) == 1
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.message_id
    assert _verify(secret, second)["data"] == {"escalation": {"id": 1}}
    (again,) = _deliveries(db)
    assert (again.status, again.attempts) == (DeliveryStatus.SUCCEEDED, 2)
    assert _audit(db, "webhook.redelivered")[0].actor_id == admin.id

    # A delivery that a worker is sending right now is not queued a second time.
    db.execute(
        update(WebhookDelivery).values(
            status=DeliveryStatus.PENDING,
            locked_by="w9/x",
            locked_until=utcnow() + timedelta(minutes=5),
        )
    )
    db.commit()
    fresh(db)
    with pytest.raises(Conflict):
        webhooks.redeliver(db, admin, _deliveries(db)[0])


def test_the_worker_runs_deliveries_periodically(
    db: Session,
    admin: User,
    brand: Brand,
    receiver: Receiver,
    settings: Settings,
    factory: sessionmaker[Session],
) -> None:
    worker = Worker(settings, factory)
    if not any(task.name == "webhook deliveries" for task in worker.periodic):
        webhooks.register(worker)
    (task,) = [task for task in worker.periodic if task.name == "webhook deliveries"]
    assert task.every == timedelta(seconds=5)
    _hook(db, admin, brand, receiver.url())
    _event(db, brand)
    worker.run_periodic()
    assert len(receiver.requests) == 1
    assert _deliveries(db)[0].status == DeliveryStatus.SUCCEEDED


# --- admin pages -----------------------------------------------------------------------------

PAGE = "/admin/brands/acme/webhooks"


@pytest.mark.parametrize("role", [Role.MEMBER, Role.MODERATOR, Role.AGENT])
def test_only_admins_see_the_pages(
    site: FastAPI, as_role: RoleClient, brand: Brand, db: Session, role: Role
) -> None:
    user_client, _user = as_role(role)
    assert user_client.get(PAGE).status_code == 403
    token = csrf_token(user_client, "/")
    response = user_client.post(
        PAGE, data={"csrf_token": token, "url": "https://8.8.8.8/", "events": [HANDED_OFF]}
    )
    assert response.status_code == 403
    assert db.scalar(select(func.count()).select_from(Webhook)) == 0
    anonymous, _ = as_role(None)
    login = anonymous.get(PAGE, follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"].startswith("/login")


def test_create_shows_the_secret_once(
    site: FastAPI, as_role: RoleClient, brand: Brand, db: Session, receiver: Receiver
) -> None:
    admin_client, _admin = as_role(Role.ADMIN)
    page = admin_client.get(PAGE)
    assert page.status_code == 200
    assert "allow private addresses" in page.text.lower()
    token = csrf_token(admin_client, PAGE)
    created = admin_client.post(
        PAGE,
        data={
            "csrf_token": token,
            "url": receiver.url(),
            "events": [HANDED_OFF, "escalation.resolved"],
            "allow_private": "1",
        },
    )
    assert created.status_code == 200, created.text[:500]
    fresh(db)
    webhook = db.scalars(select(Webhook)).one()
    assert (webhook.url, webhook.allow_private) == (receiver.url(), True)
    assert webhook.events == [HANDED_OFF, "escalation.resolved"]
    assert created.text.count(webhook.secret) == 1
    listing = admin_client.get(PAGE)
    assert webhook.secret not in listing.text
    assert webhooks.masked_secret(webhook.secret) in listing.text
    assert receiver.url() in listing.text


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"url": "http://127.0.0.1:8080/hooks", "events": [HANDED_OFF]}, "url", "private"),
        ({"url": "http://localhost/hooks", "events": [HANDED_OFF]}, "url", "private"),
        ({"url": "ftp://8.8.8.8/hooks", "events": [HANDED_OFF]}, "url", "Use an http://"),
        ({"url": "https://8.8.8.8/hooks", "events": []}, "events", "Choose"),
        ({"url": "https://8.8.8.8/hooks", "events": ["escalation.other"]}, "events", "Choose"),
    ],
)
def test_bad_input_shows_the_form_errors_and_creates_nothing(
    site: FastAPI,
    as_role: RoleClient,
    brand: Brand,
    db: Session,
    form: dict[str, Any],
    field: str,
    message: str,
) -> None:
    admin_client, _admin = as_role(Role.ADMIN)
    token = csrf_token(admin_client, PAGE)
    response = admin_client.post(PAGE, data={"csrf_token": token, **form})
    assert response.status_code == 422
    assert f'id="error-{field}"' in response.text
    assert message in response.text
    assert form["url"] in response.text  # the form keeps what was typed
    assert db.scalar(select(func.count()).select_from(Webhook)) == 0
    assert not _audit(db, "webhook.created")


def test_unknown_brand_webhook_and_delivery_are_not_found(
    site: FastAPI, as_role: RoleClient, brand: Brand, db: Session, admin: User
) -> None:
    other = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(other)
    db.commit()
    elsewhere, _ = _hook(db, admin, other, "https://8.8.8.8/globex")
    admin_client, _admin = as_role(Role.ADMIN)
    token = csrf_token(admin_client, PAGE)
    assert admin_client.get("/admin/brands/nope/webhooks").status_code == 404
    assert admin_client.get(f"{PAGE}/999999").status_code == 404
    assert admin_client.get(f"{PAGE}/{elsewhere.id}").status_code == 404  # not acme's
    for path in (f"{PAGE}/{elsewhere.id}/delete", f"{PAGE}/{elsewhere.id}/rotate"):
        assert admin_client.post(path, data={"csrf_token": token}).status_code == 404
    missing = admin_client.post(
        "/admin/webhook-deliveries/999999/redeliver", data={"csrf_token": token}
    )
    assert missing.status_code == 404
    fresh(db)
    assert db.get(Webhook, elsewhere.id) is not None


def test_log_page_shows_attempts_and_redeliver_works(
    site: FastAPI,
    as_role: RoleClient,
    brand: Brand,
    db: Session,
    admin: User,
    receiver: Receiver,
    factory: sessionmaker[Session],
) -> None:
    webhook, secret = _hook(db, admin, brand, receiver.url())
    (delivery,) = _event(db, brand)
    receiver.respond(500)
    _deliver(factory)
    admin_client, _admin = as_role(Role.ADMIN)
    log_path = f"{PAGE}/{webhook.id}"
    page = admin_client.get(log_path)
    assert page.status_code == 200
    assert delivery.message_id in page.text
    assert "HTTP 500" in page.text
    assert "Redeliver" in page.text
    assert secret not in page.text
    fragment = admin_client.get(log_path, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'id="deliveries"' in fragment.text

    action = re.search(r'action="(/admin/webhook-deliveries/\d+/redeliver)"', page.text)
    assert action is not None
    token = csrf_token(admin_client, log_path)
    assert admin_client.post(action.group(1), data={}).status_code == 403  # no CSRF token
    redelivered = admin_client.post(
        action.group(1), data={"csrf_token": token}, follow_redirects=False
    )
    assert redelivered.status_code == 303
    assert redelivered.headers["location"] == log_path
    assert _deliver(factory) == 1
    assert receiver.ids() == [delivery.message_id, delivery.message_id]
    after = admin_client.get(log_path)
    assert "HTTP 200" in after.text


def test_rotate_edit_and_delete_from_the_pages(
    site: FastAPI,
    as_role: RoleClient,
    brand: Brand,
    db: Session,
    admin: User,
    receiver: Receiver,
    factory: sessionmaker[Session],
) -> None:
    webhook, old_secret = _hook(db, admin, brand, receiver.url())
    _event(db, brand)
    admin_client, _admin = as_role(Role.ADMIN)
    token = csrf_token(admin_client, PAGE)

    rotated = admin_client.post(f"{PAGE}/{webhook.id}/rotate", data={"csrf_token": token})
    assert rotated.status_code == 200
    fresh(db)
    new_secret = db.get(Webhook, webhook.id).secret  # type: ignore[union-attr]
    assert new_secret != old_secret
    assert rotated.text.count(new_secret) == 1
    _deliver(factory)
    _verify(new_secret, receiver.requests[-1])

    refused = admin_client.post(
        f"{PAGE}/{webhook.id}",
        data={"csrf_token": token, "url": "http://10.0.0.8/hooks", "events": [HANDED_OFF],
              "active": "1"},
    )  # fmt: skip
    assert refused.status_code == 422
    assert 'id="error-url"' in refused.text
    fresh(db)
    assert db.get(Webhook, webhook.id).url == receiver.url()  # type: ignore[union-attr]
    saved = admin_client.post(
        f"{PAGE}/{webhook.id}",
        data={"csrf_token": token, "url": "https://8.8.8.8/new", "events": [HANDED_OFF,
              "escalation.returned"], "active": "1"},
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303
    fresh(db)
    changed = db.get(Webhook, webhook.id)
    assert changed is not None
    assert (changed.url, changed.allow_private, changed.active) == (
        "https://8.8.8.8/new",
        False,
        True,
    )
    assert changed.events == [HANDED_OFF, "escalation.returned"]

    webhook_id = webhook.id
    deleted = admin_client.post(
        f"{PAGE}/{webhook_id}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert deleted.status_code == 303
    fresh(db)
    assert db.get(Webhook, webhook_id) is None
    assert db.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    assert [entry.action for entry in _audit(db, "webhook.deleted")] == ["webhook.deleted"]


# --- the helpdesk's call-back ----------------------------------------------------------------


def _signed(
    secret: str, body: str, *, at: datetime | None = None, message_id: str = "msg_cb_1"
) -> dict[str, str]:
    moment = at or datetime.now(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": StandardWebhook(secret).sign(message_id, moment, body),
        "content-type": "application/json",
    }


@pytest.fixture
def helpdesk(site: FastAPI) -> Iterator[TestClient]:
    """The helpdesk's HTTP client: a machine with no cookies and no CSRF token."""
    with TestClient(site, base_url="http://testserver") as machine:
        yield machine


def test_signed_call_back_records_the_ticket(
    helpdesk: TestClient,
    db: Session,
    qa: QA,
    make_user: UserFactory,
    admin: User,
    brand: Brand,
) -> None:
    _hook(db, admin, brand, "https://8.8.8.8/other")
    _webhook, secret = _hook(db, admin, brand, "https://8.8.4.4/helpdesk")
    escalation = _escalation(db, qa, make_user, brand)
    body = json.dumps(
        {"ticket_ref": "HD-4711", "status": "open", "url": "https://helpdesk.example/t/4711"}
    )
    response = helpdesk.post(
        f"/api/v1/helpdesk/escalations/{escalation.id}",
        content=body,
        headers=_signed(secret, body),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": escalation.id,
        "status": "handed_off",
        "ticket_ref": "HD-4711",
        "ticket_status": "open",
        "ticket_url": "https://helpdesk.example/t/4711",
    }
    fresh(db)
    stored = db.get(Escalation, escalation.id)
    assert stored is not None
    assert (stored.ticket_ref, stored.ticket_status, stored.ticket_url) == (
        "HD-4711",
        "open",
        "https://helpdesk.example/t/4711",
    )
    (entry,) = _audit(db, "escalation.ticket_updated")
    assert entry.actor_id is None
    assert entry.after is not None and entry.after["ticket_ref"] == "HD-4711"

    update = json.dumps({"ticket_ref": "HD-4711", "status": "solved"})
    later = helpdesk.post(
        f"/api/v1/helpdesk/escalations/{escalation.id}",
        content=update,
        headers=_signed(secret, update, message_id="msg_cb_2"),
    )
    assert later.status_code == 200
    assert later.json()["ticket_status"] == "solved"
    assert later.json()["ticket_url"] is None


def _ticket_status(db: Session, escalation: Escalation) -> str | None:
    fresh(db)
    stored = db.get(Escalation, escalation.id)
    assert stored is not None
    return stored.ticket_status


def test_a_replayed_call_back_is_answered_but_changes_nothing(
    helpdesk: TestClient,
    db: Session,
    qa: QA,
    make_user: UserFactory,
    admin: User,
    brand: Brand,
) -> None:
    """Resending a captured call-back within its five minutes set the ticket's status back."""
    _webhook, secret = _hook(db, admin, brand, "https://8.8.4.4/helpdesk")
    escalation = _escalation(db, qa, make_user, brand)
    path = f"/api/v1/helpdesk/escalations/{escalation.id}"
    now = datetime.now(UTC)
    opened = json.dumps({"ticket_ref": "HD-9", "status": "open"})
    opened_headers = _signed(secret, opened, at=now - timedelta(seconds=90), message_id="msg_a")
    solved = json.dumps({"ticket_ref": "HD-9", "status": "solved"})
    solved_headers = _signed(secret, solved, at=now - timedelta(seconds=30), message_id="msg_b")
    assert helpdesk.post(path, content=opened, headers=opened_headers).status_code == 200
    assert helpdesk.post(path, content=solved, headers=solved_headers).status_code == 200
    assert _ticket_status(db, escalation) == "solved"

    for body, headers in ((opened, opened_headers), (solved, solved_headers)):
        replayed = helpdesk.post(path, content=body, headers=headers)
        assert replayed.status_code == 200  # the helpdesk has no reason to retry
        assert replayed.json()["ticket_status"] == "solved"  # the escalation as it is
    assert _ticket_status(db, escalation) == "solved"
    assert len(_audit(db, "escalation.ticket_updated")) == 2

    # A replay sent to another escalation of the brand is a repeat too (the path is unsigned).
    other = _escalation(db, qa, make_user, brand)
    elsewhere = helpdesk.post(
        f"/api/v1/helpdesk/escalations/{other.id}", content=opened, headers=opened_headers
    )
    assert elsewhere.status_code == 200
    assert _ticket_status(db, other) is None


def test_a_call_back_sent_before_the_applied_one_does_not_set_the_status_back(
    helpdesk: TestClient,
    db: Session,
    qa: QA,
    make_user: UserFactory,
    admin: User,
    brand: Brand,
) -> None:
    _webhook, secret = _hook(db, admin, brand, "https://8.8.4.4/helpdesk")
    escalation = _escalation(db, qa, make_user, brand)
    path = f"/api/v1/helpdesk/escalations/{escalation.id}"
    now = datetime.now(UTC)
    solved = json.dumps({"ticket_ref": "HD-9", "status": "solved"})
    applied = helpdesk.post(path, content=solved, headers=_signed(secret, solved, at=now))
    assert applied.status_code == 200
    # A late retry of an earlier message (its own id, an older timestamp).
    late = json.dumps({"ticket_ref": "HD-9", "status": "open"})
    answered = helpdesk.post(
        path,
        content=late,
        headers=_signed(secret, late, at=now - timedelta(seconds=60), message_id="msg_late"),
    )
    assert answered.status_code == 200
    assert answered.json()["ticket_status"] == "solved"
    assert _ticket_status(db, escalation) == "solved"
    assert len(_audit(db, "escalation.ticket_updated")) == 1
    # The same second as the applied one: sent together, applied in the order they arrive.
    reopened = json.dumps({"ticket_ref": "HD-9", "status": "reopened"})
    same_second = helpdesk.post(
        path, content=reopened, headers=_signed(secret, reopened, at=now, message_id="msg_same")
    )
    assert same_second.json()["ticket_status"] == "reopened"


def test_call_backs_are_remembered_until_their_signature_expires(
    helpdesk: TestClient,
    db: Session,
    qa: QA,
    make_user: UserFactory,
    admin: User,
    brand: Brand,
) -> None:
    _webhook, secret = _hook(db, admin, brand, "https://8.8.4.4/helpdesk")
    escalation = _escalation(db, qa, make_user, brand)
    path = f"/api/v1/helpdesk/escalations/{escalation.id}"
    body = json.dumps({"ticket_ref": "HD-9", "status": "open"})
    headers = _signed(secret, body, message_id="msg_old")
    assert helpdesk.post(path, content=body, headers=headers).status_code == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=11)):
        assert helpdesk.post(path, content=body, headers=headers).status_code == 401  # too old
        fresh_body = json.dumps({"ticket_ref": "HD-9", "status": "pending"})
        newer = helpdesk.post(
            path, content=fresh_body, headers=_signed(secret, fresh_body, message_id="msg_new")
        )
        assert newer.json()["ticket_status"] == "pending"
    fresh(db)
    kept = db.scalars(select(HelpdeskCallback.message_key)).all()
    assert kept == [hashlib.sha256(b"msg_new").hexdigest()]  # the expired one is forgotten


def test_two_copies_of_a_call_back_at_once_apply_once(
    engine: Engine,
    db: Session,
    qa: QA,
    make_user: UserFactory,
    admin: User,
    brand: Brand,
) -> None:
    _webhook, secret = _hook(db, admin, brand, "https://8.8.4.4/helpdesk")
    escalation = _escalation(db, qa, make_user, brand)
    body = json.dumps({"ticket_ref": "HD-9", "status": "open"})
    headers = _signed(secret, body, message_id="msg_twice")
    outcomes: list[callbacks.Outcome] = []

    def deliver(session: Session) -> None:
        callback = callbacks.verify_callback(session, escalation.id, body.encode(), headers)
        outcome = callbacks.record_ticket(
            session, callback, ticket_ref="HD-9", status="open", url=None
        )
        outcomes.append(outcome)

    assert run_concurrently(engine, [deliver, deliver]) == [("ok", ""), ("ok", "")]
    assert sorted(outcomes) == [callbacks.Outcome.APPLIED, callbacks.Outcome.REPEAT]
    assert len(_audit(db, "escalation.ticket_updated")) == 1


def test_call_backs_without_a_valid_signature_are_refused(
    helpdesk: TestClient,
    db: Session,
    qa: QA,
    make_user: UserFactory,
    admin: User,
    brand: Brand,
) -> None:
    _webhook, secret = _hook(db, admin, brand, "https://8.8.4.4/helpdesk")
    other = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(other)
    db.commit()
    _other_hook, other_secret = _hook(db, admin, other, "https://8.8.8.8/globex")
    escalation = _escalation(db, qa, make_user, brand)
    path = f"/api/v1/helpdesk/escalations/{escalation.id}"
    body = json.dumps({"ticket_ref": "HD-1", "status": "open"})
    now = datetime.now(UTC)
    attempts = {
        "no headers": {"content-type": "application/json"},
        "made-up secret": _signed(webhooks.new_secret(), body),
        "another brand's secret": _signed(other_secret, body),
        "stale timestamp": _signed(secret, body, at=now - timedelta(minutes=6)),
        "future timestamp": _signed(secret, body, at=now + timedelta(minutes=6)),
        "garbled signature": _signed(secret, body) | {"webhook-signature": "v1"},
        "signature for other bytes": _signed(secret, body.replace("HD-1", "HD-2")),
    }
    for name, headers in attempts.items():
        response = helpdesk.post(path, content=body, headers=headers)
        assert response.status_code == 401, (name, response.text)
        assert response.json()["error"]["code"] == "invalid_signature", name
    fresh(db)
    assert db.get(Escalation, escalation.id).ticket_ref is None  # type: ignore[union-attr]
    assert not _audit(db, "escalation.ticket_updated")

    unknown = helpdesk.post(
        "/api/v1/helpdesk/escalations/999999", content=body, headers=_signed(secret, body)
    )
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        json.dumps({"status": "open"}),
        json.dumps({"ticket_ref": "", "status": "open"}),
        json.dumps({"ticket_ref": "HD-1", "status": "x" * 61}),
        json.dumps({"ticket_ref": "R" * 121, "status": "open"}),
        json.dumps({"ticket_ref": "HD-1", "status": "open", "url": "http://helpdesk.example/"}),
        json.dumps({"ticket_ref": "HD-1", "status": "open", "url": "javascript:alert(1)"}),
        json.dumps({"ticket_ref": "HD-\u0000", "status": "open"}),
        json.dumps({"ticket_ref": "HD-1", "status": "open", "priority": "urgent"}),
        json.dumps(["HD-1", "open"]),
    ],
)
def test_signed_call_back_with_a_bad_body_is_422(
    helpdesk: TestClient,
    db: Session,
    qa: QA,
    make_user: UserFactory,
    admin: User,
    brand: Brand,
    body: str,
) -> None:
    _webhook, secret = _hook(db, admin, brand, "https://8.8.4.4/helpdesk")
    escalation = _escalation(db, qa, make_user, brand)
    response = helpdesk.post(
        f"/api/v1/helpdesk/escalations/{escalation.id}",
        content=body,
        headers=_signed(secret, body),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"
    fresh(db)
    assert db.get(Escalation, escalation.id).ticket_ref is None  # type: ignore[union-attr]
