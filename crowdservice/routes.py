"""Support actions on a thread page: the author asks for the support team, a moderator
escalates, staff correct the triage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from community.auth import CurrentUser
from community.db import SessionDep
from community.i18n import gettext as _
from community.models import Thread
from community.threads import access_thread
from community.web import flash_redirect
from crowdservice import escalation, service
from crowdservice.models import TriageResult
from crowdservice.triage import NO_RESPONSE

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]


@router.post("/t/{thread_id}/support", name="request_support")
def request_support(
    request: Request, db: SessionDep, user: CurrentUser, thread_id: int
) -> Response:
    thread = access_thread(db, user, thread_id)
    escalation.request_support(db, user, thread)
    db.commit()
    return flash_redirect(
        request, f"/t/{thread.id}", _("A support agent has been notified. We will reply here.")
    )


@router.post("/t/{thread_id}/escalate", name="escalate_thread")
def escalate_thread(
    request: Request, db: SessionDep, user: CurrentUser, thread_id: int, note: FormText = ""
) -> Response:
    thread = access_thread(db, user, thread_id)
    escalation.escalate_by_moderator(db, user, thread, note.strip()[:2000] or None)
    db.commit()
    return flash_redirect(request, f"/t/{thread.id}", _("Escalated to the support team."))


@router.post("/t/{thread_id}/triage", name="correct_triage")
def correct_triage(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    thread_id: int,
    interaction_type: FormText = "",
    sentiment: FormText = "",
    priority: FormText = "",
    segment: FormText = "",
    reason: FormText = "",
) -> Response:
    thread = access_thread(db, user, thread_id)
    # The form sends every field with its current value selected. Only the fields the person
    # changed count as corrected: an untouched priority is then derived again from a corrected
    # type, sentiment or segment instead of being pinned at its old value. (Nothing changed at
    # all: the service refuses, after checking who asks.)
    shown = shown_triage(db, thread)
    service.correct_triage(
        db,
        user,
        thread,
        interaction_type=_changed(interaction_type, shown["interaction_type"]),
        sentiment=_changed(sentiment, shown["sentiment"]),
        priority=_changed(priority, shown["priority"]),
        segment=_changed(segment, shown["segment"]),
        reason=reason.strip()[:300] or None,
    )
    db.commit()
    return flash_redirect(request, f"/t/{thread.id}", _("Triage corrected."))


def shown_triage(db: SessionDep, thread: Thread) -> dict[str, str]:
    """The triage values the correction form shows as selected (the same defaults as the
    panel's summary)."""
    result = db.get(TriageResult, thread.id)
    no_response = result is not None and (result.reasons or {}).get("needs_response") is False
    return {
        "interaction_type": thread.interaction_type or "question",
        "sentiment": thread.sentiment or "neutral",
        "segment": thread.author_segment or "new",
        "priority": NO_RESPONSE if no_response else thread.priority or "P3",
    }


def _changed(submitted: str, shown: str) -> str | None:
    value = submitted.strip()
    return value if value and value != shown else None
