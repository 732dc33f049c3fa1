"""Triage: the default classifier measured on the labelled evaluation set (accuracy printed per
field and language), the priority rules (every default rule on real English and Spanish posts,
first match wins, brand rules, validation), author segments, storing and re-triaging threads,
staff corrections (kept, audited, staff only), follow-ups, bulk triage and speed."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.errors import FormErrors, PermissionDenied
from community.core.models import Brand, Forum, Post, Role, Thread, ThreadKind, User
from crowdservice import triage
from crowdservice.models import (
    InteractionType,
    Priority,
    Segment,
    Sentiment,
    ServicePolicy,
    TriageResult,
)
from crowdservice.triage import (
    DEFAULT_RULES,
    Classification,
    RulesClassifier,
    priority_for,
    validate_rules,
)
from moderation.models import Flag, FlagReason, FlagStatus
from tests.conftest import QA, fresh

UserFactory = Callable[..., User]
EVAL_SET = Path(triage.__file__).parent / "data" / "triage_eval.jsonl"
CLASSIFIER = RulesClassifier()


def _eval_rows() -> list[dict[str, Any]]:
    with EVAL_SET.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def classify(title: str, body: str, locale: str = "en", kind: str | None = None) -> Classification:
    return CLASSIFIER.classify(title, body, locale=locale, kind_hint=kind)


# --- the evaluation set ----------------------------------------------------------------------


def test_the_evaluation_set_is_large_varied_and_well_formed() -> None:
    rows = _eval_rows()
    by_locale = Counter(row["locale"] for row in rows)
    assert len(rows) >= 150 and by_locale["en"] >= 90 and by_locale["es"] >= 60
    assert len({row["id"] for row in rows}) == len(rows)
    kinds = {kind.value for kind in ThreadKind}
    for row in rows:
        assert set(row) == {"id", "locale", "title", "body", "kind_hint", "type", "sentiment"}
        assert row["type"] in {kind.value for kind in InteractionType}
        assert row["sentiment"] in {kind.value for kind in Sentiment}
        assert row["kind_hint"] in kinds and row["title"] and row["body"]
    for locale in ("en", "es"):
        types = Counter(row["type"] for row in rows if row["locale"] == locale)
        feelings = Counter(row["sentiment"] for row in rows if row["locale"] == locale)
        # Every type and every sentiment is well represented in both languages.
        assert min(types.values()) >= 10 and len(types) == len(InteractionType)
        assert min(feelings.values()) >= 10 and len(feelings) == len(Sentiment)
    # Askers do not always pick the matching kind (the form's default is "question").
    mismatched = [
        row for row in rows if row["kind_hint"] == "question" and row["type"] != "question"
    ]
    assert len(mismatched) >= 20


def test_accuracy_on_the_evaluation_set() -> None:
    rows = _eval_rows()
    right: dict[str, Counter[str]] = defaultdict(Counter)
    confusion: Counter[tuple[str, str]] = Counter()
    for row in rows:
        found = classify(row["title"], row["body"], row["locale"], row["kind_hint"])
        for group in ("all", row["locale"]):
            right[group]["posts"] += 1
            right[group]["type"] += found.interaction_type.value == row["type"]
            right[group]["sentiment"] += found.sentiment.value == row["sentiment"]
        confusion[(row["type"], found.interaction_type.value)] += 1

    print(f"\nTriage accuracy on {EVAL_SET.name} ({CLASSIFIER.name})")
    print(f"{'set':<6}{'posts':>7}{'type':>8}{'sentiment':>11}")
    for group in ("all", "en", "es"):
        counts = right[group]
        print(
            f"{group:<6}{counts['posts']:>7}{counts['type'] / counts['posts']:>8.3f}"
            f"{counts['sentiment'] / counts['posts']:>11.3f}"
        )
    mistakes = {f"{want}->{got}": n for (want, got), n in sorted(confusion.items()) if want != got}
    print(f"type confusions: {mistakes or 'none'}")

    total = right["all"]
    assert total["type"] / total["posts"] >= 0.8
    assert total["sentiment"] / total["posts"] >= 0.8


def test_classification_explains_itself() -> None:
    found = classify(
        "Charged twice and nobody answers",
        "I was charged twice this month and support keeps me on hold. Unacceptable.",
        kind="question",
    )
    assert found.interaction_type == InteractionType.COMPLAINT
    assert found.sentiment == Sentiment.NEGATIVE and found.sentiment_score <= -0.3
    reasons = found.reasons
    assert "unacceptable" in reasons["cues"]["complaint"]
    assert reasons["language"] == "en" and reasons["lexicon"].startswith("vader-en")
    assert any(word.startswith("unacceptable") for word in reasons["sentiment_words"])
    assert reasons["kind_hint"] == "question"
    json.dumps(reasons)  # stored as JSON


def test_spanish_is_read_without_accents_and_with_negation() -> None:
    broken = classify("El router no funciona", "No funciona nada bien, es un desastre.", "es")
    happy = classify("Funciona perfectamente", "Todo funciona de maravilla, muy contento.", "es")
    assert broken.sentiment == Sentiment.NEGATIVE and broken.sentiment_score < 0
    assert happy.sentiment == Sentiment.POSITIVE and happy.sentiment_score > 0.35
    accented = classify("Caída de la red", "Sin conexión desde las ocho. ¿Hay una avería?", "es")
    plain = classify("Caida de la red", "Sin conexion desde las ocho. Hay una averia?", "es")
    assert accented.interaction_type == plain.interaction_type == InteractionType.PROBLEM
    assert accented.sentiment_score == plain.sentiment_score
    assert accented.reasons["lexicon"] == "vader-es-v1"


def test_the_language_follows_the_text_when_the_locale_is_wrong() -> None:
    found = classify(
        "La app no funciona", "Desde ayer la app se cierra y no puedo entrar a mi cuenta.", "en"
    )
    assert found.reasons["language"] == "es" and found.reasons["language_source"] == "detected"
    assert found.interaction_type == InteractionType.PROBLEM


def test_manners_and_wishes_are_not_feelings() -> None:
    polite = classify("How do I reset the hub?", "Where is the button? Thanks in advance!")
    wish = classify("Dark mode please", "It would be great to have a dark theme in the app.")
    assert polite.sentiment == Sentiment.NEUTRAL
    assert wish.sentiment == Sentiment.NEUTRAL
    assert wish.interaction_type == InteractionType.SUGGESTION


# --- priority rules --------------------------------------------------------------------------

# (rule, segment, locale, kind, title, body): real posts, one per default rule and language.
RULE_EXAMPLES = [
    ("troll-noise", Segment.TROLL, "en", "question",
     "Your whole network is down again lol", "Outage outage outage, pathetic company."),
    ("troll-noise", Segment.TROLL, "es", "question",
     "Otra caída, qué novedad", "Sois unos inútiles, como siempre."),
    ("critical-words", Segment.NEW, "en", "problem",
     "Outage in the whole town", "Internet is down since 7am for everyone on our street."),
    ("critical-words", Segment.CUSTOMER, "es", "problem",
     "Me han hackeado la cuenta", "Alguien ha cambiado mi correo y no puedo entrar."),
    ("influential-negative-complaint", Segment.INFLUENCER, "en", "complaint",
     "Worst customer service in years", "Two hours on hold and they hung up on me. Unacceptable."),
    ("influential-negative-complaint", Segment.ADVOCATE, "es", "complaint",
     "Pésima atención al cliente", "Una hora esperando y me cuelgan. Es una vergüenza."),
    ("negative-problem-or-complaint", Segment.NEW, "en", "problem",
     "App keeps logging me out, so annoying", "So frustrating, I log in every minute."),
    ("negative-problem-or-complaint", Segment.NEW, "es", "problem",
     "La cámara se desconecta, estoy harto", "Se desconecta cada día y ya estoy desesperado."),
    ("problem-or-question", Segment.NEW, "en", "question",
     "How do I change my PIN?", "Where in the app can I change the PIN of my card?"),
    ("problem-or-question", Segment.NEW, "es", "question",
     "¿Cómo cambio el PIN?", "¿Dónde puedo cambiar el PIN de la tarjeta en la app?"),
    ("incorrect-information", Segment.NEW, "en", "discussion",
     "Help article lists the wrong APN", "The help article is outdated: the APN changed."),
    ("incorrect-information", Segment.NEW, "es", "discussion",
     "El artículo del APN está desactualizado", "El artículo indica un APN erróneo."),
    ("suggestion", Segment.NEW, "en", "idea",
     "Please add a weekend schedule", "It would be great if the thermostat had a weekend mode."),
    ("suggestion", Segment.NEW, "es", "idea",
     "Horario de fin de semana", "Sería muy útil poder programar el fin de semana aparte."),
    ("praise", Segment.NEW, "en", "discussion",
     "Huge thanks to the store team", "They were fantastic and so patient. Great service!"),
    ("praise", Segment.NEW, "es", "discussion",
     "Mil gracias al técnico", "Muy amable y rapidísimo. ¡Un servicio de diez!"),
]  # fmt: skip
PRIORITY_OF = {rule["name"]: rule for rule in DEFAULT_RULES}


@pytest.mark.parametrize(
    ("rule", "segment", "locale", "kind", "title", "body"),
    RULE_EXAMPLES,
    ids=[f"{example[0]}-{example[2]}" for example in RULE_EXAMPLES],
)
def test_each_default_rule_fires_on_a_real_post(
    rule: str, segment: Segment, locale: str, kind: str, title: str, body: str
) -> None:
    found = classify(title, body, locale, kind)
    priority, needs, fired = priority_for(found, segment, DEFAULT_RULES, text=f"{title}\n{body}")
    assert fired == rule, (found.interaction_type, found.sentiment, found.reasons["cues"])
    expected = PRIORITY_OF[rule]
    assert needs is not expected.get("no_response", False)
    assert priority == Priority(expected.get("priority", "P4"))


def test_the_fallback_rule_catches_what_no_other_rule_does() -> None:
    calm_complaint = Classification(InteractionType.COMPLAINT, Sentiment.NEUTRAL, 0.0)
    assert priority_for(calm_complaint, Segment.NEW, DEFAULT_RULES) == (
        Priority.P3,
        True,
        "fallback",
    )
    # A brand's rules need not end with a catch-all.
    only_praise = [{"name": "praise", "types": ["praise"], "no_response": True}]
    assert priority_for(calm_complaint, Segment.NEW, only_praise) == (Priority.P3, True, "default")


def test_the_first_matching_rule_wins() -> None:
    outage = classify("Outage everywhere", "The network is down in the whole city.", kind="problem")
    text = "Outage everywhere\nThe network is down in the whole city."
    # A troll shouting "outage" is still noise: troll-noise comes before the critical words.
    assert priority_for(outage, Segment.TROLL, DEFAULT_RULES, text=text)[2] == "troll-noise"
    assert priority_for(outage, Segment.NEW, DEFAULT_RULES, text=text)[2] == "critical-words"
    rules = [
        {"name": "problems-first", "types": ["problem"], "priority": "P4"},
        {"name": "outage-words", "any_words": ["outage"], "priority": "P1"},
    ]
    assert priority_for(outage, Segment.NEW, rules, text=text) == (
        Priority.P4,
        True,
        "problems-first",
    )
    assert priority_for(outage, Segment.NEW, rules[::-1], text=text)[2] == "outage-words"


def test_rule_words_match_phrases_prefixes_and_ignore_accents() -> None:
    found = Classification(InteractionType.PROBLEM, Sentiment.NEUTRAL, -0.1)
    rules = validate_rules(
        [
            {"name": "refunds", "any_words": ["reembols*", "money back"], "priority": "P2"},
            {"name": "outage", "any_words": ["caída"], "priority": "P1"},
            {"name": "calm", "max_score": -0.5, "priority": "P4"},
        ]
    )
    assert priority_for(found, Segment.NEW, rules, text="¿Dónde está mi reembolso?")[2] == "refunds"
    assert priority_for(found, Segment.NEW, rules, text="I want my MONEY back!")[2] == "refunds"
    assert priority_for(found, Segment.NEW, rules, text="Otra CAIDA de red")[2] == "outage"
    # "money" alone is not the phrase, "caídas" is not "caída", -0.1 is above max_score -0.5.
    assert priority_for(found, Segment.NEW, rules, text="money, caidas")[2] == "default"


def test_default_rules_are_valid_json_an_admin_can_edit() -> None:
    stored = json.loads(json.dumps(DEFAULT_RULES))
    assert validate_rules(stored) == stored
    assert validate_rules(json.dumps(DEFAULT_RULES)) == stored
    assert validate_rules([]) == []  # empty: the brand uses the defaults


def _too_long_word() -> list[dict[str, Any]]:
    return [{"name": "long", "any_words": ["x" * 61], "priority": "P1"}]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"name": "x"', "not valid JSON"),
        ({"name": "x", "priority": "P1"}, "must be a JSON list"),
        ([{"name": f"r{n}", "priority": "P3"} for n in range(51)], "at most 50 rules"),
        (["P1"], "Rule 1: each rule must be an object"),
        ([{"name": "x", "priority": "P1", "colour": "red"}], 'unknown key "colour"'),
        ([{"name": "x", "priority": "P0"}], '"priority" must be one of P1'),
        ([{"name": "x", "priority": "P1", "no_response": True}], "either"),
        ([{"name": "x"}], "either"),
        ([{"name": "", "priority": "P1"}], "give it a name"),
        ([{"name": "a", "priority": "P1"}, {"name": "a", "priority": "P2"}], "used twice"),
        ([{"name": "x", "types": ["rant"], "priority": "P1"}], '"types" has "rant"'),
        ([{"name": "x", "segments": "troll", "priority": "P1"}], "non-empty list"),
        ([{"name": "x", "any_words": [], "priority": "P1"}], '"any_words" must be a list'),
        ([{"name": "x", "any_words": ["ok", 3], "priority": "P1"}], "words or phrases"),
        (_too_long_word(), "longer than 60 characters"),
        ([{"name": "x", "max_score": 2, "priority": "P1"}], '"max_score" must be a number'),
        ([{"name": "x", "no_response": "yes"}], "true or false"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message(raw: object, message: str) -> None:
    with pytest.raises(FormErrors) as caught:
        validate_rules(raw)
    assert list(caught.value.errors) == ["rules"]
    assert message in caught.value.errors["rules"]


# --- segments --------------------------------------------------------------------------------


def _thread(qa: QA, author: User, title: str, body: str, **extra: Any) -> Thread:
    return qa.ask(author, title, body, **extra)


def test_segments_follow_the_documented_order(db: Session, qa: QA, make_user: UserFactory) -> None:
    member = make_user("plainmember")
    assert triage.segment_for(db, member)[0] == Segment.NEW
    assert triage.segment_for(db, None)[0] == Segment.NEW

    member.verified_customer = True
    segment, reasons = triage.segment_for(db, member)
    assert segment == Segment.CUSTOMER and reasons["because"] == "verified customer"
    member.trust_level = 2
    assert triage.segment_for(db, member)[0] == Segment.ACTIVE_CONTRIBUTOR
    member.reputation = 2500
    segment, reasons = triage.segment_for(db, member)
    assert segment == Segment.INFLUENCER and reasons["reputation"] == 2500
    db.commit()

    # Three upheld flags make a troll, whatever their reputation.
    post = _thread(qa, member, "My router question here", "Nothing to see in this text.").posts[0]
    flagger = make_user("flagger")
    for _ in range(3):
        db.add(Flag(
            post_id=post.id, flagger_id=flagger.id, reason=FlagReason.OFFENSIVE, weight=1.0,
            status=FlagStatus.UPHELD, resolved_at=utcnow(),
        ))  # fmt: skip
    db.commit()
    segment, reasons = triage.segment_for(db, member)
    assert segment == Segment.TROLL and reasons["upheld_flags"] == 3


def test_detractors_and_advocates(db: Session, qa: QA, make_user: UserFactory) -> None:
    grumpy, helper = make_user("grumpy"), make_user("helper")
    asked = [
        _thread(qa, grumpy, f"Question number {n} about my line", f"Some details, take {n}.")
        for n in range(6)
    ]
    for thread in asked[:3]:
        thread.sentiment = Sentiment.NEGATIVE.value
    db.commit()
    segment, reasons = triage.segment_for(db, grumpy)
    assert segment == Segment.DETRACTOR and reasons["recent_negative"] == 3
    # The thread being triaged is not counted against its own author.
    segment, _reasons = triage.segment_for(db, grumpy, exclude_thread_id=asked[0].id)
    assert segment != Segment.DETRACTOR

    for thread in asked[:5]:
        answer = qa.answer(helper, thread, f"Try the reset in settings ({thread.id}).")
        thread.accepted_post_id = answer.id
    db.commit()
    segment, reasons = triage.segment_for(db, helper)
    assert segment == Segment.ADVOCATE and reasons["accepted_answers"] == 5
    # Accepting answers on your own threads makes nobody an advocate.
    assert triage.segment_for(db, grumpy)[1]["accepted_answers"] == 0


# --- triage_thread ---------------------------------------------------------------------------

COMPLAINT = (
    "Charged twice and nobody helps",
    "You billed me twice in March. I called three times and I'm still waiting for the refund. "
    "This is unacceptable.",
)
PRAISE = (
    "Huge thanks to the store team",
    "Maria was fantastic and so patient with my dad. Great service, thank you!",
)


def test_triage_stores_the_fields_and_why(
    db: Session, qa: QA, make_user: UserFactory, engine: Engine
) -> None:
    author = make_user("angrycustomer")
    thread = _thread(qa, author, *COMPLAINT)
    thread.priority = None
    db.commit()

    result = triage.triage_thread(db, thread)
    assert (thread.interaction_type, thread.sentiment) == ("complaint", "negative")
    assert thread.sentiment_score is not None and thread.sentiment_score < -0.3
    assert thread.author_segment == "new" and author.segment == "new"
    # "charged twice" is one of the critical billing words.
    assert thread.priority == "P1"
    assert result.classifier == "rules-lexicon-v1" and result.thread_id == thread.id
    assert result.reasons["rule"] == "critical-words"
    assert result.reasons["rules_source"] == "default"
    assert result.reasons["needs_response"] is True and triage.needs_response(result)
    assert "unacceptable" in result.reasons["classification"]["cues"]["complaint"]
    assert result.reasons["segment"]["segment"] == "new"

    # Flushed, never committed: another connection does not see it yet.
    with Session(engine) as other:
        assert other.get(Thread, thread.id).priority is None  # type: ignore[union-attr]
    db.commit()
    fresh(db)
    assert db.get(TriageResult, thread.id) is not None


def test_praise_needs_no_response(db: Session, qa: QA, make_user: UserFactory) -> None:
    thread = _thread(qa, make_user(), *PRAISE, kind=ThreadKind.DISCUSSION)
    result = triage.triage_thread(db, thread)
    assert thread.interaction_type == "praise" and thread.sentiment == "positive"
    assert thread.priority == "P4" and result.reasons["needs_response"] is False
    assert not triage.needs_response(result)
    assert triage.needs_response(None)


def test_brand_rules_from_the_service_policy_override_the_defaults(
    db: Session, qa: QA, make_user: UserFactory, forum: Forum
) -> None:
    rules = [{"name": "every-question-is-urgent", "types": ["question"], "priority": "P1"}]
    db.add(ServicePolicy(brand_id=forum.brand_id, targets={}, triage_rules=rules))
    db.commit()
    thread = _thread(qa, make_user(), "How do I change my PIN?", "Where can I change it?")
    result = triage.triage_thread(db, thread)
    assert thread.priority == "P1" and result.reasons["rule"] == "every-question-is-urgent"
    assert result.reasons["rules_source"] == "brand"
    # Rules passed in win over the brand's.
    triage.triage_thread(db, thread, rules=[{"name": "calm", "priority": "P4"}])
    assert thread.priority == "P4"


class ShoutingClassifier:
    """A brand's own classifier: everything is a negative problem."""

    name = "shouting-v1"

    def classify(
        self, title: str, body: str, *, locale: str, kind_hint: str | None
    ) -> Classification:
        return Classification(
            InteractionType.PROBLEM, Sentiment.NEGATIVE, -0.9, {"seen": len(title + body)}
        )


