"""The clocks of an escalation: the due time that matters now (first response, then
resolution) and the pauses while the support team waits on the customer."""

from __future__ import annotations

from datetime import datetime

from crowdservice.escalation import end_pause, resolution_due
from crowdservice.models import BreachKind, Escalation

# The pause and resolution-due arithmetic lives with the escalation's SLA clock, which the
# sweep uses too; the agent workspace takes it from here.
__all__ = ["due_that_matters", "end_pause", "resolution_due", "seconds_left"]


def due_that_matters(escalation: Escalation, now: datetime) -> tuple[BreachKind, datetime]:
    """First response while nobody from support has answered, resolution after that."""
    if escalation.first_response_at is None:
        return BreachKind.FIRST_RESPONSE, escalation.first_response_due_at
    return BreachKind.RESOLUTION, resolution_due(escalation, now)


def seconds_left(escalation: Escalation, now: datetime) -> int:
    """Negative once the target is missed."""
    _kind, due = due_that_matters(escalation, now)
    return int((due - now).total_seconds())
