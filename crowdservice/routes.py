"""Support actions on a thread page: the author asks for the support team, a moderator
escalates, staff correct the triage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from community.core.auth import CurrentUser
from community.core.db import SessionDep
from community.core.i18n import gettext as _
from community.core.web import flash_redirect
from community.threads import access_thread
from crowdservice import escalation, service

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
    service.correct_triage(
        db,
        user,
        thread,
        interaction_type=interaction_type.strip() or None,
        sentiment=sentiment.strip() or None,
        priority=priority.strip() or None,
        segment=segment.strip() or None,
        reason=reason.strip()[:300] or None,
    )
    db.commit()
    return flash_redirect(request, f"/t/{thread.id}", _("Triage corrected."))
