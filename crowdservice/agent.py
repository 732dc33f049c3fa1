"""The agent workspace: the queue of escalations, claiming (exactly one holder, whatever the
race), answering in public, asking the author for details, handing off to the helpdesk,
returning to the community, resolving, and the whole context of one item (the queue's counts
and an agent's own figures are in crowdservice/figures.py).

Who works escalations: agents and admins. Admins are the "lead agents": besides working items
themselves they may act on an item someone else holds (answer, release, hand off, resolve) and
reassign it. Moderators and members may not open the workspace at all.

Every state change is a `do_*`-style action here: it checks who may do it, changes the rows,
writes the audit entry and records side effects (notifications, webhook deliveries, search
outbox) in the caller's transaction. Nothing here commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload, selectinload

from community import indexing, notifications, threads
from community.clock import utcnow
from community.errors import Conflict, FormErrors, NotFound, PermissionDenied
from community.i18n import gettext as _
from community.i18n import override
from community.models import (
    Brand,
    Forum,
    Notification,
    NotificationKind,
    Post,
    Role,
    Thread,
    User,
    Visibility,
)
from community.policy import ensure_can_participate
from community.schemas import AnswerIn
from crowdservice import escalation as escalation_service
from crowdservice import explain, triage, webhooks
from crowdservice.models import (
    ACTIVE_ESCALATION,
    BreachKind,
    Escalation,
    EscalationStatus,
    Priority,
    Resolution,
    Segment,
    TriageResult,
)
from kb import service_search
from kb.models import Article
from kb.search import STOP_WORDS, SearchEngine, SearchUnavailable
from moderation.audit import record_audit
from moderation.models import AuditLog

AGENT_ROLES = (Role.AGENT, Role.ADMIN)
# Lead agents: admins. They may act on items other agents hold and reassign them.
LEAD_ROLES = (Role.ADMIN,)
ACTIVE_STATUSES = frozenset(EscalationStatus(value) for value in ACTIVE_ESCALATION)
CLOSED_STATUSES = frozenset({EscalationStatus.RESOLVED, EscalationStatus.RETURNED})
QUEUE_LIMIT = 200
RECENT_THREADS = 10
EARLIER_ESCALATIONS = 20


# --- who may act -----------------------------------------------------------------------------


def is_agent(user: User | None) -> bool:
    return user is not None and user.role in AGENT_ROLES


def is_lead(user: User | None) -> bool:
    """Lead agents are admins (there is no separate role)."""
    return user is not None and user.role in LEAD_ROLES


def _ensure_agent(user: User) -> None:
    if not is_agent(user):
        raise PermissionDenied()


def _ensure_acting_agent(user: User) -> None:
    """An agent who may change things now (not deactivated, suspended or silenced)."""
    _ensure_agent(user)
    ensure_can_participate(user)


def _ensure_holder_or_lead(user: User, escalation: Escalation) -> None:
    if escalation.assigned_agent_id == user.id or is_lead(user):
        return
    raise PermissionDenied(
        _("Only the agent holding this escalation, or a lead agent, can do that.")
    )


def _ensure_active(escalation: Escalation) -> None:
    if escalation.status in CLOSED_STATUSES:
        raise Conflict(_("This escalation is already closed."))


def _lock(db: Session, escalation: Escalation) -> None:
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
    _ensure_agent(user)
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


# --- clocks ----------------------------------------------------------------------------------


def paused_seconds(escalation: Escalation, now: datetime) -> int:
    """Seconds the resolution clock has been stopped, including a pause still running."""
    total = escalation.paused_seconds or 0
    if escalation.waiting_since is not None:
        total += max(0, int((now - escalation.waiting_since).total_seconds()))
    return total


def resolution_due(escalation: Escalation, now: datetime) -> datetime:
    """The resolution due time, moved on by the time spent waiting on the customer."""
    return escalation_service.resolution_due(escalation, now)


def due_that_matters(escalation: Escalation, now: datetime) -> tuple[BreachKind, datetime]:
    """First response while nobody from support has answered, resolution after that."""
    if escalation.first_response_at is None:
        return BreachKind.FIRST_RESPONSE, escalation.first_response_due_at
    return BreachKind.RESOLUTION, resolution_due(escalation, now)


def seconds_left(escalation: Escalation, now: datetime) -> int:
    """Negative once the target is missed."""
    _kind, due = due_that_matters(escalation, now)
    return int((due - now).total_seconds())


def _end_pause(escalation: Escalation, now: datetime) -> None:
    if escalation.waiting_since is not None:
        escalation.paused_seconds = paused_seconds(escalation, now)
        escalation.waiting_since = None


def _audit(
    db: Session,
    actor: User,
    action: str,
    escalation: Escalation,
    *,
    before: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
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


def _state(escalation: Escalation) -> dict[str, Any]:
    return {"status": escalation.status.value, "assigned_agent_id": escalation.assigned_agent_id}


# --- claiming --------------------------------------------------------------------------------


def claim(db: Session, agent: User, escalation: Escalation) -> Escalation:
    """Take an open item. Exactly one agent wins a race: the row changes only while it is still
    open and unassigned (PostgreSQL re-checks the condition after waiting for the row lock)."""
    _ensure_acting_agent(agent)
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
    _audit(
        db,
        agent,
        "escalation.claimed",
        escalation,
        before={"status": EscalationStatus.OPEN.value, "assigned_agent_id": None},
    )
    return escalation


def release(db: Session, agent: User, escalation: Escalation) -> Escalation:
    """Give an item back to the queue (open, unassigned): its holder or a lead."""
    _ensure_acting_agent(agent)
    _lock(db, escalation)
    _ensure_active(escalation)
    if escalation.assigned_agent_id is None:
        raise Conflict(_("This escalation is not held by anyone."))
    _ensure_holder_or_lead(agent, escalation)
    if escalation.status == EscalationStatus.HANDED_OFF:
        raise Conflict(_("This escalation is with the helpdesk."))
    before = _state(escalation)
    now = utcnow()
    _end_pause(escalation, now)
    escalation.status = EscalationStatus.OPEN
    escalation.assigned_agent_id = None
    escalation.claimed_at = None
    escalation.updated_at = now
    db.flush()
    _audit(db, agent, "escalation.released", escalation, before=before)
    return escalation


def reassign(db: Session, lead: User, escalation: Escalation, to_agent: User) -> Escalation:
    """A lead gives an item to another active agent (an open item becomes claimed by them)."""
    _ensure_acting_agent(lead)
    if not is_lead(lead):
        raise PermissionDenied(_("Only lead agents can reassign escalations."))
    _lock(db, escalation)
    _ensure_active(escalation)
    now = utcnow()
    if not is_agent(to_agent) or not _is_active_account(to_agent, now):
        raise FormErrors({"agent": _("Escalations can only be assigned to active support agents.")})
    if escalation.assigned_agent_id == to_agent.id:
        return escalation
    before = _state(escalation)
    escalation.assigned_agent_id = to_agent.id
    escalation.claimed_at = now
    if escalation.status == EscalationStatus.OPEN:
        escalation.status = EscalationStatus.CLAIMED
    escalation.updated_at = now
    db.flush()
    db.refresh(escalation, ["assigned_agent"])
    _audit(db, lead, "escalation.reassigned", escalation, before=before)
    return escalation


def _is_active_account(user: User, now: datetime) -> bool:
    if user.deactivated_at is not None:
        return False
    return user.suspended_until is None or user.suspended_until <= now


# --- answering -------------------------------------------------------------------------------


def _prepare_to_post(db: Session, agent: User, escalation: Escalation) -> None:
    """Holder or lead may post; an unclaimed open item is claimed by whoever answers it."""
    _ensure_acting_agent(agent)
    _lock(db, escalation)
    _ensure_active(escalation)
    if escalation.assigned_agent_id is None and escalation.status == EscalationStatus.OPEN:
        claim(db, agent, escalation)
    _ensure_holder_or_lead(agent, escalation)


def _post_official(db: Session, agent: User, escalation: Escalation, body: str) -> Post:
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
    _prepare_to_post(db, agent, escalation)
    before = _state(escalation)
    post = _post_official(db, agent, escalation, body)
    now = utcnow()
    _end_pause(escalation, now)
    if escalation.status != EscalationStatus.HANDED_OFF:  # the helpdesk still has it
        escalation.status = EscalationStatus.ANSWERED
    escalation.updated_at = now
    db.flush()
    _audit(db, agent, "escalation.answered", escalation, before=before)
    return post


def ask_details(db: Session, agent: User, escalation: Escalation, body: str) -> Post:
    """Ask the author for more information in public and stop the resolution clock until the
    author posts again (escalation.on_post_published resumes it)."""
    text = threads.clean_body(body)
    _prepare_to_post(db, agent, escalation)
    before = _state(escalation)
    thread = escalation.thread
    author = thread.author
    with override(_public_locale(thread)):
        heading = _("The support team needs more details")
    post = _post_official(db, agent, escalation, f"**{heading}**\n\n{text}")
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
    _audit(db, agent, "escalation.waiting", escalation, before=before)
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


def _public_locale(thread: Thread) -> str:
    """What the support team writes in public goes in the thread's language."""
    return thread.locale or thread.forum.brand.default_locale


