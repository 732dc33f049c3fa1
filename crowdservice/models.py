"""Crowd-service tables: per-brand service policy (SLA targets, business hours, triage rules),
triage results and corrections, escalations and their SLA breaches, expert invitations, and
helpdesk webhooks with their delivery log.

Deadlines are stored (never recomputed from sleeping): a thread's first-response and resolution
due times are set when it is triaged or re-prioritised, an escalation copies them, and sweeps
compare them with the clock.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from community.core.clock import utcnow
from community.core.db import Base, BigIntId, JSONDocument, UTCDateTime, str_enum
from community.core.models import Brand, Thread, User


class Priority(enum.StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class InteractionType(enum.StrEnum):
    QUESTION = "question"
    PROBLEM = "problem"
    COMPLAINT = "complaint"
    SUGGESTION = "suggestion"
    PRAISE = "praise"
    INCORRECT_INFO = "incorrect_info"


class Sentiment(enum.StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Segment(enum.StrEnum):
    NEW = "new"
    CUSTOMER = "customer"
    ACTIVE_CONTRIBUTOR = "active_contributor"
    ADVOCATE = "advocate"
    INFLUENCER = "influencer"
    DETRACTOR = "detractor"
    TROLL = "troll"


class EscalationReason(enum.StrEnum):
    NO_RESPONSE = "no_response"  # no peer or agent answer before the first-response due time
    CRITICAL = "critical"  # P1: at once
    AUTHOR_REQUEST = "author_request"  # "I need help from the support team"
    MODERATOR = "moderator"


class EscalationStatus(enum.StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    ANSWERED = "answered"
    WAITING = "waiting"  # on the customer: the resolution clock pauses
    HANDED_OFF = "handed_off"
    RESOLVED = "resolved"
    RETURNED = "returned"  # given back to the community


class Resolution(enum.StrEnum):
    AGENT = "agent"
    COMMUNITY = "community"  # the asker accepted a peer answer before an agent claimed it
    HELPDESK = "helpdesk"
    RETURNED = "returned"


class BreachKind(enum.StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # gave up after the retry window


# Escalations still being worked on: one per thread at most.
ACTIVE_ESCALATION = ("open", "claimed", "answered", "waiting", "handed_off")


class ServicePolicy(Base):
    """A brand's service rules. Missing values fall back to the documented defaults
    (crowdservice.sla.DEFAULT_TARGETS, crowdservice.triage.DEFAULT_RULES)."""

    __tablename__ = "service_policies"

    brand_id: Mapped[int] = mapped_column(
        ForeignKey("brands.id", ondelete="CASCADE"), primary_key=True
    )
    # {"P1": {"first_response": 10, "resolution": 240}, ...} in minutes.
    targets: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    # None: around the clock. Else {"timezone": "Europe/Madrid", "days": [0, 1, 2, 3, 4],
    # "start": "09:00", "end": "18:00"} (days: Monday is 0).
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    # Ordered priority rules the brand can read and edit (first match wins).
    triage_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument, default=list)
    # Expert routing: invite experts after this fraction of the first-response target.
    expert_delay_factor: Mapped[float] = mapped_column(Float, default=0.5)
    expert_daily_invitations: Mapped[int] = mapped_column(Integer, default=3)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    brand: Mapped[Brand] = relationship()


class TriageResult(Base):
    """Why a thread got its triage fields (the fields themselves live on the thread), and the
    classifier's own answer when staff corrected it."""

    __tablename__ = "triage_results"

    thread_id: Mapped[int] = mapped_column(
        ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True
    )
    classifier: Mapped[str] = mapped_column(String(40))
    reasons: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    # The classifier's fields before a correction, so corrections can be measured.
    original: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    corrected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    corrected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    triaged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Escalation(Base):
    __tablename__ = "escalations"
    __table_args__ = (
        # One active escalation per thread, whatever races the sweep and a button press.
        Index(
            "uq_escalations_active_thread",
            "thread_id",
            unique=True,
            postgresql_where=text(f"status IN {ACTIVE_ESCALATION}"),
            sqlite_where=text(f"status IN {ACTIVE_ESCALATION}"),
        ),
        Index("ix_escalations_queue", "brand_id", "status", "first_response_due_at"),
        # The agent queue's order (crowdservice/agent/queue_listing.py): a page of a brand's
        # active escalations is read in this order, without sorting every one of them.
        Index(
            "ix_escalations_queue_due",
            "brand_id",
            "queue_due_at",
            "priority",
            "id",
            postgresql_where=text(f"status IN {ACTIVE_ESCALATION}"),
            sqlite_where=text(f"status IN {ACTIVE_ESCALATION}"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    reason: Mapped[EscalationReason] = mapped_column(str_enum(EscalationReason))
    priority: Mapped[Priority] = mapped_column(str_enum(Priority))
    status: Mapped[EscalationStatus] = mapped_column(
        str_enum(EscalationStatus), default=EscalationStatus.OPEN
    )
    assigned_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    escalated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    first_response_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolution_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The due time that matters (first response until support answered, then resolution with
    # the pauses that ended), so the queue can be read in its order from an index. A pause
    # still running is left out: it moves the due time on with the clock (agent/clocks.py).
    # Kept by the insert default and the update hook below, whatever sets the columns it
    # derives from.
    queue_due_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=lambda context: _queue_due_at_default(context)
    )
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Waiting on the customer pauses the resolution clock: the due time moves on by the pause.
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[Resolution | None] = mapped_column(str_enum(Resolution))
    ticket_ref: Mapped[str | None] = mapped_column(String(120))
    ticket_status: Mapped[str | None] = mapped_column(String(60))
    ticket_url: Mapped[str | None] = mapped_column(String(500))
    # The `webhook-timestamp` of the call-back these ticket fields come from: a call-back sent
    # earlier (a late retry, a replay) does not overwrite them.
    ticket_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    thread: Mapped[Thread] = relationship()
    assigned_agent: Mapped[User | None] = relationship(foreign_keys=[assigned_agent_id])

    @property
    def is_closed(self) -> bool:
        """Resolved or returned: nobody acts on it any more (community.core.policy asks)."""
        return self.status in (EscalationStatus.RESOLVED, EscalationStatus.RETURNED)


def queue_due(
    first_response_at: datetime | None,
    first_response_due_at: datetime,
    resolution_due_at: datetime,
    paused_seconds: int | None,
) -> datetime:
    """Escalation.queue_due_at from the columns it derives from."""
    if first_response_at is None:
        return first_response_due_at
    return resolution_due_at + timedelta(seconds=paused_seconds or 0)


def _queue_due_at_default(context: DefaultExecutionContext) -> datetime:
    # Inserts through the ORM and bulk inserts alike (a mapper hook would miss the latter).
    row: dict[str, Any] = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return queue_due(
        row.get("first_response_at"),
        row["first_response_due_at"],
        row["resolution_due_at"],
        row.get("paused_seconds"),
    )


@event.listens_for(Escalation, "before_update")
def _keep_queue_due_at(_mapper: Mapper[Any], _connection: Connection, target: Escalation) -> None:
    # Every ORM update recomputes it, so code (and tests) may set the clock columns directly.
    # A Core UPDATE of those columns must set it too (none does: claim() changes the holder).
    target.queue_due_at = queue_due(
        target.first_response_at,
        target.first_response_due_at,
        target.resolution_due_at,
        target.paused_seconds,
    )


class SLABreach(Base):
    """A target missed: recorded when the due time passes, `seconds_over` updated when the
    response or resolution finally comes."""

    __tablename__ = "sla_breaches"
    __table_args__ = (
        Index("uq_sla_breaches_kind", "escalation_id", "kind", unique=True),
        # The targets missed and not met yet (/metrics counts them at every scrape): a few among
        # every breach ever recorded.
        Index(
            "ix_sla_breaches_open",
            "kind",
            "priority",
            postgresql_where=text("met_at IS NULL"),
            sqlite_where=text("met_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"))
    kind: Mapped[BreachKind] = mapped_column(str_enum(BreachKind))
    priority: Mapped[Priority] = mapped_column(str_enum(Priority))
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seconds_over: Mapped[int] = mapped_column(Integer, default=0)


class ExpertInvitation(Base):
    __tablename__ = "expert_invitations"
    __table_args__ = (
        Index("uq_expert_invitations", "thread_id", "user_id", unique=True),
        Index("ix_expert_invitations_user_day", "user_id", "invited_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the expert answers; in time if before the thread's first-response due time.
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_in_time: Mapped[bool | None] = mapped_column(Boolean)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    # Standard Webhooks secret ("whsec_" + base64). Shown to the admin once, never to browsers
    # after that; the helpdesk signs its call-backs with it too.
    secret: Mapped[str] = mapped_column(String(100))
    events: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Private and loopback addresses are refused unless an admin allows them (for testing).
    allow_private: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    brand: Mapped[Brand] = relationship()


class WebhookDelivery(Base):
    """One event for one webhook: retried with back-off until it succeeds or 24 hours pass."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    escalation_id: Mapped[int | None] = mapped_column(
        ForeignKey("escalations.id", ondelete="SET NULL"), index=True
    )
    event: Mapped[str] = mapped_column(String(60))
    # The `webhook-id` header: the same for every attempt, so receivers can drop repeats.
    message_id: Mapped[str] = mapped_column(String(60), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(60))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    webhook: Mapped[Webhook] = relationship()


class WebhookAttempt(Base):
    """The delivery log: every attempt with its response code (or error) and duration."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class HelpdeskCallback(Base):
    """A signed call-back the helpdesk sent, kept while its signature could still be accepted
    (five minutes either side of its timestamp), so a repeat of it (the same `webhook-id`) is
    answered but not applied again."""

    __tablename__ = "helpdesk_callbacks"
    __table_args__ = (UniqueConstraint("webhook_id", "message_key"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    # SHA-256 of the `webhook-id` header, whose length is the helpdesk's choice.
    message_key: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # `webhook-timestamp`
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
