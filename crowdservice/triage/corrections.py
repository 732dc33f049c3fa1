"""Staff corrections: a moderator, agent or admin sets any of the triage fields. The
classifier's answer is kept (`TriageResult.original`), later triage never overwrites the
correction, and every correction is audited ("triage.corrected")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import FormErrors, PermissionDenied
from community.core.i18n import gettext as _
from community.core.models import Thread, User
from community.core.policy import is_staff
from crowdservice.models import InteractionType, Priority, Segment, Sentiment, TriageResult
from crowdservice.triage.classifier import Classification
from crowdservice.triage.rules import LIST_KEYS, priority_for, rules_for_brand
from crowdservice.triage.service import brand_id, question_body, triage_fields, triage_thread

# The priority staff choose when nobody needs to answer.
NO_RESPONSE = "none"
MAX_REASON_LENGTH = 500


@dataclass(frozen=True, slots=True)
class _Correction:
    """What staff asked to change (None: leave as it is) and why."""

    interaction_type: str | None
    sentiment: str | None
    segment: str | None
    priority: str | None  # P1..P4 or NO_RESPONSE
    reason: str | None

    @property
    def fields(self) -> dict[str, str | None]:
        """By the names of the thread's columns (as the audit and `corrected_fields` say)."""
        return {
            "interaction_type": self.interaction_type,
            "sentiment": self.sentiment,
            "author_segment": self.segment,
            "priority": self.priority,
        }

    @property
    def changes(self) -> bool:
        return any(self.fields.values())

    def beyond(self, shown: dict[str, str]) -> _Correction:
        """Only the values that differ from what staff see now."""
        return _Correction(
            interaction_type=_unless(self.interaction_type, shown["interaction_type"]),
            sentiment=_unless(self.sentiment, shown["sentiment"]),
            segment=_unless(self.segment, shown["segment"]),
            priority=_unless(self.priority, shown["priority"]),
            reason=self.reason,
        )


def _unless(value: str | None, current: str) -> str | None:
    return value if value != current else None


def _choice(
    errors: dict[str, str], field_name: str, value: str | None, allowed: Iterable[str]
) -> str | None:
    if value is None:
        return None
    cleaned = value.strip().lower() if field_name != "priority" else value.strip().upper()
    options = list(allowed)
    if cleaned not in options:
        errors[field_name] = _("Choose one of: %(options)s.") % {"options": ", ".join(options)}
        return None
    return cleaned


def _requested(
    errors: dict[str, str],
    *,
    interaction_type: str | None,
    sentiment: str | None,
    priority: str | None,
    segment: str | None,
    reason: str | None,
) -> _Correction:
    """The form's values checked; what is wrong goes into `errors` (and comes back as None)."""
    new_type = _choice(errors, "interaction_type", interaction_type, LIST_KEYS["types"])
    new_sentiment = _choice(errors, "sentiment", sentiment, LIST_KEYS["sentiments"])
    new_segment = _choice(errors, "segment", segment, LIST_KEYS["segments"])
    if priority is not None and priority.strip().lower() == NO_RESPONSE:
        new_priority: str | None = NO_RESPONSE
    else:
        new_priority = _choice(
            errors, "priority", priority, [*(item.value for item in Priority), NO_RESPONSE]
        )
    cleaned_reason = (reason or "").strip() or None
    if cleaned_reason is not None and len(cleaned_reason) > MAX_REASON_LENGTH:
        errors["reason"] = _("Keep the reason under 500 characters.")
    return _Correction(new_type, new_sentiment, new_segment, new_priority, cleaned_reason)


