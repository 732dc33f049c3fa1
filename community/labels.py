"""Readable, translated names for stored values (roles, kinds, statuses, visibilities)."""

from __future__ import annotations

from community.i18n import gettext


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional "mark for extraction" name
    """Mark a string for the catalog without translating it yet."""
    return message


LABELS = {
    "member": N_("Member"),
    "moderator": N_("Moderator"),
    "agent": N_("Agent"),
    "admin": N_("Administrator"),
    "question": N_("Question"),
    "problem": N_("Problem"),
    "complaint": N_("Complaint"),
    "idea": N_("Idea"),
    "praise": N_("Praise"),
    "discussion": N_("Discussion"),
    "open": N_("Open"),
    "answered": N_("Answered"),
    "solved": N_("Solved"),
    "escalated": N_("Escalated"),
    "closed": N_("Closed"),
    "locked": N_("Locked"),
    "visible": N_("Visible"),
    "pending": N_("Pending approval"),
    "hidden": N_("Hidden"),
    "deleted": N_("Deleted"),
}


def label(value: str) -> str:
    return gettext(LABELS.get(value, value))
