"""Closing an item: handing it off to the brand's helpdesk (a signed webhook carries the whole
context), returning it to the community, resolving it; and what the helpdesk receives."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from community.core import indexing
from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.i18n import gettext as _
from community.core.i18n import override
from community.core.models import Post, Role, Thread, User, Visibility
from community.core.policy import (
    ensure_acting_agent,
    ensure_escalation_open,
    ensure_holder_or_lead,
)
from community.core.staff import holds_role_in
from community.core.workspace_models import BrandRole
from crowdservice import escalation as escalation_service
from crowdservice import triage, webhooks
from crowdservice.agent.access import lock_escalation
from crowdservice.agent.actions import (
    audit,
    claim,
    post_official,
    prepare_to_post,
    public_locale,
    state_of,
)
from crowdservice.agent.clocks import end_pause, resolution_due
from crowdservice.agent.queries import earlier_escalations
from crowdservice.models import (
    BreachKind,
    Escalation,
    EscalationStatus,
    Resolution,
    TriageResult,
)

# --- handing off, returning, resolving -------------------------------------------------------


def hand_off(db: Session, agent: User, escalation: Escalation, note: str | None) -> None:
    """Pass the case to the brand's helpdesk: a signed webhook carries the whole context. The
    ticket reference and status come back through the helpdesk's call-back."""
    prepare_to_post(db, agent, escalation)
    before = state_of(escalation)
    now = utcnow()
    end_pause(escalation, now)
    escalation.status = EscalationStatus.HANDED_OFF
    escalation.updated_at = now
    cleaned = _clean_note(note)
    db.flush()
    payload = context_payload(db, escalation)
    payload["handoff"] = {
        "note": cleaned,
        "agent": _person(agent),
        "at": _iso(now),
    }
    webhooks.enqueue_event(
        db, escalation.brand_id, "escalation.handed_off", payload, escalation_id=escalation.id
    )
    audit(db, agent, "escalation.handed_off", escalation, before=before, reason=cleaned)


def return_to_community(db: Session, agent: User, escalation: Escalation, note: str | None) -> None:
    """Not a case for support after all: the thread goes back to the community (open or
    answered again) and the escalation closes as returned."""
    ensure_acting_agent(agent, escalation.brand_id)
    lock_escalation(db, escalation)
    ensure_escalation_open(escalation)
    if escalation.assigned_agent_id is not None:
        ensure_holder_or_lead(agent, escalation)
    before = state_of(escalation)
    now = utcnow()
    end_pause(escalation, now)
    escalation.status = EscalationStatus.RETURNED
    escalation.resolution = Resolution.RETURNED
    escalation.resolved_at = now
    escalation.updated_at = now
    cleaned = _clean_note(note)
    _release_thread(db, escalation.thread)
    db.flush()
    webhooks.enqueue_event(
        db,
        escalation.brand_id,
        "escalation.returned",
        _event_payload(escalation, agent, cleaned, now),
        escalation_id=escalation.id,
    )
    audit(db, agent, "escalation.returned", escalation, before=before, reason=cleaned)


def resolve(db: Session, agent: User, escalation: Escalation, public_note: str | None) -> None:
    """Close the case. When peers helped in the thread, an official note thanks them (the
    agent's own note if given, else a standard sentence); an agent's note is posted anyway."""
    ensure_acting_agent(agent, escalation.brand_id)
    lock_escalation(db, escalation)
    ensure_escalation_open(escalation)
    if escalation.assigned_agent_id is None and escalation.status == EscalationStatus.OPEN:
        claim(db, agent, escalation)
    ensure_holder_or_lead(agent, escalation)
    before = state_of(escalation)
    thread = escalation.thread
    note = (public_note or "").strip()
    if not note and _peers_answered(db, thread):
        with override(public_locale(thread)):
            note = _("Thanks to everyone in the community who helped with this question.")
    if note and thread.visibility == Visibility.VISIBLE:
        post_official(db, agent, escalation, note)
    now = utcnow()
    handed_off = _was_handed_off(db, escalation)
    end_pause(escalation, now)
    escalation.status = EscalationStatus.RESOLVED
    escalation.resolution = Resolution.HELPDESK if handed_off else Resolution.AGENT
    escalation.resolved_at = now
    escalation.updated_at = now
    escalation_service.record_met(db, escalation, BreachKind.RESOLUTION, now)
    _release_thread(db, thread)
    db.flush()
    webhooks.enqueue_event(
        db,
        escalation.brand_id,
        "escalation.resolved",
        _event_payload(escalation, agent, None, now),
        escalation_id=escalation.id,
    )
    audit(db, agent, "escalation.resolved", escalation, before=before)


def _was_handed_off(db: Session, escalation: Escalation) -> bool:
    """Handed off now, or at some point (asking the customer for details changes the status)."""
    if escalation.status == EscalationStatus.HANDED_OFF or escalation.ticket_ref:
        return True
    found = db.scalar(
        select(AuditLog.id)
        .where(
            AuditLog.action == "escalation.handed_off",
            AuditLog.target_type == "escalation",
            AuditLog.target_id == str(escalation.id),
        )
        .limit(1)
    )
    return found is not None