# --- linking a KB entry or a solved thread ---------------------------------------------------

_ARTICLE_PATH = re.compile(r"(?:^|/)kb/articles/(\d+)(?:[/?#]|$)")
_THREAD_PATH = re.compile(r"(?:^|/)t/(\d+)(?:[/?#]|$)")
_TYPED_ID = re.compile(r"^(article|solution|thread):(\d+)$")
_WORD = re.compile(r"\w+")
_STOP_WORDS = frozenset(STOP_WORDS)
_MARKDOWN_SPECIAL = re.compile(r"([\\\[\]*_`<>])")


@dataclass(frozen=True, slots=True)
class LinkTarget:
    kind: str  # "article" or "thread"
    entry_id: int
    title: str
    path: str


def resolve_link(db: Session, escalation: Escalation, url_or_id: str) -> LinkTarget:
    """What "link this answer" points to: a live article of the brand, or another visible thread
    of the brand. Accepts a URL or path (/kb/articles/7, /t/42) or a typed id (article:7,
    thread:42, solution:42 as the similar-entries list gives them)."""
    kind, entry_id = _parse_link(url_or_id)
    brand_id = escalation.brand_id
    if kind == "article":
        article = db.get(Article, entry_id)
        if article is None or article.brand_id != brand_id or not article.is_live:
            raise NotFound()
        return LinkTarget("article", article.id, article.title, f"/kb/articles/{article.id}")
    target = db.scalar(
        select(Thread)
        .join(Forum, Forum.id == Thread.forum_id)
        .where(
            Thread.id == entry_id,
            Forum.brand_id == brand_id,
            Thread.visibility == Visibility.VISIBLE,
        )
    )
    if target is None or target.id == escalation.thread_id:
        raise NotFound()
    return LinkTarget("thread", target.id, target.title, f"/t/{target.id}")


