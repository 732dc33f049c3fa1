"""The clocks of an escalation: the due time that matters now (first response, then
resolution) and the pauses while the support team waits on the customer."""

from __future__ import annotations

from datetime import datetime

from crowdservice import escalation as escalation_service
from crowdservice.models import BreachKind, Escalation


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


def end_pause(escalation: Escalation, now: datetime) -> None:
    if escalation.waiting_since is not None:
        escalation.paused_seconds = paused_seconds(escalation, now)
        escalation.waiting_since = None
