"""The classifier interface and the default one, "rules-lexicon-v1": the interaction type from
cues (`interaction`), the sentiment from the lexicon (`sentiment`), the language from the
locale and the text (`language`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from crowdservice.models import InteractionType, Sentiment
from crowdservice.triage.interaction import TYPE_ORDER, best_type, type_scores
from crowdservice.triage.language import detect_language
from crowdservice.triage.sentiment import NEGATIVE_AT, POSITIVE_AT, sentiment_of, vader
from crowdservice.triage.words import clean_text, padded_words


@dataclass(frozen=True)
class Classification:
    interaction_type: InteractionType
    sentiment: Sentiment
    sentiment_score: float  # compound, -1..1
    reasons: dict[str, Any] = field(default_factory=dict)


class Classifier(Protocol):
    """What a brand plugs in to replace the default: fast, no I/O, deterministic."""

    name: str

    def classify(
        self, title: str, body: str, *, locale: str, kind_hint: str | None
    ) -> Classification: ...


def _settled_sentiment(kind: InteractionType, compound: float) -> tuple[Sentiment, str]:
    """The lexicon's sentiment, unless the type says otherwise: a complaint is negative and
    praise positive."""
    sentiment = sentiment_of(compound)
    if kind == InteractionType.COMPLAINT and sentiment != Sentiment.NEGATIVE:
        return Sentiment.NEGATIVE, "a complaint is negative"
    if kind == InteractionType.PRAISE and sentiment != Sentiment.POSITIVE:
        return Sentiment.POSITIVE, "praise is positive"
    return sentiment, "lexicon"


class RulesClassifier:
    """Keyword rules per type and lexicon sentiment, English and Spanish."""

    name: str = "rules-lexicon-v1"

    def classify(
        self, title: str, body: str, *, locale: str, kind_hint: str | None
    ) -> Classification:
        text = clean_text(f"{title.strip()}\n{body}")
        padded = padded_words(text)
        language, language_source = detect_language(locale, padded.split())
        analyser = vader(language)
        compound, sentiment_words = analyser.score(text)
        scores, matched = type_scores(padded, text, kind_hint, compound)
        best, rule = best_type(scores, kind_hint)
        sentiment, sentiment_rule = _settled_sentiment(best, compound)
        reasons: dict[str, Any] = {
            "language": language,
            "language_source": language_source,
            "kind_hint": kind_hint,
            "type_rule": rule,
            "type_scores": {kind.value: round(scores[kind], 2) for kind in TYPE_ORDER},
            "cues": matched,
            "lexicon": analyser.name,
            "lexicon_score": compound,
            "sentiment_words": sentiment_words,
            "sentiment_rule": sentiment_rule,
            "thresholds": {"positive": POSITIVE_AT, "negative": NEGATIVE_AT},
        }
        return Classification(best, sentiment, compound, reasons)


@cache
def default_classifier() -> RulesClassifier:
    return RulesClassifier()
