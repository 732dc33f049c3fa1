"""Who may work escalations, and loading one for them. Agents and admins work escalations;
admins are the "lead agents": they may also act on an item someone else holds and reassign it.
Moderators and members may not open the workspace at all."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from community.core.errors import Conflict, NotFound, PermissionDenied
from community.core.i18n import gettext as _
from community.core.models import Forum, Role, Thread, User
from community.core.policy import ensure_can_participate
from crowdservice.models import ACTIVE_ESCALATION, Escalation, EscalationStatus

AGENT_ROLES = (Role.AGENT, Role.ADMIN)
# Lead agents: admins. They may act on items other agents hold and reassign them.
LEAD_ROLES = (Role.ADMIN,)
ACTIVE_STATUSES = frozenset(EscalationStatus(value) for value in ACTIVE_ESCALATION)
CLOSED_STATUSES = frozenset({EscalationStatus.RESOLVED, EscalationStatus.RETURNED})


def is_agent(user: User | None) -> bool:
    return user is not None and user.role in AGENT_ROLES


def is_lead(user: User | None) -> bool:
    """Lead agents are admins (there is no separate role)."""
    return user is not None and user.role in LEAD_ROLES


def ensure_agent(user: User) -> None:
    if not is_agent(user):
        raise PermissionDenied()


def ensure_acting_agent(user: User) -> None:
    """An agent who may change things now (not deactivated, suspended or silenced)."""
    ensure_agent(user)
    ensure_can_participate(user)


def ensure_holder_or_lead(user: User, escalation: Escalation) -> None:
    if escalation.assigned_agent_id == user.id or is_lead(user):
        return
    raise PermissionDenied(
        _("Only the agent holding this escalation, or a lead agent, can do that.")
    )


def ensure_active(escalation: Escalation) -> None:
    if escalation.status in CLOSED_STATUSES:
        raise Conflict(_("This escalation is already closed."))


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
    ensure_agent(user)
    escalation = db.scalar(
        select(Escalation)
        .where(Escalation.id == escalation_id)
        .options(
            joinedload(Escalation.thread).joinedload(Thread.forum).joinedload(Forum.brand),
            joinedload(Escalation.assigned_agent),
        )
    )
    if escalation is None:
        raise NotFound()
    return escalation
