"""The whole hand-off, end to end: a member asks for the support team, an agent claims the
escalation and hands it off from the workspace, the worker delivers the signed context to a
real helpdesk receiver on loopback (after a 500, on the retry schedule), and the helpdesk's
signed call-back puts its ticket on the escalation for the agent and the author to see."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook as StandardWebhook

from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.models import Brand, Role, User
from crowdservice import escalation as escalations
from crowdservice import webhooks
from crowdservice.models import DeliveryStatus, Escalation, EscalationStatus, WebhookDelivery
from tests.conftest import QA, csrf_token, fresh, log_in
from tests.crowdservice.test_webhooks import Receiver, _signed, receiver  # noqa: F401

RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]


def test_hand_off_reaches_the_helpdesk_signed_once_and_its_ticket_comes_back(
    db: Session,
    engine: Engine,
    qa: QA,
    make_user: Callable[..., User],
    make_client: Callable[[], TestClient],
    as_role: RoleClient,
    receiver: Receiver,  # noqa: F811 - the fixture imported above
) -> None:
    asker = make_user("dana", trust_level=1)
    admin = make_user("boss", role=Role.ADMIN)
    brand = db.get(Brand, qa.forum.brand_id)
    assert brand is not None
    _webhook, secret = webhooks.create_webhook(
        db, admin, brand, url=receiver.url(), events=["escalation.handed_off"], allow_private=True
    )
    db.commit()
    thread = qa.ask(asker, "My fibre drops every night at 2am", "It has done so for a week.")

    author = make_client()
    log_in(author, "dana")
    asked = author.post(
        f"/t/{thread.id}/support",
        data={"csrf_token": csrf_token(author, f"/t/{thread.id}")},
        follow_redirects=True,
    )
    assert asked.status_code == 200
    assert "A support agent has been notified." in asked.text
    fresh(db)
    escalation = escalations.active_escalation(db, thread.id)
    assert escalation is not None

    agent_client, _agent = as_role(Role.AGENT)
    item = f"/agent/escalations/{escalation.id}"
    token = csrf_token(agent_client, item)
    for action, data in (("claim", {}), ("handoff", {"note": "Line fault, needs a technician"})):
        done = agent_client.post(
            f"{item}/{action}", data={"csrf_token": token, **data}, follow_redirects=False
        )
        assert done.status_code == 303, (action, done.text[:300])
    fresh(db)
    stored = db.get(Escalation, escalation.id)
    assert stored is not None and stored.status == EscalationStatus.HANDED_OFF

    factory = make_session_factory(engine)
    receiver.respond(500)  # the helpdesk is briefly down
    assert webhooks.deliver_due(factory, worker_id="w1", timeout=5.0) == 1
    with time_machine.travel(utcnow() + timedelta(seconds=6)):
        assert webhooks.deliver_due(factory, worker_id="w1", timeout=5.0) == 1
    with time_machine.travel(utcnow() + timedelta(hours=1)):
        assert webhooks.deliver_due(factory, worker_id="w1", timeout=5.0) == 0  # sent: done

    assert len(receiver.requests) == 2
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    payload = StandardWebhook(secret).verify(second.body, second.headers)
    assert payload["type"] == "escalation.handed_off"
    context = payload["data"]
    assert context["thread"]["title"] == "My fibre drops every night at 2am"
    assert any("a week" in post["body"] for post in context["posts"])
    assert context["handoff"]["note"] == "Line fault, needs a technician"
    assert "@" not in second.body.decode()  # no e-mail address leaves the site
    fresh(db)
    delivery = db.scalars(select(WebhookDelivery)).one()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.last_status_code == 200

    body = json.dumps({"ticket_ref": "HD-9", "status": "technician booked"})
    with TestClient(agent_client.app) as helpdesk:
        answered = helpdesk.post(
            f"/api/v1/helpdesk/escalations/{escalation.id}",
            content=body,
            headers=_signed(secret, body),
        )
    assert answered.status_code == 200, answered.text
    assert "HD-9" in agent_client.get(item).text
    assert "technician booked" in author.get(f"/t/{thread.id}").text