def test_another_classifier_plugs_in(db: Session, qa: QA, make_user: UserFactory) -> None:
    thread = _thread(qa, make_user(), *PRAISE, kind=ThreadKind.DISCUSSION)
    result = triage.triage_thread(db, thread, classifier=ShoutingClassifier())
    assert result.classifier == "shouting-v1" and thread.priority == "P2"
    assert result.reasons["classification"] == {"seen": len(PRAISE[0]) + len(PRAISE[1])}


# --- staff corrections -----------------------------------------------------------------------


def test_a_staff_correction_is_audited_and_kept_when_triaged_again(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = _thread(qa, make_user(), *PRAISE, kind=ThreadKind.DISCUSSION)
    triage.triage_thread(db, thread)
    agent = make_user("agentsmith", role=Role.AGENT)

    result = triage.correct_triage(
        db, agent, thread, interaction_type="complaint", sentiment="negative",
        priority="P2", segment=None, reason="Sarcasm: the author is furious",
    )  # fmt: skip
    db.commit()
    assert (thread.interaction_type, thread.sentiment, thread.priority) == (
        "complaint",
        "negative",
        "P2",
    )
    assert result.corrected_by_id == agent.id and result.corrected_at is not None
    assert result.original is not None
    assert result.original["interaction_type"] == "praise"
    assert result.original["needs_response"] is False
    assert triage.needs_response(result)
    audit = db.scalars(select(AuditLog).where(AuditLog.action == "triage.corrected")).one()
    assert (audit.actor_id, audit.target_type, audit.target_id) == (
        agent.id,
        "thread",
        str(thread.id),
    )
    assert audit.before is not None and audit.before["priority"] == "P4"
    assert audit.after is not None and audit.after["priority"] == "P2"
    assert audit.reason == "Sarcasm: the author is furious"

    # Triage again (an edit, a re-run): the staff's fields stay, the reasons are refreshed.
    again = triage.triage_thread(db, thread)
    db.commit()
    assert (thread.interaction_type, thread.sentiment, thread.priority) == (
        "complaint",
        "negative",
        "P2",
    )
    assert again.reasons["rule"] == "staff correction"
    assert again.reasons["suggested"]["interaction_type"] == "praise"
    assert triage.needs_response(again)

    # A second correction keeps the classifier's original answer; "none": no response needed.
    moderator = make_user("moddy", role=Role.MODERATOR)
    triage.correct_triage(
        db, moderator, thread, interaction_type=None, sentiment=None, priority="none",
        segment="troll", reason=None,
    )  # fmt: skip
    assert result.original["interaction_type"] == "praise"
    assert thread.priority == "P4" and thread.author_segment == "troll"
    assert not triage.needs_response(result)
    assert set(result.reasons["corrected_fields"]) == {
        "interaction_type",
        "sentiment",
        "priority",
        "author_segment",
    }
    # The same correction again changes nothing and writes no second row.
    triage.correct_triage(
        db, moderator, thread, interaction_type=None, sentiment=None, priority="none",
        segment="troll", reason=None,
    )  # fmt: skip
    db.commit()
    assert len(db.scalars(select(AuditLog).where(AuditLog.action == "triage.corrected")).all()) == 2


def test_correcting_the_type_derives_the_priority_again(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = _thread(qa, make_user(), *PRAISE, kind=ThreadKind.DISCUSSION)
    admin = make_user("boss", role=Role.ADMIN)
    result = triage.correct_triage(
        db, admin, thread, interaction_type="problem", sentiment="negative", priority=None,
        segment=None, reason=None,
    )  # fmt: skip
    assert thread.priority == "P2" and triage.needs_response(result)


def test_members_may_not_correct_triage(db: Session, qa: QA, make_user: UserFactory) -> None:
    author = make_user()
    thread = _thread(qa, author, *COMPLAINT)
    for member in (author, make_user()):
        with pytest.raises(PermissionDenied):
            triage.correct_triage(
                db, member, thread, interaction_type="praise", sentiment=None, priority=None,
                segment=None, reason=None,
            )  # fmt: skip
    assert db.scalars(select(AuditLog).where(AuditLog.action == "triage.corrected")).all() == []


def test_corrections_are_validated_field_by_field(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = _thread(qa, make_user(), *COMPLAINT)
    agent = make_user(role=Role.AGENT)
    with pytest.raises(FormErrors) as caught:
        triage.correct_triage(
            db, agent, thread, interaction_type="rant", sentiment="angry", priority="P9",
            segment="vip", reason="x" * 501,
        )  # fmt: skip
    assert set(caught.value.errors) == {
        "interaction_type",
        "sentiment",
        "priority",
        "segment",
        "reason",
    }
    with pytest.raises(FormErrors):
        triage.correct_triage(
            db, agent, thread, interaction_type=None, sentiment=None, priority=None,
            segment=None, reason="nothing to change",
        )  # fmt: skip
    # Case and spaces do not matter.
    triage.correct_triage(
        db, agent, thread, interaction_type=" Problem ", sentiment=None, priority="p3",
        segment=None, reason=None,
    )  # fmt: skip
    assert (thread.interaction_type, thread.priority) == ("problem", "P3")


# --- follow-ups ------------------------------------------------------------------------------


def test_an_angrier_follow_up_raises_the_priority(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    author, other = make_user("asker"), make_user("other")
    thread = _thread(qa, author, "How do I pair the remote?", "Which buttons do I press?")
    triage.triage_thread(db, thread)
    assert (thread.interaction_type, thread.priority) == ("question", "P3")

    helper_post = qa.answer(other, thread, "Hold OK and volume down for five seconds.")
    assert triage.triage_followup(db, thread, helper_post) is None

    angry = qa.answer(
        author, thread, "Still not working after a week. This is ridiculous, I'm furious!!"
    )
    result = triage.triage_followup(db, thread, angry)
    assert result is not None
    # The question turned into a complaint (or a problem) with a negative sentiment: P2.
    assert thread.sentiment == "negative" and thread.priority == "P2"
    assert thread.interaction_type in ("problem", "complaint")
    assert result.reasons["followups"][-1]["post_id"] == angry.id


def test_a_follow_up_never_lowers_a_staff_priority(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    author = make_user("asker2")
    thread = _thread(qa, author, "Router keeps rebooting", "It restarts every hour or so.")
    agent = make_user(role=Role.AGENT)
    triage.correct_triage(
        db, agent, thread, interaction_type=None, sentiment=None, priority="P1", segment=None,
        reason="Business customer",
    )  # fmt: skip
    happy = qa.answer(author, thread, "Thanks, the new firmware fixed it! Great support.")
    result = triage.triage_followup(db, thread, happy)
    assert result is not None and thread.priority == "P1" and triage.needs_response(result)

    # Staff chose "no response needed"; an angry follow-up brings the thread back.
    triage.correct_triage(
        db, agent, thread, interaction_type=None, sentiment=None, priority="none", segment=None,
        reason=None,
    )  # fmt: skip
    angry = qa.answer(author, thread, "It is rebooting AGAIN. Unacceptable, I want a refund!")
    triage.triage_followup(db, thread, angry)
    assert thread.priority in ("P1", "P2") and triage.needs_response(result)


# --- bulk ------------------------------------------------------------------------------------


@contextmanager
def counted_statements(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _reads(statements: list[str]) -> list[str]:
    return [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]


def test_triage_many_handles_a_batch_in_a_few_queries(
    db: Session, qa: QA, make_user: UserFactory, engine: Engine
) -> None:
    authors = [make_user(f"bulk{n}") for n in range(3)]
    posts = [COMPLAINT, PRAISE, ("How do I change my PIN?", "Where can I change it?")]
    made = [
        _thread(qa, authors[n % 3], posts[n % 3][0], f"{posts[n % 3][1]} ({n})") for n in range(6)
    ]
    ids = [thread.id for thread in made]
    for thread in made:
        thread.priority = thread.interaction_type = None
    db.commit()
    db.expunge_all()

    with counted_statements(engine) as statements:
        assert triage.triage_many(db, ids[:3]) == 3
        db.flush()
    few = _reads(statements)
    db.rollback()
    db.expunge_all()
    with counted_statements(engine) as statements:
        assert triage.triage_many(db, ids) == 6
        db.flush()
    # Reads do not grow with the number of threads (writes do: one row each).
    assert len(_reads(statements)) == len(few) <= 10, _reads(statements)
    db.commit()
    fresh(db)
    stored = db.scalars(select(Thread).where(Thread.id.in_(ids)).order_by(Thread.id)).all()
    assert [thread.interaction_type for thread in stored] == [
        "complaint",
        "praise",
        "question",
    ] * 2
    assert all(db.get(TriageResult, thread_id) is not None for thread_id in ids)
    assert triage.triage_many(db, []) == 0


# --- speed -----------------------------------------------------------------------------------


def test_classifying_is_fast() -> None:
    rows = _eval_rows()
    posts = [rows[n % len(rows)] for n in range(1000)]
    classify("warm", "up", "en")
    classify("warm", "up", "es")
    started = time.perf_counter()
    for row in posts:
        classify(row["title"], row["body"], row["locale"], row["kind_hint"])
    elapsed = time.perf_counter() - started
    # 1,000 posts: seconds * 1000 is the microseconds per post.
    print(f"\nclassified 1,000 posts in {elapsed:.3f} s ({elapsed * 1000:.0f} µs per post)")


def test_brand_lookup_uses_the_threads_forum(db: Session, make_user: UserFactory) -> None:
    """Two brands, two policies: each thread gets its own brand's rules, in bulk too."""
    first = Brand(slug="one", name="One")
    second = Brand(slug="two", name="Two")
    db.add_all([first, second])
    db.flush()
    forums = [Forum(brand_id=brand.id, slug="f", name="F") for brand in (first, second)]
    db.add_all(forums)
    db.add(ServicePolicy(brand_id=second.id, targets={}, triage_rules=[
        {"name": "brand-two", "priority": "P1"},
    ]))  # fmt: skip
    author = make_user()
    made = []
    for forum in forums:
        thread = Thread(forum_id=forum.id, author_id=author.id, title="How do I reset it?")
        db.add(thread)
        db.flush()
        db.add(Post(thread_id=thread.id, author_id=author.id, is_question=True,
                    body_source="Where is the button?", body_html=""))  # fmt: skip
        made.append(thread)
    db.flush()
    assert triage.triage_many(db, [thread.id for thread in made]) == 2
    assert [thread.priority for thread in made] == ["P3", "P1"]
    assert db.get(TriageResult, made[1].id).reasons["rule"] == "brand-two"  # type: ignore[union-attr]
