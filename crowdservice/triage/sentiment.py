"""How the author feels: VADER (Hutto & Gilbert 2014) with support-domain additions for English
and our own lexicon for Spanish, after manners, product names and wishes are taken out (see
the package docstring). The word lists are in `cues/sentiment.toml`, the lexicons in
`lexicons/`."""

from __future__ import annotations

import math
import re
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
    SentimentIntensityAnalyzer,
)

from crowdservice.models import Sentiment
from crowdservice.triage.words import fold, read_table

LEXICON_DIR = files(__package__ or "crowdservice.triage") / "lexicons"

# Sentiment thresholds on VADER's compound score (-1..1). VADER's own +-0.05 suits tweets; a
# support post carries mild words ("issue", "please") that must not tip it.
POSITIVE_AT = 0.35
NEGATIVE_AT = -0.3

_TABLE = read_table("sentiment")
ES_NEGATORS: dict[str, str] = _TABLE["spanish_negators"]
ES_BOOSTERS: dict[str, str] = _TABLE["spanish_boosters"]
IDIOMS_EN: dict[str, float] = _TABLE["idioms"]["en"]
IDIOMS_ES: dict[str, float] = _TABLE["idioms"]["es"]
_EMOJI_WORDS = frozenset(_TABLE["emoji_words"])