def _parse_link(url_or_id: str) -> tuple[str, int]:
    raw = url_or_id.strip()[:500]
    typed = _TYPED_ID.match(raw)
    if typed:
        return ("article" if typed.group(1) == "article" else "thread"), int(typed.group(2))
    for kind, pattern in (("article", _ARTICLE_PATH), ("thread", _THREAD_PATH)):
        found = pattern.search(raw)
        if found:
            return kind, int(found.group(1))
    raise FormErrors({"link": _("Paste the link of a knowledge-base article or a solved thread.")})


def link_answer(db: Session, agent: User, escalation: Escalation, url_or_id: str) -> Post:
    """One click: an official answer pointing to a KB article or a solved thread."""
    target = resolve_link(db, escalation, url_or_id)
    thread = escalation.thread
    with override(_public_locale(thread)):
        intro = _("This may answer your question:")
    title = _MARKDOWN_SPECIAL.sub(r"\\\1", target.title)
    return respond(db, agent, escalation, f"{intro} [{title}]({target.path})")


# --- handing off, returning, resolving -------------------------------------------------------


def hand_off(db: Session, agent: User, escalation: Escalation, note: str | None) -> None:
    """Pass the case to the brand's helpdesk: a signed webhook carries the whole context. The
    ticket reference and status come back through the helpdesk's call-back."""
    _prepare_to_post(db, agent, escalation)
    before = _state(escalation)
    now = utcnow()
    _end_pause(escalation, now)
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
    _audit(db, agent, "escalation.handed_off", escalation, before=before, reason=cleaned)