def _release_thread(db: Session, thread: Thread) -> None:
    """The thread is no longer escalated: back to open, answered or solved as its posts say."""
    before = thread.status
    escalation_service.release_thread(thread)
    if thread.status != before:
        indexing.thread_changed(db, thread.id)  # the status is a search facet


def _peers_answered(db: Session, thread: Thread) -> bool:
    """A visible answer from a member who is not the asker."""
    found = db.scalar(
        select(Post.id)
        .join(User, User.id == Post.author_id)
        .where(
            Post.thread_id == thread.id,
            Post.is_question.is_(False),
            Post.visibility == Visibility.VISIBLE,
            User.role.not_in(Role.STAFF),  # a member: every role but the staff ones
            ~holds_role_in(thread.brand_id, BrandRole.STAFF),  # nor the brand's own staff
            Post.author_id != thread.author_id,
        )
        .limit(1)
    )
    return found is not None


def _clean_note(note: str | None) -> str | None:
    cleaned = (note or "").strip()
    return cleaned[:2000] or None


# --- what the helpdesk receives --------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"username": user.username, "display_name": user.display_name}


def _event_payload(
    escalation: Escalation, agent: User, note: str | None, at: datetime
) -> dict[str, Any]:
    return {
        "escalation": _escalation_summary(escalation, at),
        "thread": {"id": escalation.thread_id, "url": f"/t/{escalation.thread_id}"},
        "agent": _person(agent),
        "note": note,
        "at": _iso(at),
    }


def _escalation_summary(escalation: Escalation, now: datetime) -> dict[str, Any]:
    return {
        "id": escalation.id,
        "reason": escalation.reason.value,
        "priority": escalation.priority.value,
        "status": escalation.status.value,
        "resolution": escalation.resolution.value if escalation.resolution else None,
        "note": escalation.note,
        "created_at": _iso(escalation.created_at),
        "first_response_due_at": _iso(escalation.first_response_due_at),
        "resolution_due_at": _iso(resolution_due(escalation, now)),
        "claimed_at": _iso(escalation.claimed_at),
        "first_response_at": _iso(escalation.first_response_at),
        "resolved_at": _iso(escalation.resolved_at),
        "assigned_agent": _person(escalation.assigned_agent),
        "ticket_ref": escalation.ticket_ref,
        "ticket_status": escalation.ticket_status,
    }


def _visible_posts(db: Session, thread_id: int) -> list[Post]:
    return list(
        db.scalars(
            select(Post)
            .where(Post.thread_id == thread_id, Post.visibility == Visibility.VISIBLE)
            .options(selectinload(Post.author))
            .order_by(Post.id)
        )
    )


def context_payload(db: Session, escalation: Escalation) -> dict[str, Any]:
    """Everything the helpdesk needs to take the case over, as JSON. Only public profile facts:
    never e-mail addresses, password hashes, IP addresses, sessions or tokens."""
    now = utcnow()
    thread = escalation.thread
    brand = thread.forum.brand
    triage_result = db.get(TriageResult, thread.id)
    author = thread.author
    return {
        "escalation": _escalation_summary(escalation, now),
        "brand": {"slug": brand.slug, "name": brand.name},
        "thread": {
            "id": thread.id,
            "url": f"/t/{thread.id}",
            "title": thread.title,
            "kind": thread.kind.value,
            "status": thread.status.value,
            "locale": thread.locale,
            "forum": {"slug": thread.forum.slug, "name": thread.forum.name},
            "tags": [tag.name for tag in thread.tags],
            "created_at": _iso(thread.created_at),
            "triage": {
                "interaction_type": thread.interaction_type,
                "sentiment": thread.sentiment,
                "sentiment_score": thread.sentiment_score,
                "priority": thread.priority,
                "author_segment": thread.author_segment,
                "classifier": triage_result.classifier if triage_result else None,
                "reasons": triage_result.reasons if triage_result else {},
            },
        },
        "posts": [
            {
                "id": post.id,
                "is_question": post.is_question,
                "author": _person(post.author),
                "is_official": post.is_official,
                "created_at": _iso(post.created_at),
                "score": post.score,
                "body": post.body_source,
            }
            for post in _visible_posts(db, thread.id)
        ],
        "author": _profile(db, author),
        "earlier_escalations": [
            {
                "id": earlier.id,
                "thread_id": earlier.thread_id,
                "thread_title": earlier.thread.title,
                "reason": earlier.reason.value,
                "priority": earlier.priority.value,
                "status": earlier.status.value,
                "resolution": earlier.resolution.value if earlier.resolution else None,
                "created_at": _iso(earlier.created_at),
                "resolved_at": _iso(earlier.resolved_at),
            }
            for earlier in earlier_escalations(db, escalation)
        ],
    }


def _profile(db: Session, user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    segment, reasons = triage.segment_for(db, user)
    return {
        "username": user.username,
        "display_name": user.display_name,
        "reputation": user.reputation,
        "trust_level": user.trust_level,
        "segment": segment.value,
        "segment_reasons": reasons,
        "member_since": _iso(user.created_at),
        "verified_customer": user.verified_customer,
    }
