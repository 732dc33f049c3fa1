"""The agent's actions on an item: claiming (exactly one holder, whatever the race), releasing,
reassigning, answering in public and asking the author for details. Handing off, returning and
resolving are in `handoff`, linking an answer in `links`.

Every action checks who may do it, changes the rows, writes the audit entry and records side
effects (notifications, search outbox) in the caller's transaction. Nothing here commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from community import threads
from community.core import notifications
from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import Conflict, FormErrors, PermissionDenied
from community.core.i18n import gettext as _
from community.core.i18n import override
from community.core.models import Notification, NotificationKind, Post, Thread, User, Visibility
from community.core.policy import (
    ensure_acting_agent,
    ensure_escalation_open,
    ensure_holder_or_lead,
    is_agent,
    is_lead,
)
from community.core.schemas import AnswerIn
from community.core.staff import load_brand_roles
from crowdservice import escalation as escalation_service
from crowdservice.agent.access import ACTIVE_STATUSES, lock_escalation
from crowdservice.agent.clocks import end_pause
from crowdservice.models import BreachKind, Escalation, EscalationStatus


def audit(
    db: Session,
    actor: User,
    action: str,
    escalation: Escalation,
    *,
    before: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """The audit row of an action on an escalation: its status and holder after it."""
    record_audit(
        db,
        actor=actor,
        action=action,
        target_type="escalation",
        target_id=escalation.id,
        before=before,
        after={
            "status": escalation.status.value,
            "assigned_agent_id": escalation.assigned_agent_id,
        },
        reason=reason,
    )


def state_of(escalation: Escalation) -> dict[str, Any]:
    """What an audit row records as "before"."""
    return {"status": escalation.status.value, "assigned_agent_id": escalation.assigned_agent_id}


# --- claiming --------------------------------------------------------------------------------


def claim(db: Session, agent: User, escalation: Escalation) -> Escalation:
    """Take an open item. Exactly one agent wins a race: the row changes only while it is still
    open and unassigned (PostgreSQL re-checks the condition after waiting for the row lock)."""
    ensure_acting_agent(agent, escalation.brand_id)
    if escalation.assigned_agent_id == agent.id and escalation.status in ACTIVE_STATUSES:
        return escalation
    now = utcnow()
    result = db.execute(
        update(Escalation)
        .where(
            Escalation.id == escalation.id,
            Escalation.assigned_agent_id.is_(None),
            Escalation.status.in_([EscalationStatus.OPEN]),
        )
        .values(
            assigned_agent_id=agent.id,
            status=EscalationStatus.CLAIMED,
            claimed_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    db.refresh(escalation)
    if getattr(result, "rowcount", 0) != 1:
        if escalation.assigned_agent_id == agent.id and escalation.status in ACTIVE_STATUSES:
            return escalation  # a double click that lost to itself
        holder = escalation.assigned_agent
        if holder is not None and escalation.status in ACTIVE_STATUSES:
            raise Conflict(_("Already claimed by %(name)s.") % {"name": holder.display_name})
        raise Conflict(_("This escalation is no longer open."))
    audit(
        db,
        agent,
        "escalation.claimed",
        escalation,
        before={"status": EscalationStatus.OPEN.value, "assigned_agent_id": None},
    )
    return escalation


def release(db: Session, agent: User, escalation: Escalation) -> Escalation:
    """Give an item back to the queue (open, unassigned): its holder or a lead."""
    ensure_acting_agent(agent, escalation.brand_id)
    lock_escalation(db, escalation)
    ensure_escalation_open(escalation)
    if escalation.assigned_agent_id is None:
        raise Conflict(_("This escalation is not held by anyone."))
    ensure_holder_or_lead(agent, escalation)
    if escalation.status == EscalationStatus.HANDED_OFF:
        raise Conflict(_("This escalation is with the helpdesk."))
    before = state_of(escalation)
    now = utcnow()
    end_pause(escalation, now)
    escalation.status = EscalationStatus.OPEN
    escalation.assigned_agent_id = None
    escalation.claimed_at = None
    escalation.updated_at = now
    db.flush()
    audit(db, agent, "escalation.released", escalation, before=before)
    return escalation


def reassign(db: Session, lead: User, escalation: Escalation, to_agent: User) -> Escalation:
    """A lead gives an item to another active agent (an open item becomes claimed by them)."""
    ensure_acting_agent(lead, escalation.brand_id)
    if not is_lead(lead, escalation.brand_id):
        raise PermissionDenied(_("Only lead agents can reassign escalations."))
    lock_escalation(db, escalation)
    ensure_escalation_open(escalation)
    now = utcnow()
    load_brand_roles(db, to_agent)
    if not is_agent(to_agent, escalation.brand_id) or not _is_active_account(to_agent, now):
        raise FormErrors({"agent": _("Escalations can only be assigned to active support agents.")})
    if escalation.assigned_agent_id == to_agent.id:
        return escalation
    before = state_of(escalation)
    escalation.assigned_agent_id = to_agent.id
    escalation.claimed_at = now
    if escalation.status == EscalationStatus.OPEN:
        escalation.status = EscalationStatus.CLAIMED
    escalation.updated_at = now
    db.flush()
    db.refresh(escalation, ["assigned_agent"])
    audit(db, lead, "escalation.reassigned", escalation, before=before)
    return escalation


def _is_active_account(user: User, now: datetime) -> bool:
    if user.deactivated_at is not None:
        return False
    return user.suspended_until is None or user.suspended_until <= now


# --- answering -------------------------------------------------------------------------------


def prepare_to_post(db: Session, agent: User, escalation: Escalation) -> None:
    """Holder or lead may post; an unclaimed open item is claimed by whoever answers it."""
    ensure_acting_agent(agent, escalation.brand_id)
    lock_escalation(db, escalation)
    ensure_escalation_open(escalation)
    if escalation.assigned_agent_id is None and escalation.status == EscalationStatus.OPEN:
        claim(db, agent, escalation)
    ensure_holder_or_lead(agent, escalation)


def post_official(db: Session, agent: User, escalation: Escalation, body: str) -> Post:
    post = threads.answer(db, agent, escalation.thread, AnswerIn(body=body))
    # Publishing runs escalation.on_post_published, which records the first response; make sure
    # of it here too, so a change in that wiring cannot lose the measurement.
    db.flush()
    db.refresh(escalation)
    if escalation.first_response_at is None and post.visibility == Visibility.VISIBLE:
        escalation.first_response_at = post.created_at
        escalation_service.record_met(db, escalation, BreachKind.FIRST_RESPONSE, post.created_at)
    return post


def respond(db: Session, agent: User, escalation: Escalation, body: str) -> Post:
    """Answer in public: an official answer the asker can accept. The asker hears of it through
    the normal answer notification."""
    threads.clean_body(body)  # bad input changes nothing, not even the claim
    prepare_to_post(db, agent, escalation)
    before = state_of(escalation)
    post = post_official(db, agent, escalation, body)
    now = utcnow()
    end_pause(escalation, now)
    if escalation.status != EscalationStatus.HANDED_OFF:  # the helpdesk still has it
        escalation.status = EscalationStatus.ANSWERED
    escalation.updated_at = now
    db.flush()
    audit(db, agent, "escalation.answered", escalation, before=before)
    return post


def ask_details(db: Session, agent: User, escalation: Escalation, body: str) -> Post:
    """Ask the author for more information in public and stop the resolution clock until the
    author posts again (escalation.on_post_published resumes it)."""
    text = threads.clean_body(body)
    prepare_to_post(db, agent, escalation)
    before = state_of(escalation)
    thread = escalation.thread
    author = thread.author
    with override(public_locale(thread)):
        heading = _("The support team needs more details")
    post = post_official(db, agent, escalation, f"**{heading}**\n\n{text}")
    now = utcnow()
    escalation.status = EscalationStatus.WAITING
    escalation.waiting_since = escalation.waiting_since or now
    escalation.updated_at = now
    db.flush()
    if author is not None:
        # Stored as text, read later: in the author's language.
        with override(author.locale or thread.forum.brand.default_locale):
            message = _("The support team needs more details")
        _notify_support(db, author, agent, thread, post, message)
    audit(db, agent, "escalation.waiting", escalation, before=before)
    return post


def _notify_support(
    db: Session, recipient: User, actor: User, thread: Thread, post: Post, message: str
) -> None:
    """One notification per action: the answer notification publishing just wrote becomes the
    support notice (its e-mail, queued by id, renders the notice)."""
    existing = db.scalar(
        select(Notification).where(
            Notification.user_id == recipient.id,
            Notification.post_id == post.id,
            Notification.kind == NotificationKind.ANSWER,
        )
    )
    if existing is not None:
        existing.kind = NotificationKind.SUPPORT
        existing.data = {"message": message}
        db.flush()
        return
    notifications.notify(
        db,
        recipient,
        NotificationKind.SUPPORT,
        actor=actor,
        thread=thread,
        post=post,
        data={"message": message},
    )


def public_locale(thread: Thread) -> str:
    """What the support team writes in public goes in the thread's language."""
    return thread.locale or thread.forum.brand.default_locale