def return_to_community(db: Session, agent: User, escalation: Escalation, note: str | None) -> None:
    """Not a case for support after all: the thread goes back to the community (open or
    answered again) and the escalation closes as returned."""
    _ensure_acting_agent(agent)
    _lock(db, escalation)
    _ensure_active(escalation)
    if escalation.assigned_agent_id is not None:
        _ensure_holder_or_lead(agent, escalation)
    before = _state(escalation)
    now = utcnow()
    _end_pause(escalation, now)
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
    _audit(db, agent, "escalation.returned", escalation, before=before, reason=cleaned)


def resolve(db: Session, agent: User, escalation: Escalation, public_note: str | None) -> None:
    """Close the case. When peers helped in the thread, an official note thanks them (the
    agent's own note if given, else a standard sentence); an agent's note is posted anyway."""
    _ensure_acting_agent(agent)
    _lock(db, escalation)
    _ensure_active(escalation)
    if escalation.assigned_agent_id is None and escalation.status == EscalationStatus.OPEN:
        claim(db, agent, escalation)
    _ensure_holder_or_lead(agent, escalation)
    before = _state(escalation)
    thread = escalation.thread
    note = (public_note or "").strip()
    if not note and _peers_answered(db, thread):
        with override(_public_locale(thread)):
            note = _("Thanks to everyone in the community who helped with this question.")
    if note and thread.visibility == Visibility.VISIBLE:
        _post_official(db, agent, escalation, note)
    now = utcnow()
    handed_off = _was_handed_off(db, escalation)
    _end_pause(escalation, now)
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
    _audit(db, agent, "escalation.resolved", escalation, before=before)


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
            User.role == Role.MEMBER,
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


