"""Priority rules (`priority_for`): the first rule of `DEFAULT_RULES` (or the brand's own,
`ServicePolicy.triage_rules`, JSON that admins read and edit) whose conditions all hold.
"no_response" rules give P4 with `needs_response` false, which keeps praise and troll noise out
of the agents' queues."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from community.core.errors import FormErrors
from community.core.i18n import gettext as _
from crowdservice.models import InteractionType, Priority, Segment, Sentiment, ServicePolicy
from crowdservice.triage.classifier import Classification
from crowdservice.triage.words import needle, padded_words, read_table

MAX_RULES = 50
MAX_WORDS_PER_RULE = 200
MAX_WORD_LENGTH = 60
MAX_NAME_LENGTH = 60

# Outages, security, fraud and billing errors, English and Spanish (`cues/priority.toml`).
CRITICAL_WORDS: list[str] = read_table("priority")["critical_words"]

# The documented defaults, first match wins. Troll noise comes first so that shouting
# "outage" does not buy a troll a P1; the critical words only count in problems, complaints
# and questions ("make the outage map public" is an idea, "thanks for the outage fix" praise).
DEFAULT_RULES: list[dict[str, Any]] = [
    {
        "name": "troll-noise",
        "segments": [Segment.TROLL.value],
        "no_response": True,
    },
    {
        "name": "critical-words",
        "any_words": CRITICAL_WORDS,
        "types": ["problem", "complaint", "question"],
        "priority": "P1",
    },
    {
        "name": "influential-negative-complaint",
        "types": ["complaint"],
        "sentiments": ["negative"],
        "segments": [Segment.INFLUENCER.value, Segment.ADVOCATE.value],
        "priority": "P1",
    },
    {
        "name": "negative-problem-or-complaint",
        "types": ["problem", "complaint"],
        "sentiments": ["negative"],
        "priority": "P2",
    },
    {"name": "problem-or-question", "types": ["problem", "question"], "priority": "P3"},
    {"name": "incorrect-information", "types": ["incorrect_info"], "priority": "P3"},
    {"name": "suggestion", "types": ["suggestion"], "priority": "P4"},
    {"name": "praise", "types": ["praise"], "no_response": True},
    {"name": "fallback", "priority": "P3"},
]
# When no rule matches (a brand's rules need not end with a catch-all).
FALLBACK_RULE = "default"
FALLBACK_PRIORITY = Priority.P3

LIST_KEYS = {
    "types": frozenset(item.value for item in InteractionType),
    "sentiments": frozenset(item.value for item in Sentiment),
    "segments": frozenset(item.value for item in Segment),
}
_RULE_KEYS = frozenset(
    {"name", "description", "any_words", "max_score", "priority", "no_response", *LIST_KEYS}
)


def validate_rules(raw: object) -> list[dict[str, Any]]:
    """Rules as an admin typed them (a JSON string or already parsed) -> clean rules, or
    FormErrors({"rules": ...}) saying what is wrong and where. An empty list means "use the
    defaults"."""
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            message = _("This is not valid JSON: %(error)s") % {"error": exc}
            raise FormErrors({"rules": message}) from exc
    if not isinstance(raw, list):
        raise FormErrors({"rules": _("The rules must be a JSON list of objects.")})
    if len(raw) > MAX_RULES:
        raise FormErrors({"rules": _("Use at most %(max)d rules.") % {"max": MAX_RULES}})
    cleaned: list[dict[str, Any]] = []
    names: set[str] = set()
    for number, rule in enumerate(raw, start=1):
        problem = _rule_problem(rule, names)
        if problem is not None:
            raise FormErrors({"rules": _("Rule %(number)d: %(problem)s") % {
                "number": number, "problem": problem,
            }})  # fmt: skip
        assert isinstance(rule, dict)
        cleaned.append(_clean_rule(rule))
        names.add(cleaned[-1]["name"])
    return cleaned


def _rule_problem(rule: object, names: set[str]) -> str | None:
    """What is wrong with one rule, or None."""
    if not isinstance(rule, dict):
        return _("each rule must be an object with a name.")
    return (
        _keys_problem(rule)
        or _text_problem(rule, names)
        or _outcome_problem(rule)
        or _lists_problem(rule)
        or _words_problem(rule.get("any_words"))
        or _max_score_problem(rule.get("max_score"))
    )


def _keys_problem(rule: dict[Any, Any]) -> str | None:
    unknown = sorted(str(key) for key in rule if key not in _RULE_KEYS)
    if unknown:
        return _("unknown key %(keys)s (allowed: %(allowed)s).") % {
            "keys": ", ".join(f'"{key}"' for key in unknown),
            "allowed": ", ".join(sorted(_RULE_KEYS)),
        }
    return None


def _text_problem(rule: dict[Any, Any], names: set[str]) -> str | None:
    name = rule.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_LENGTH:
        return _("give it a name of 1 to %(max)d characters.") % {"max": MAX_NAME_LENGTH}
    if name.strip() in names:
        return _('the name "%(name)s" is used twice.') % {"name": name.strip()}
    if not isinstance(rule.get("description", ""), str):
        return _('"description" must be text.')
    return None


