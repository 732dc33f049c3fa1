"""Triage reasons in words. `TriageResult.reasons` and the segment facts are stored as nested
JSON for the record and the helpdesk; staff read them here as labelled, translated lines instead
of raw dictionaries. Keys this module does not know still come out readable (a label made from
the key, values flattened), so a new reason never shows up as a Python literal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from community.core import readable
from community.core.i18n import gettext as _
from community.core.i18n import ngettext
from community.core.labels import N_, label
from crowdservice.triage.rules import FALLBACK_PRIORITY, FALLBACK_RULE
from crowdservice.triage.segments import INFLUENCER_REPUTATION
from crowdservice.triage.sentiment import NEGATIVE_AT, POSITIVE_AT


@dataclass(frozen=True, slots=True)
class Fact:
    label: str
    value: str


# Names of triage.rules.DEFAULT_RULES (a brand's own rules keep the names the admin gave them).
_RULE_NAMES = {
    "troll-noise": N_("Troll noise"),
    "critical-words": N_("Critical words"),
    "influential-negative-complaint": N_("Angry complaint from an influential member"),
    "negative-problem-or-complaint": N_("Negative problem or complaint"),
    "problem-or-question": N_("Problem or question"),
    "incorrect-information": N_("Incorrect information"),
    "suggestion": N_("Suggestion"),
    "praise": N_("Praise"),
    "fallback": N_("Everything else"),
    FALLBACK_RULE: N_("No rule matched"),
    "staff correction": N_("Corrected by staff"),
}
_RULE_SOURCES = {
    "brand": N_("the brand's rules"),
    "default": N_("the default rules"),
    "default (the brand's rules are invalid)": N_("the default rules (the brand's are invalid)"),
}
# The fixed phrases the classifier stores.
_PHRASES = {
    "highest score": N_("highest score"),
    "no evidence": N_("no evidence: a question"),
    "no evidence: the asker's kind": N_("no evidence: the kind the asker chose"),
    "lexicon": N_("the words' scores"),
    "a complaint is negative": N_("a complaint is negative"),
    "praise is positive": N_("praise is positive"),
    "locale": N_("the thread's language"),
    "detected": N_("detected from the words"),
}

# Reason keys, in the order they are shown; anything else follows, labelled from its key.
_KEYS = {
    "priority": N_("Priority"),
    "rule": N_("Rule that set it"),
    "rules_source": N_("Rules used"),
    "rule_after_correction": N_("Rule after the correction"),
    "corrected_fields": N_("Corrected by staff"),
    "correction_reason": N_("Why it was corrected"),
    "suggested": N_("The classifier would say"),
    "type_rule": N_("Type decided by"),
    "type_scores": N_("Type scores"),
    "cues": N_("Words that point to a type"),
    "kind_hint": N_("Kind the asker chose"),
    "language": N_("Language"),
    "language_source": N_("Language from"),
    "lexicon": N_("Sentiment lexicon"),
    "lexicon_score": N_("Sentiment score"),
    "sentiment_words": N_("Words that carried the sentiment"),
    "sentiment_rule": N_("Sentiment decided by"),
    "thresholds": N_("Sentiment thresholds"),
    "followups": N_("Later posts by the author"),
    "interaction_type": N_("Type"),
    "sentiment": N_("Sentiment"),
    "sentiment_score": N_("Sentiment score"),
    "author_segment": N_("Segment"),
    "segment": N_("Segment"),
    "because": N_("Because"),
    "upheld_flags": N_("Flags upheld against their posts"),
    "recent_negative": N_("Recent negative threads"),
    "recent_positive": N_("Recent positive threads"),
    "recent_triaged": N_("Recent triaged threads"),
    "reputation": N_("Reputation"),
    "accepted_answers": N_("Accepted answers"),
    "visible_answers": N_("Answers"),
    "trust_level": N_("Trust level"),
    "verified_customer": N_("Verified customer"),
    "post_id": N_("Post"),
}
# Shown elsewhere on the pages that use this (or internal): not repeated as a fact.
_SKIPPED = {"needs_response", "classification", "segment"}


def _key_label(key: str) -> str:
    return readable.key_label(key, _KEYS)


def _phrase(value: str, phrases: Mapping[str, str] = _PHRASES) -> str:
    known = phrases.get(value)
    return _(known) if known else value


# Keys whose values are codes with a label (`community.core.labels`), by the label's prefix.
_CODE_LABELS = {
    "interaction_type": "type:",
    "kind_hint": "type:",
    "sentiment": "sentiment:",
    "segment": "segment:",
    "author_segment": "segment:",
    "language": "",
}
# Keys whose values are names with a phrase of their own.
_NAMED = {
    "rule": _RULE_NAMES,
    "rule_after_correction": _RULE_NAMES,
    "rules_source": _RULE_SOURCES,
}


def _value(key: str, value: Any) -> str:
    """One value as text: labels for known codes, numbers in the reader's locale, lists and
    mappings flattened."""
    if value is None or value == "" or value == [] or value == {} or isinstance(value, bool):
        return readable.value_text(value)
    if isinstance(value, int | float):
        return readable.number(value)
    if isinstance(value, str):
        return _text(key, value)
    if isinstance(value, Mapping):
        return _mapping(key, value)
    if isinstance(value, list | tuple):
        return _sequence(key, value)
    return str(value)


def _text(key: str, value: str) -> str:
    if key in _CODE_LABELS:
        return label(_CODE_LABELS[key] + value)
    return _phrase(value, _NAMED.get(key, _PHRASES))


def _mapping(key: str, value: Mapping[Any, Any]) -> str:
    if key == "type_scores":
        ranked = sorted(value.items(), key=lambda item: -float(item[1]))
        return " · ".join(
            f"{label('type:' + kind)} {readable.number(score)}" for kind, score in ranked
        )
    if key == "cues":
        return " · ".join(
            f"{label('type:' + kind)}: {', '.join(map(str, words))}"
            for kind, words in value.items()
        )
    if key == "thresholds":
        return _("positive from %(positive)s, negative up to %(negative)s") % {
            "positive": readable.number(float(value.get("positive", POSITIVE_AT))),
            "negative": readable.number(float(value.get("negative", NEGATIVE_AT))),
        }
    return " · ".join(
        f"{_key_label(str(inner))}: {_value(str(inner), item)}" for inner, item in value.items()
    )


def _sequence(key: str, value: list[Any] | tuple[Any, ...]) -> str:
    if key == "corrected_fields":
        return ", ".join(_key_label(str(item)) for item in value)
    if key == "followups":
        return _followups(value)
    return ", ".join(_value(key, item) for item in value)


def _followups(items: list[Any] | tuple[Any, ...]) -> str:
    latest = next((item for item in reversed(items) if isinstance(item, Mapping)), None)
    count = ngettext("%(num)d post", "%(num)d posts", len(items)) % {"num": len(items)}
    if latest is None:
        return count
    parts = [
        label(f"sentiment:{latest.get('sentiment')}") if latest.get("sentiment") else None,
        _priority(latest.get("priority"), latest.get("needs_response")),
        _phrase(str(latest["rule"]), _RULE_NAMES) if latest.get("rule") else None,
    ]
    return _("%(count)s; the latest: %(what)s") % {
        "count": count,
        "what": ", ".join(part for part in parts if part),
    }


def _priority(priority: Any, needs_response: Any) -> str:
    if needs_response is False:
        return _("no response needed")
    return str(priority or FALLBACK_PRIORITY.value)


def _facts(reasons: Mapping[str, Any], skipped: set[str]) -> list[Fact]:
    ordered = [key for key in _KEYS if key in reasons]
    ordered += [key for key in reasons if key not in _KEYS]
    return [
        Fact(_key_label(key), _value(key, reasons[key])) for key in ordered if key not in skipped
    ]


def triage_facts(reasons: Mapping[str, Any] | None) -> list[Fact]:
    """Why a thread got its priority, type and sentiment: the priority rule first, then what
    the classifier saw. The segment has its own lines (segment_facts)."""
    if not reasons:
        return []
    facts = [Fact(_("Priority"), _priority(reasons.get("priority"), reasons.get("needs_response")))]
    facts += _facts(reasons, _SKIPPED | {"priority"})
    classification = reasons.get("classification")
    if isinstance(classification, Mapping):
        followup = classification.get("followup")
        source = followup if isinstance(followup, Mapping) else classification
        facts += _facts(source, _SKIPPED)
    return facts


def segment_because(facts: Mapping[str, Any]) -> str:
    """The rule of triage.segments.segment_for that placed the author, in the reader's language."""
    segment = facts.get("segment")
    count = int(facts.get("upheld_flags") or 0)
    if segment == "troll":
        return ngettext(
            "%(num)d flag upheld against their posts in the last year",
            "%(num)d flags upheld against their posts in the last year",
            count,
        ) % {"num": count}
    if segment == "detractor":
        return _("%(negative)d of their last %(total)d triaged threads were negative") % {
            "negative": int(facts.get("recent_negative") or 0),
            "total": int(facts.get("recent_triaged") or 0),
        }
    if segment == "influencer":
        return _("reputation %(reputation)s, at least %(threshold)s") % {
            "reputation": readable.number(int(facts.get("reputation") or 0)),
            "threshold": readable.number(INFLUENCER_REPUTATION),
        }
    if segment == "advocate":
        return _("%(num)d accepted answers, mostly positive") % {
            "num": int(facts.get("accepted_answers") or 0)
        }
    if segment == "active_contributor":
        return _("%(answers)d answers, trust level %(level)d") % {
            "answers": int(facts.get("visible_answers") or 0),
            "level": int(facts.get("trust_level") or 0),
        }
    if segment == "customer":
        return _("verified customer")
    if facts.get("because") == "no author account":
        return _("no author account")
    return _("no other rule applies")


def segment_facts(facts: Mapping[str, Any] | None) -> list[Fact]:
    """The author's segment, why, and the figures it was decided on."""
    if not facts:
        return []
    segment = str(facts.get("segment") or "new")
    lines = [
        Fact(_("Segment"), label(f"segment:{segment}")),
        Fact(_("Because"), segment_because(facts)),
    ]
    return lines + _facts(facts, _SKIPPED | {"because", "segment"})
