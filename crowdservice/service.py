"""Where the community meets crowd-service: the handlers of the Q&A events when content is
published or an answer accepted (crowdservice.subscribers connects them), and what a thread page
shows about support.

Triage runs when a question becomes public (and again, for the sentiment, when its author posts
more); the thread's service deadlines follow from the priority it gets. Everything here runs in
the caller's transaction: flush, never commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from community.core import policy
from community.core.events import Acceptance
from community.core.models import Post, Thread, ThreadStatus, User, Visibility
from crowdservice import escalation, explain, sla, triage
from crowdservice.models import Escalation, TriageResult

CLOSED_STATES = (ThreadStatus.SOLVED, ThreadStatus.CLOSED, ThreadStatus.LOCKED)


def on_published(db: Session, post: Post) -> None:
    """A question or answer became visible (at creation, or when a moderator approved it)."""
    thread = post.thread
    if post.is_question:
        triage.triage_thread(db, thread)
        sla.set_due_times(db, thread, thread.priority)
        return
    if post.author_id is not None and post.author_id == thread.author_id:
        before = thread.priority
        triage.triage_followup(db, thread, post)
        if thread.priority != before:
            sla.set_due_times(db, thread, thread.priority)
    escalation.on_post_published(db, thread, post)


def on_accepted(db: Session, acceptance: Acceptance) -> None:
    escalation.on_answer_accepted(db, acceptance.thread, acceptance.post)


def correct_triage(
    db: Session,
    actor: User,
    thread: Thread,
    *,
    interaction_type: str | None,
    sentiment: str | None,
    priority: str | None,
    segment: str | None,
    reason: str | None,
) -> TriageResult:
    """A staff correction; a new priority moves the thread's deadlines (from its creation)."""
    before = thread.priority
    result = triage.correct_triage(
        db, actor, thread, interaction_type=interaction_type, sentiment=sentiment,
        priority=priority, segment=segment, reason=reason,
    )  # fmt: skip
    if thread.priority != before:
        sla.set_due_times(db, thread, thread.priority)
    return result


@dataclass(frozen=True)
class SupportPanel:
    """What the thread page shows about support, for one viewer."""

    escalation: Escalation | None
    triage: TriageResult | None
    is_author: bool
    show_triage: bool  # moderators, agents and admins; never members
    is_agent: bool
    can_request_support: bool
    can_escalate: bool
    # Staff who may continue the thread in private with its author (crowdservice.followup).
    can_follow_up_privately: bool = False

    @property
    def triage_facts(self) -> list[explain.Fact]:
        return explain.triage_facts(self.triage.reasons if self.triage else None)

    @property
    def segment_facts(self) -> list[explain.Fact]:
        reasons = self.triage.reasons if self.triage else None
        return explain.segment_facts((reasons or {}).get("segment"))


def thread_panel(db: Session, viewer: User | None, thread: Thread) -> SupportPanel:
    is_author = viewer is not None and viewer.id == thread.author_id
    is_staff = policy.is_staff(viewer, thread.brand_id)
    # Most readers are neither the author nor staff: they see nothing of support, so their
    # page (the hottest one) costs no query here.
    active = escalation.active_escalation(db, thread.id) if (is_author or is_staff) else None
    open_for_help = (
        thread.visibility == Visibility.VISIBLE
        and thread.status not in CLOSED_STATES
        and thread.locked_at is None
        and active is None
    )
    return SupportPanel(
        escalation=active,
        triage=db.get(TriageResult, thread.id) if is_staff else None,
        is_author=is_author,
        show_triage=is_staff,
        is_agent=policy.is_agent(viewer, thread.brand_id),
        can_request_support=is_author and open_for_help,
        can_escalate=policy.can_moderate(viewer, thread.brand_id) and open_for_help,
        can_follow_up_privately=policy.can_follow_up_privately(viewer, thread.brand_id)
        and thread.author_id is not None,
    )
