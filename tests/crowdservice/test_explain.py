"""Triage reasons in words: every stored shape (a fresh triage, a staff correction, follow-ups,
keys added later) comes out as labelled text, never as a Python literal."""

from __future__ import annotations

import re
from typing import Any

from community.core.i18n import override
from crowdservice.explain import Fact, segment_facts, triage_facts
from crowdservice.triage import RulesClassifier, segment_for
from tests.conftest import QA

LITERAL = re.compile(r"[{}\[\]]|\bTrue\b|\bFalse\b|\bNone\b|'\w+':")


def as_dict(facts: list[Fact]) -> dict[str, str]:
    return {fact.label: fact.value for fact in facts}


def corrected_reasons() -> dict[str, Any]:
    classification = RulesClassifier().classify(
        "Charged twice this month", "The invoice is wrong, fix it now!", locale="en", kind_hint=None
    )
    return {
        "classification": classification.reasons,
        "segment": {"segment": "detractor", "because": "3 of 10", "recent_negative": 3,
                    "recent_triaged": 10, "verified_customer": True},
        "rule": "staff correction",
        "rule_after_correction": "critical-words",
        "rules_source": "brand",
        "priority": "P1",
        "needs_response": True,
        "suggested": {"interaction_type": "complaint", "sentiment": "negative",
                      "priority": "P2", "needs_response": True},
        "corrected_fields": ["priority", "sentiment"],
        "correction_reason": "billing errors are urgent",
        "followups": [{"post_id": 9, "sentiment": "negative", "sentiment_score": -0.6,
                       "priority": "P1", "needs_response": True, "rule": "critical-words"}],
        "added_later": {"nested": [1, 2], "flag": False},
    }  # fmt: skip


def test_a_corrected_triage_reads_as_labelled_text() -> None:
    facts = triage_facts(corrected_reasons())
    shown = as_dict(facts)
    assert facts[0] == Fact("Priority", "P1")
    assert shown["Rule that set it"] == "Corrected by staff"
    assert shown["Rule after the correction"] == "Critical words"
    assert shown["Rules used"] == "the brand's rules"
    assert shown["Corrected by staff"] == "Priority, Sentiment"
    assert shown["Why it was corrected"] == "billing errors are urgent"
    assert shown["The classifier would say"] == (
        "Type: Complaint · Sentiment: Negative · Priority: P2 · Needs response: yes"
    )
    assert shown["Later posts by the author"] == "1 post; the latest: Negative, P1, Critical words"
    assert shown["Added later"] == "Nested: 1, 2 · Flag: no"
    assert "Complaint" in shown["Type scores"]
    assert shown["Sentiment thresholds"] == "positive from 0.35, negative up to -0.3"
    for fact in facts:
        assert not LITERAL.search(fact.value), fact


def test_no_response_and_empty_reasons() -> None:
    assert as_dict(triage_facts({"priority": "P4", "needs_response": False}))["Priority"] == (
        "no response needed"
    )
    assert triage_facts(None) == triage_facts({}) == []
    assert segment_facts(None) == []


def test_segments_say_why_in_the_readers_language(qa: QA, make_user: Any) -> None:
    author = make_user("vera")
    author.verified_customer = True
    qa.db.commit()
    _segment, facts = segment_for(qa.db, author)
    shown = as_dict(segment_facts(facts))
    assert shown["Segment"] == "Verified customer"
    assert shown["Because"] == "verified customer"
    assert shown["Verified customer"] == "yes"
    with override("es"):
        spanish = as_dict(segment_facts(facts))
    assert spanish["Segmento"] == "Cliente verificado"
    assert "Porque" in spanish
    detractor = as_dict(segment_facts(corrected_reasons()["segment"]))
    assert detractor["Because"] == "3 of their last 10 triaged threads were negative"