def _outcome_problem(rule: dict[Any, Any]) -> str | None:
    has_priority = "priority" in rule
    no_response = rule.get("no_response")
    if no_response is not None and not isinstance(no_response, bool):
        return _('"no_response" must be true or false.')
    if has_priority == bool(no_response):
        return _('give either "priority" (P1 to P4) or "no_response": true.')
    if has_priority and rule["priority"] not in {item.value for item in Priority}:
        return _('"priority" must be one of P1, P2, P3, P4.')
    return None


def _lists_problem(rule: dict[Any, Any]) -> str | None:
    for key, allowed in LIST_KEYS.items():
        values = rule.get(key)
        if values is None:
            continue
        if not isinstance(values, list) or not values:
            return _('"%(key)s" must be a non-empty list.') % {"key": key}
        wrong = [value for value in values if value not in allowed]
        if wrong:
            return _('"%(key)s" has %(wrong)s; use %(allowed)s.') % {
                "key": key,
                "wrong": ", ".join(json.dumps(value) for value in wrong),
                "allowed": ", ".join(sorted(allowed)),
            }
    return None


def _words_problem(words: object) -> str | None:
    if words is None:
        return None
    if not isinstance(words, list) or not words or len(words) > MAX_WORDS_PER_RULE:
        return _('"any_words" must be a list of 1 to %(max)d words or phrases.') % {
            "max": MAX_WORDS_PER_RULE
        }
    for word in words:
        if not isinstance(word, str) or not padded_words(word.rstrip("*")).strip():
            return _('"any_words" may only hold words or phrases.')
        if len(word) > MAX_WORD_LENGTH:
            return _('"%(word)s..." is longer than %(max)d characters.') % {
                "word": word[:20],
                "max": MAX_WORD_LENGTH,
            }
    return None


def _max_score_problem(max_score: object) -> str | None:
    if max_score is not None and (
        isinstance(max_score, bool)
        or not isinstance(max_score, int | float)
        or not -1 <= max_score <= 1
    ):
        return _('"max_score" must be a number from -1 to 1.')
    return None


def _clean_rule(rule: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {"name": rule["name"].strip()}
    if rule.get("description"):
        cleaned["description"] = rule["description"].strip()
    if rule.get("any_words"):
        cleaned["any_words"] = [" ".join(word.split()) for word in rule["any_words"]]
    for key in LIST_KEYS:
        if rule.get(key):
            cleaned[key] = list(dict.fromkeys(rule[key]))
    if rule.get("max_score") is not None:
        cleaned["max_score"] = float(rule["max_score"])
    if rule.get("no_response"):
        cleaned["no_response"] = True
    else:
        cleaned["priority"] = rule["priority"]
    return cleaned


@lru_cache(maxsize=512)
def _needles(words: tuple[str, ...]) -> tuple[str, ...]:
    """ " word " for exact words and phrases, " stem" for "stem*" (a word prefix)."""
    return tuple(found for found in map(needle, words) if found.strip())


def _rule_matches(
    rule: dict[str, Any],
    classification: Classification,
    segment: Segment,
    padded: str,
) -> bool:
    if "types" in rule and classification.interaction_type.value not in rule["types"]:
        return False
    if "sentiments" in rule and classification.sentiment.value not in rule["sentiments"]:
        return False
    if "segments" in rule and segment.value not in rule["segments"]:
        return False
    max_score = rule.get("max_score")
    if max_score is not None and classification.sentiment_score > float(max_score):
        return False
    words = rule.get("any_words")
    if words:
        return any(word in padded for word in _needles(tuple(words)))
    return True


def priority_for(
    classification: Classification,
    segment: Segment,
    rules: Sequence[dict[str, Any]],
    *,
    text: str = "",
) -> tuple[Priority, bool, str]:
    """(priority, needs_response, name of the rule that fired): the first rule whose
    conditions all hold. `text` is what `any_words` is looked for in (title and body)."""
    padded = padded_words(text)
    for rule in rules:
        if _rule_matches(rule, classification, segment, padded):
            if rule.get("no_response"):
                return Priority.P4, False, str(rule["name"])
            return Priority(rule["priority"]), True, str(rule["name"])
    return FALLBACK_PRIORITY, True, FALLBACK_RULE


def urgency(priority: str | None, needs: bool) -> int:
    """Higher is more urgent: P1 4 ... P4 1, no response needed 0."""
    if not needs:
        return 0
    return {"P1": 4, "P2": 3, "P3": 2, "P4": 1}.get(priority or "", 2)


def rules_for_brand(db: Session, brand_id: int) -> tuple[list[dict[str, Any]], str]:
    policy = db.get(ServicePolicy, brand_id)
    if policy is not None and policy.triage_rules:
        try:
            return validate_rules(policy.triage_rules), "brand"
        except FormErrors:
            # Stored rules are validated when saved; a row edited by hand must not stop
            # threads from being published.
            return DEFAULT_RULES, "default (the brand's rules are invalid)"
    return DEFAULT_RULES, "default"
