"""Reading the service-policy form: targets per priority as typed, business hours only when
switched on, the rule rows, and the expert fields (checking them is policies.save_policy's)."""

from __future__ import annotations

import pytest

from community.core.errors import FormErrors
from crowdservice.models import Priority
from crowdservice.rules_form import PolicyForm, RuleRow, policy_form

SENT: dict[str, list[str]] = {
    "P1_first_response": [" 5 "],
    "P1_resolution": ["120"],
    "P2_first_response": [""],
    "hours_enabled": ["1"],
    "timezone": ["Europe/Madrid"],
    "days": ["0", "1", "4"],
    "start": ["08:30"],
    "end": ["17:00"],
    "expert_delay_factor": ["0.25"],
    "expert_daily_invitations": ["2"],
    "rule_rows": ["1"],
    "rule-0-position": ["1"],
    "rule-0-name": ["Outage"],
    "rule-0-words": ["down, outage"],
    "rule-0-outcome": ["P1"],
}


def _read(sent: dict[str, list[str]]) -> PolicyForm:
    def text(name: str) -> str:
        found = sent.get(name)
        return found[-1].strip() if found else ""

    def values(name: str) -> list[str]:
        return sent.get(name, [])

    return policy_form(text, values)


def test_the_form_as_sent() -> None:
    form = _read(SENT)
    assert form.targets["P1"] == {"first_response": "5", "resolution": "120"}
    assert form.targets["P2"] == {"first_response": None, "resolution": None}
    assert set(form.targets) == {priority.value for priority in Priority}
    assert form.business_hours == {
        "timezone": "Europe/Madrid",
        "days": ["0", "1", "4"],
        "start": "08:30",
        "end": "17:00",
    }
    assert (form.expert_delay_factor, form.expert_daily_invitations) == ("0.25", "2")
    (row,) = form.rules
    assert isinstance(row, RuleRow)
    assert (row.name, row.words, row.outcome) == ("Outage", "down, outage", "P1")


def test_business_hours_only_when_switched_on() -> None:
    assert _read({**SENT, "hours_enabled": [""]}).business_hours is None
    assert (
        _read({key: value for key, value in SENT.items() if key != "hours_enabled"}).business_hours
        is None
    )


def test_unreadable_rule_rows_are_refused() -> None:
    for count in ("", "x", "-1", "999"):
        with pytest.raises(FormErrors) as refused:
            _read({**SENT, "rule_rows": [count]})
        assert set(refused.value.errors) == {"rules"}