def _earlier_escalations(db: Session, escalation: Escalation) -> list[Escalation]:
    author_id = escalation.thread.author_id
    if author_id is None:
        return []
    return list(
        db.scalars(
            select(Escalation)
            .join(Thread, Thread.id == Escalation.thread_id)
            .where(Thread.author_id == author_id, Escalation.id != escalation.id)
            .where(Escalation.created_at <= escalation.created_at)
            .options(joinedload(Escalation.thread))
            .order_by(Escalation.created_at.desc(), Escalation.id.desc())
            .limit(EARLIER_ESCALATIONS)
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
            for earlier in _earlier_escalations(db, escalation)
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


# --- the queue -------------------------------------------------------------------------------

QUEUE_SCOPES = ("all", "mine", "unclaimed", "breached")
COUNTED_STATES = (
    EscalationStatus.OPEN,
    EscalationStatus.CLAIMED,
    EscalationStatus.ANSWERED,
    EscalationStatus.WAITING,
    EscalationStatus.HANDED_OFF,
)


@dataclass
class QueueFilters:
    """What the queue shows. Unknown values from a query string are dropped by from_params, so
    a hand-edited URL never fails."""

    priority: Priority | None = None
    forum: str | None = None  # forum slug
    interaction_type: str | None = None
    language: str | None = None
    scope: str = "all"  # "all" | "mine" | "unclaimed" | "breached"
    statuses: frozenset[EscalationStatus] = field(default_factory=lambda: ACTIVE_STATUSES)

    @classmethod
    def from_params(cls, params: dict[str, str]) -> QueueFilters:
        priority = params.get("priority") or ""
        scope = params.get("scope") or "all"
        wanted = {value for value in (params.get("status") or "").split(",") if value}
        statuses = frozenset(
            EscalationStatus(value)
            for value in wanted
            if value in EscalationStatus._value2member_map_
        )
        return cls(
            priority=Priority(priority) if priority in Priority._value2member_map_ else None,
            forum=(params.get("forum") or "")[:60] or None,
            interaction_type=(params.get("type") or "")[:30] or None,
            language=(params.get("language") or "")[:8] or None,
            scope=scope if scope in QUEUE_SCOPES else "all",
            statuses=statuses or ACTIVE_STATUSES,
        )


@dataclass
class QueueItem:
    escalation: Escalation
    thread_id: int
    title: str
    forum_slug: str
    forum_name: str
    priority: Priority
    interaction_type: str | None
    language: str
    status: EscalationStatus
    reason: str
    assignee: User | None
    due_kind: BreachKind
    due_at: datetime
    seconds_left: int

    @property
    def breached(self) -> bool:
        return self.seconds_left < 0


@dataclass
class QueueListing:
    """The items matching the filters; the queue's counts come from figures.workload."""

    items: list[QueueItem]
    total: int  # items matching the filters (items holds at most QUEUE_LIMIT)


def queue(
    db: Session, viewer: User, brand: Brand, filters: QueueFilters, *, now: datetime
) -> QueueListing:
    """The brand's escalations on threads still visible, the most urgent first: ordered by the
    due time that matters now (first response, then resolution with pauses added)."""
    _ensure_agent(viewer)
    rows = list(
        db.execute(
            select(Escalation, Thread, Forum)
            .join(Thread, Thread.id == Escalation.thread_id)
            .join(Forum, Forum.id == Thread.forum_id)
            .where(
                Escalation.brand_id == brand.id,
                Escalation.status.in_(list(ACTIVE_STATUSES | filters.statuses)),
                Thread.visibility == Visibility.VISIBLE,
            )
            .options(joinedload(Escalation.assigned_agent))
        ).all()
    )
    items: list[QueueItem] = []
    for escalation, thread, forum in rows:
        due_kind, due_at = due_that_matters(escalation, now)
        left = int((due_at - now).total_seconds())
        if not _matches(escalation, thread, forum, filters, viewer, left):
            continue
        items.append(
            QueueItem(
                escalation=escalation,
                thread_id=thread.id,
                title=thread.title,
                forum_slug=forum.slug,
                forum_name=forum.name,
                priority=escalation.priority,
                interaction_type=thread.interaction_type,
                language=thread.locale,
                status=escalation.status,
                reason=escalation.reason.value,
                assignee=escalation.assigned_agent,
                due_kind=due_kind,
                due_at=due_at,
                seconds_left=left,
            )
        )
    items.sort(key=lambda item: (item.due_at, item.priority.value, item.escalation.id))
    return QueueListing(items=items[:QUEUE_LIMIT], total=len(items))


def _matches(
    escalation: Escalation,
    thread: Thread,
    forum: Forum,
    filters: QueueFilters,
    viewer: User,
    left: int,
) -> bool:
    if escalation.status not in filters.statuses:
        return False
    if filters.priority is not None and escalation.priority != filters.priority:
        return False
    if filters.forum and forum.slug != filters.forum:
        return False
    if filters.interaction_type and thread.interaction_type != filters.interaction_type:
        return False
    if filters.language and thread.locale != filters.language:
        return False
    if filters.scope == "mine":
        return escalation.assigned_agent_id == viewer.id
    if filters.scope == "unclaimed":
        return escalation.assigned_agent_id is None
    if filters.scope == "breached":
        return left < 0
    return True


# --- one item's context ----------------------------------------------------------------------


@dataclass
class ItemContext:
    escalation: Escalation
    thread: Thread
    # Every post, hidden ones too (staff see them, marked by their visibility).
    posts: list[Post]
    author: User | None
    segment: Segment
    # The facts behind the segment (triage.segment_for): "because" and the counts it used.
    segment_reasons: dict[str, Any]
    recent_threads: list[Thread]
    earlier_escalations: list[Escalation]
    triage: TriageResult | None
    first_response_due_at: datetime
    resolution_due_at: datetime
    due_kind: BreachKind
    seconds_left: int

    @property
    def breached(self) -> bool:
        return self.seconds_left < 0

    @property
    def triage_facts(self) -> list[explain.Fact]:
        return explain.triage_facts(self.triage.reasons if self.triage else None)

    @property
    def segment_facts(self) -> list[explain.Fact]:
        return explain.segment_facts(self.segment_reasons)


def item_context(
    db: Session, escalation: Escalation, *, now: datetime | None = None
) -> ItemContext:
    """What an agent sees when working one item (the caller checked access)."""
    now = now or utcnow()
    thread = escalation.thread
    author = thread.author
    posts = list(
        db.scalars(
            select(Post)
            .where(Post.thread_id == thread.id)
            .options(selectinload(Post.author))
            # The question first, then the answers as they came (ids need not follow time:
            # imports and merges insert posts late).
            .order_by(Post.is_question.desc(), Post.created_at, Post.id)
        )
    )
    segment, reasons = triage.segment_for(db, author)
    recent: list[Thread] = []
    if author is not None:
        recent = list(
            db.scalars(
                select(Thread)
                .where(Thread.author_id == author.id, Thread.id != thread.id)
                .options(joinedload(Thread.forum))
                .order_by(Thread.created_at.desc(), Thread.id.desc())
                .limit(RECENT_THREADS)
            )
        )
    due_kind, _due = due_that_matters(escalation, now)
    return ItemContext(
        escalation=escalation,
        thread=thread,
        posts=posts,
        author=author,
        segment=segment,
        segment_reasons=reasons,
        recent_threads=recent,
        earlier_escalations=_earlier_escalations(db, escalation),
        triage=db.get(TriageResult, thread.id),
        first_response_due_at=escalation.first_response_due_at,
        resolution_due_at=resolution_due(escalation, now),
        due_kind=due_kind,
        seconds_left=seconds_left(escalation, now),
    )


def similar_entries(
    search_engine: SearchEngine, db: Session, escalation: Escalation, limit: int = 5
) -> list[dict[str, Any]]:
    """KB entries and solved threads like this thread's title (never the thread itself).
    Meilisearch first, the database when it is down; an empty list if even that fails, so the
    item page always renders."""
    thread = escalation.thread
    brand = thread.forum.brand
    # A title is a sentence, not a query: words such as "my" or "why" that every question has
    # would otherwise be required and keep matching entries out.
    words = [word for word in _WORD.findall(thread.title.lower()) if word not in _STOP_WORDS]
    try:
        hits, _degraded = service_search.suggest(
            db, search_engine, brand, " ".join(words), locale=thread.locale, limit=limit + 1
        )
    except SearchUnavailable:
        return []
    own = f"/t/{thread.id}"
    entries: list[dict[str, Any]] = []
    for hit in hits:
        if hit.url == own:
            continue
        kind = "article" if hit.kind == "article" else "thread"
        entries.append(
            {
                "kind": hit.kind,
                "id": hit.entry_id,
                "title": hit.title,
                "url": hit.url,
                "snippet": hit.snippet,
                "status": hit.status,
                "link": f"{kind}:{hit.entry_id}",
            }
        )
    return entries[:limit]
