"""The priority rules as a form: one row per rule (its conditions and the priority it gives),
rows added, removed and reordered without JavaScript (blank rows to fill in, a "remove" box and a
position number on each). What a form sends becomes the same list of rule objects the JSON
import takes, and triage.validate_rules checks both alike."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from community.core.errors import FormErrors
from community.core.i18n import gettext as _
from crowdservice.models import InteractionType, Priority, Segment, Sentiment
from crowdservice.triage.rules import MAX_RULES, validate_rules

BLANK_ROWS = 3
MAX_ROWS = MAX_RULES + BLANK_ROWS
NO_RESPONSE = "none"
TYPES = [item.value for item in InteractionType]
SENTIMENTS = [item.value for item in Sentiment]
SEGMENTS = [item.value for item in Segment]
OUTCOMES = [*(item.value for item in Priority), NO_RESPONSE]
_SEPARATORS = re.compile(r"[\n,]+")


@dataclass
class RuleRow:
    """One row of the form, as shown or as typed (strings, so a typo is shown back as typed)."""

    position: str = ""
    name: str = ""
    description: str = ""
    types: list[str] = field(default_factory=list)
    sentiments: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    words: str = ""
    max_score: str = ""
    outcome: str = "P3"
    remove: bool = False

    @property
    def is_blank(self) -> bool:
        return not (
            self.name.strip()
            or self.description.strip()
            or self.types
            or self.sentiments
            or self.segments
            or self.words.strip()
            or self.max_score.strip()
        )


def rows_for(rules: Sequence[dict[str, Any]], blank: int = BLANK_ROWS) -> list[RuleRow]:
    """The form's rows for stored rules, numbered in order, and `blank` empty rows after them."""
    rows = [
        RuleRow(
            position=str(number),
            name=str(rule.get("name", "")),
            description=str(rule.get("description", "")),
            types=list(rule.get("types", [])),
            sentiments=list(rule.get("sentiments", [])),
            segments=list(rule.get("segments", [])),
            words=", ".join(rule.get("any_words", [])),
            max_score="" if rule.get("max_score") is None else str(rule["max_score"]),
            outcome=NO_RESPONSE if rule.get("no_response") else str(rule.get("priority", "P3")),
        )
        for number, rule in enumerate(rules, start=1)
    ]
    rows += [RuleRow(position=str(len(rules) + extra)) for extra in range(1, blank + 1)]
    return rows


def rows_from_form(count: str, values: Callable[[str], list[str]]) -> list[RuleRow]:
    """The rows a browser sent: `values(name)` gives every value of one form field."""
    try:
        total = int(count)
    except ValueError as exc:
        raise FormErrors({"rules": _("The rules form is incomplete. Reload the page.")}) from exc
    if not 0 <= total <= MAX_ROWS:
        raise FormErrors({"rules": _("The rules form is incomplete. Reload the page.")})

    def one(name: str) -> str:
        found = values(name)
        return found[0].strip() if found else ""

    def chosen(name: str, allowed: list[str]) -> list[str]:
        picked = values(name)
        if any(value not in allowed for value in picked):
            raise FormErrors({"rules": _("Choose among the offered options.")})
        return picked

    return [
        RuleRow(
            position=one(f"rule-{index}-position"),
            name=one(f"rule-{index}-name"),
            description=one(f"rule-{index}-description"),
            types=chosen(f"rule-{index}-types", TYPES),
            sentiments=chosen(f"rule-{index}-sentiments", SENTIMENTS),
            segments=chosen(f"rule-{index}-segments", SEGMENTS),
            words=one(f"rule-{index}-words"),
            max_score=one(f"rule-{index}-max_score"),
            outcome=one(f"rule-{index}-outcome") or "P3",
            remove=bool(one(f"rule-{index}-remove")),
        )
        for index in range(total)
    ]


def _rule(row: RuleRow) -> dict[str, Any]:
    """A row as a rule object, the shape the JSON import takes; validate_rules judges it."""
    rule: dict[str, Any] = {"name": row.name}
    if row.description:
        rule["description"] = row.description
    for key, chosen in (("types", row.types), ("sentiments", row.sentiments),
                        ("segments", row.segments)):  # fmt: skip
        if chosen:
            rule[key] = chosen
    words = [word.strip() for word in _SEPARATORS.split(row.words) if word.strip()]
    if words:
        rule["any_words"] = words
    if row.max_score:
        try:
            rule["max_score"] = float(row.max_score.replace(",", "."))
        except ValueError:
            rule["max_score"] = row.max_score  # refused with validate_rules' own message
    if row.outcome == NO_RESPONSE:
        rule["no_response"] = True
    else:
        rule["priority"] = row.outcome
    return rule


def rules_from_rows(rows: Sequence[RuleRow]) -> list[dict[str, Any]]:
    """Kept rows in the order of their position numbers (ties keep the form's order), blank and
    removed rows left out, then checked by triage.validate_rules. No rules left means "use the
    defaults"."""
    kept: list[tuple[float, int, RuleRow]] = []
    for index, row in enumerate(rows):
        if row.remove or row.is_blank:
            continue
        try:
            position = float(row.position) if row.position else float(len(rows) + index)
        except ValueError:
            position = math.nan
        if not math.isfinite(position):
            message = _('Rule "%(name)s": the position must be a number.') % {"name": row.name}
            raise FormErrors({"rules": message})
        kept.append((position, index, row))
    kept.sort(key=lambda item: (item[0], item[1]))
    return validate_rules([_rule(row) for _position, _index, row in kept])


# --- the whole service-policy form ---------------------------------------------------------------

TARGET_KINDS = ("first_response", "resolution")


@dataclass(frozen=True, slots=True)
class PolicyForm:
    """The service-policy page as sent, before policies.save_policy checks it: targets in
    minutes as typed ("P1_first_response" and so on), business hours only when switched on."""

    targets: dict[str, dict[str, str | None]]
    business_hours: dict[str, object] | None
    rules: list[RuleRow]
    expert_delay_factor: str
    expert_daily_invitations: str


def policy_form(text: Callable[[str], str], values: Callable[[str], list[str]]) -> PolicyForm:
    """`text(name)` gives a field's value stripped ("" when absent), `values(name)` all of a
    field's values. Refused (FormErrors) only when the rule rows cannot be read at all."""
    targets = {
        priority.value: {kind: text(f"{priority.value}_{kind}") or None for kind in TARGET_KINDS}
        for priority in Priority
    }
    hours: dict[str, object] | None = None
    if text("hours_enabled"):
        hours = {
            "timezone": text("timezone"),
            "days": values("days"),  # checked, with the rest, by the policy service
            "start": text("start"),
            "end": text("end"),
        }
    return PolicyForm(
        targets=targets,
        business_hours=hours,
        rules=rows_from_form(text("rule_rows"), values),
        expert_delay_factor=text("expert_delay_factor"),
        expert_daily_invitations=text("expert_daily_invitations"),
    )