# Manners, not feelings: removed before the sentiment is read.
POLITENESS_EN = [
    re.compile(
        r"\b(many thanks|thanks|thank you|thx|tia)( so much)? (in advance|for any (help|advice|"
        r"ideas|tips|suggestions|replies|answers)|for reading|for looking)\b",
        re.IGNORECASE,
    ),
    re.compile(
        r"\bany (help|advice|ideas|suggestions|pointers|tips)( at all)? (would be|is|are|"
        r"will be)( much| greatly| really| very)? (appreciated|welcome)\b",
        re.IGNORECASE,
    ),
    re.compile(r"\b(i('d| would) )?appreciate any (help|advice|tips|ideas)\b", re.IGNORECASE),
    re.compile(r"\bplease (help|advise)\b", re.IGNORECASE),
    re.compile(r"\b(sorry|apologies) for (the|any) (confusion|inconvenience)\b", re.IGNORECASE),
]
POLITENESS_ES = [
    re.compile(
        r"\b(muchas |mil )?gracias (de antemano|por adelantado|por anticipado|"
        r"por cualquier ayuda|por leer(me)?)\b",
        re.IGNORECASE,
    ),
    re.compile(
        r"\bagradeceria (cualquier |mucho |vuestra |su |tu )?(ayuda|respuesta|consejo)\b",
        re.IGNORECASE,
    ),
    re.compile(r"\bcualquier ayuda (es|sera) bienvenida\b", re.IGNORECASE),
    re.compile(r"\b(perdon|disculpad|disculpen|siento) (por )?la confusion\b", re.IGNORECASE),
]
# A lone "Thanks!" closing a question is a sign-off.
_SIGN_OFF = re.compile(
    r"(^|[.!?\n])\s*(many thanks|thanks|thank you|thx|cheers|muchas gracias|gracias|"
    r"un saludo|saludos)\s*[.!]*\s*$",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_SPANISH_PUNCTUATION = str.maketrans({"¿": " ", "¡": " "})
# "looks like", "would like to": the verb, not the feeling.
_EN_LIKE = re.compile(
    r"\b(looks?|seems?|sounds?|feels?|would|'d|something|just|more|anything|exactly)\s+like\b",
    re.IGNORECASE,
)
# Product and status names that carry no feeling ("smart plug", "quick start", "in progress",
# "guia rapida", "mapa de averias"): removed before the sentiment is read.
_NEUTRAL_TERMS_EN = re.compile(
    r"\b(smart ?(home|plugs?|bulbs?|speakers?|phones?|tv|watch|hub|thermostat|lock)|"
    r"quick ?(start|settings|guide)|fast charg\w*|in progress|best (way|option|settings?|"
    r"practice|channel|plan|choice|approach)|(do|would|can|could) you recommend|outage map|"
    r"status page|free of charge|customer care|customer support|support team|third[ -]party|"
    r"play store|google play|app store|loyalty (programme|program|scheme|points|discount|card)|"
    r"rewards? (programme|program|scheme|points))\b",
    re.IGNORECASE,
)
_NEUTRAL_TERMS_ES = re.compile(
    r"\b(guia rapida|inicio rapido|carga rapida|mapa de averias|en curso|atencion al cliente|"
    r"servicio tecnico|que me recomendais|me recomendais|la mejor (forma|manera|opcion))\b",
    re.IGNORECASE,
)
# A wish in the conditional ("it would be great if...", "seria genial que...") describes an
# imagined product, not how the author feels: that clause is left out of the sentiment
# (except a recommendation, which is a verdict).
_CONDITIONAL_EN = re.compile(
    r"\b(would|could|it'd|itd|i'd|id love)\b(?![^.!?;\n]*\brecommend)[^.!?;\n]*",
    re.IGNORECASE,
)
_CONDITIONAL_ES = re.compile(
    r"\b(seria|serian|estaria|estarian|vendria|ahorraria|me gustaria|nos gustaria|"
    r"me encantaria|ojala|podriais|podrian|se pudiera)\b[^.!?;\n]*",
    re.IGNORECASE,
)
_SPANISH_MODIFIER = re.compile(
    r"\b(" + "|".join(sorted({**ES_NEGATORS, **ES_BOOSTERS}, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def load_lexicon(path: Traversable) -> dict[str, float]:
    """A VADER-format lexicon: word, mean valence, standard deviation, raw ratings (tabs)."""
    lexicon: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        word, measure = line.split("\t")[:2]
        lexicon[word.strip()] = float(measure)
    return lexicon


class Vader:
    """One VADER analyser (English, or Spanish with our lexicon), typed at the edge."""

    def __init__(self, language: str) -> None:
        self.language = language
        analyzer: Any = SentimentIntensityAnalyzer()
        if language == "es":
            english: dict[str, float] = analyzer.lexicon
            lexicon = load_lexicon(LEXICON_DIR / "es_vader.txt")
            # Emoticons read the same in every language; VADER turns emoji into English
            # descriptions, so the words of those descriptions come along too.
            for word, valence in english.items():
                if not any(char.isalpha() for char in word) or word in _EMOJI_WORDS:
                    lexicon.setdefault(word, valence)
            analyzer.lexicon = lexicon
            self.name = "vader-es-v1"
            idioms = IDIOMS_ES
        else:
            analyzer.lexicon.update(load_lexicon(LEXICON_DIR / "en_extra.txt"))
            self.name = "vader-en+extra-v1"
            idioms = IDIOMS_EN
        self._analyzer = analyzer
        self.lexicon: dict[str, float] = analyzer.lexicon
        # Each idiom becomes one made-up word ("idiom3") that the lexicon knows.
        self._idiom_tokens = {phrase: f"idiom{n}" for n, phrase in enumerate(idioms)}
        for phrase, token in self._idiom_tokens.items():
            self.lexicon[token] = idioms[phrase]
        self._idiom_pattern = re.compile(
            r"\b(" + "|".join(sorted(idioms, key=len, reverse=True)) + r")\b", re.IGNORECASE
        )

    def _idioms(self, text: str) -> str:
        return self._idiom_pattern.sub(
            lambda match: self._idiom_tokens[match.group(0).lower()], text
        )

    def prepare(self, text: str) -> str:
        if "?" in text:
            text = _SIGN_OFF.sub(r"\1", text.rstrip())
        if self.language == "es":
            text = fold(text, lower=False).translate(_SPANISH_PUNCTUATION)
            for pattern in (*POLITENESS_ES, _NEUTRAL_TERMS_ES, _CONDITIONAL_ES):
                text = pattern.sub(" ", text)
            return _map_spanish_modifiers(self._idioms(text))
        for pattern in (*POLITENESS_EN, _NEUTRAL_TERMS_EN, _CONDITIONAL_EN):
            text = pattern.sub(" ", text)
        return self._idioms(_EN_LIKE.sub(r"\1", text))

    def score(self, text: str) -> tuple[float, list[str]]:
        """Compound score of the prepared text and the lexicon words that carried it."""
        prepared = self.prepare(text)
        total = 0.0
        for sentence in _SENTENCE_END.split(prepared):
            if not sentence.strip():
                continue
            compound = float(self._analyzer.polarity_scores(sentence)["compound"])
            if compound:
                # Back from VADER's normalised compound to its summed valence, so sentences
                # add up: normalize(x) = x / sqrt(x^2 + 15).
                bounded = max(min(compound, 0.9999), -0.9999)
                total += bounded * math.sqrt(15 / (1 - bounded * bounded))
        compound = total / math.sqrt(total * total + 15) if total else 0.0
        words: list[str] = []
        for token in prepared.lower().split():
            token = token.strip(".,;:!?()\"'[]")
            if token in self.lexicon and len(words) < 12:
                words.append(f"{token} {self.lexicon[token]:+.1f}")
        return round(compound, 4), words


def _map_spanish_modifiers(text: str) -> str:
    """Spanish negators and degree words become the English ones VADER's rules know; the
    case is kept, since VADER reads words in capitals as emphasis."""

    def replace(match: re.Match[str]) -> str:
        word = match.group(0)
        lowered = word.lower()
        english = ES_NEGATORS.get(lowered) or ES_BOOSTERS[lowered]
        return english.upper() if word.isupper() and len(word) > 1 else english

    return _SPANISH_MODIFIER.sub(replace, text)


@cache
def vader(language: str) -> Vader:
    """The analyser for "en" or "es", built once per process (loading a lexicon takes time)."""
    return Vader(language)


def sentiment_of(compound: float) -> Sentiment:
    if compound >= POSITIVE_AT:
        return Sentiment.POSITIVE
    if compound <= NEGATIVE_AT:
        return Sentiment.NEGATIVE
    return Sentiment.NEUTRAL