def shown_fields(thread: Thread, result: TriageResult | None) -> dict[str, str]:
    """The triage values staff see for a thread (with the same defaults as the panel)."""
    no_response = result is not None and (result.reasons or {}).get("needs_response") is False
    return {
        "interaction_type": thread.interaction_type or InteractionType.QUESTION.value,
        "sentiment": thread.sentiment or Sentiment.NEUTRAL.value,
        "segment": thread.author_segment or Segment.NEW.value,
        "priority": NO_RESPONSE if no_response else thread.priority or Priority.P3.value,
    }


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
    """A moderator, agent or admin sets any of the triage fields ("none" as the priority: no
    response needed). The classifier's answer is kept in `original` (first correction only);
    later triage never overwrites the correction. Audited as "triage.corrected"."""
    if not is_staff(actor, thread.brand_id):
        raise PermissionDenied(_("Only moderators, agents and admins can correct triage."))
    errors: dict[str, str] = {}
    asked = _requested(
        errors,
        interaction_type=interaction_type,
        sentiment=sentiment,
        priority=priority,
        segment=segment,
        reason=reason,
    )
    # A value equal to what is shown now is not a correction (a form sends every field): an
    # untouched priority is then derived again from a corrected type, sentiment or segment
    # instead of being pinned at its old value.
    existing = db.get(TriageResult, thread.id)
    correction = asked.beyond(shown_fields(thread, existing))
    if not errors and not correction.changes:
        if asked.changes and existing is not None and existing.corrected_at:
            return existing  # repeating a correction already made changes nothing
        errors["interaction_type"] = _("Change at least one of the triage fields.")
    if errors:
        raise FormErrors(errors)

    result = existing if existing is not None else triage_thread(db, thread)
    before = triage_fields(thread, result)
    if result.original is None:
        result.original = before
    reasons = _corrected(db, thread, dict(result.reasons or {}), correction)
    after = triage_fields(thread, None) | {"needs_response": reasons["needs_response"] is not False}
    if after == before and result.corrected_at is not None:
        return result  # the same correction again: nothing changes, nothing to audit
    result.reasons = reasons
    result.corrected_by_id = actor.id
    result.corrected_at = utcnow()
    record_audit(
        db,
        actor=actor,
        action="triage.corrected",
        target_type="thread",
        target_id=thread.id,
        before=before,
        after=after,
        reason=correction.reason,
    )
    db.flush()
    return result


def _corrected(
    db: Session, thread: Thread, reasons: dict[str, Any], correction: _Correction
) -> dict[str, Any]:
    """Apply the correction to the thread; the result's reasons, updated to say so."""
    if correction.interaction_type:
        thread.interaction_type = correction.interaction_type
    if correction.sentiment:
        thread.sentiment = correction.sentiment
    if correction.segment:
        thread.author_segment = correction.segment
    if correction.priority == NO_RESPONSE:
        thread.priority, reasons["needs_response"] = Priority.P4.value, False
    elif correction.priority:
        thread.priority, reasons["needs_response"] = correction.priority, True
    elif correction.changes:
        _derive_priority(db, thread, reasons)
    reasons["priority"] = thread.priority
    reasons["rule"] = "staff correction"
    changed = {name for name, value in correction.fields.items() if value}
    reasons["corrected_fields"] = sorted(changed | set(reasons.get("corrected_fields", [])))
    if correction.reason:
        reasons["correction_reason"] = correction.reason
    reasons.setdefault("needs_response", True)
    return reasons


def _derive_priority(db: Session, thread: Thread, reasons: dict[str, Any]) -> None:
    """The staff fixed what the priority is derived from: derive it again from the rules."""
    text = f"{thread.title}\n{question_body(db, thread)}"
    corrected = Classification(
        InteractionType(thread.interaction_type or InteractionType.QUESTION),
        Sentiment(thread.sentiment or Sentiment.NEUTRAL),
        thread.sentiment_score or 0.0,
    )
    rules, _source = rules_for_brand(db, brand_id(thread))
    derived, needs, rule = priority_for(
        corrected, Segment(thread.author_segment or Segment.NEW), rules, text=text
    )
    thread.priority, reasons["needs_response"] = derived.value, needs
    reasons["rule_after_correction"] = rule
