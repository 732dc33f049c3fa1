"""Loading an escalation for the agent who works it. Who may work escalations (agents and
admins; admins are the "lead agents" who may also act on an item someone else holds and reassign
it) is decided in community.core.policy."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from community.core.errors import NotFound
from community.core.models import Forum, Thread, User
from community.core.policy import ensure_agent, is_agent
from crowdservice.models import ACTIVE_ESCALATION, Escalation, EscalationStatus

ACTIVE_STATUSES = frozenset(EscalationStatus(value) for value in ACTIVE_ESCALATION)


def lock_escalation(db: Session, escalation: Escalation) -> None:
    """Re-read the row, locked on PostgreSQL, so the checks below see what other transactions
    committed (SQLite writers already hold the database lock: BEGIN IMMEDIATE)."""
    db.flush()
    # The thread first, as publishing, accepting and escalating do: one lock order everywhere,
    # or an agent acting while the author posts could deadlock on PostgreSQL.
    db.execute(select(Thread.id).where(Thread.id == escalation.thread_id).with_for_update())
    # Only the escalation's row: a row loaded with outer-joined relations would otherwise
    # repeat those joins, and PostgreSQL refuses FOR UPDATE on an outer join's nullable side.
    db.refresh(escalation, with_for_update={"of": Escalation})


def access_escalation(db: Session, user: User, escalation_id: int) -> Escalation:
    """The escalation, if `user` may work on it (agents and admins only)."""
    # The role check comes first, so nobody else learns which ids exist.
    ensure_agent(user, None)
    escalation = db.scalar(
        select(Escalation)
        .where(Escalation.id == escalation_id)
        .options(
            joinedload(Escalation.thread).joinedload(Thread.forum).joinedload(Forum.brand),
            joinedload(Escalation.assigned_agent),
        )
    )
    if escalation is None or not is_agent(user, escalation.brand_id):
        raise NotFound()
    return escalation
