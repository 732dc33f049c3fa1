"""Helpers the crowd-service tests share: an escalated question, a solved one, a row as the
database has it now, an escalation's audit entries and a helpdesk webhook."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from community import voting
from community.core.audit import AuditLog
from community.core.db import Base
from community.core.models import Thread, User
from crowdservice import escalation
from crowdservice.models import Escalation, EscalationReason, Webhook
from tests.conftest import QA, fresh

WEBHOOK_SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLWFnZW50LXRlc3Rz"

HELPDESK_EVENTS = ("escalation.handed_off", "escalation.resolved", "escalation.returned")

Row = TypeVar("Row", bound=Base)


def escalated(
    db: Session,
    qa: QA,
    asker: User,
    title: str = "My eSIM stopped working after the update",
    *,
    body: str | None = None,
    reason: EscalationReason = EscalationReason.AUTHOR_REQUEST,
) -> Escalation:
    """A new question by `asker`, escalated (by the author's request unless told)."""
    thread = qa.ask(asker, title=title, body=body)
    item = escalation.escalate(db, thread, reason, actor=asker)
    db.commit()
    return item


def solved_thread(
    db: Session, qa: QA, asker: User, answerer: User, title: str, answer: str
) -> Thread:
    """A question by `asker`, solved: `answerer`'s answer accepted."""
    thread = qa.ask(asker, title=title)
    accepted = qa.answer(answerer, thread, answer)
    voting.accept(db, asker, accepted.id)
    db.commit()
    return thread


def reloaded(db: Session, row: Row) -> Row:
    """`row` as the database has it now, with what other connections committed."""
    key = inspect(row).identity
    assert key is not None, row
    fresh(db)
    found = db.get(type(row), key)
    assert found is not None, row
    return found


def audits(db: Session, action: str, item: Escalation) -> list[AuditLog]:
    """The audit entries of one action on one escalation."""
    return list(
        db.scalars(
            select(AuditLog).where(
                AuditLog.action == action,
                AuditLog.target_type == "escalation",
                AuditLog.target_id == str(item.id),
            )
        )
    )


def add_webhook(
    db: Session,
    item: Escalation,
    events: tuple[str, ...] = HELPDESK_EVENTS,
) -> Webhook:
    """An active helpdesk webhook on the escalation's brand, sending `events`."""
    hook = Webhook(
        brand_id=item.brand_id,
        url="https://helpdesk.example/hooks",
        secret=WEBHOOK_SECRET,
        events=list(events),
        active=True,
    )
    db.add(hook)
    db.commit()
    return hook
