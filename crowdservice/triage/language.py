"""Which language a post is read in: the thread's locale unless the text is clearly in the
other one (marker words in `cues/language.toml`)."""

from __future__ import annotations

from collections.abc import Iterable

from crowdservice.triage.words import read_table

_TABLE = read_table("language")
_ES_MARKERS = frozenset(_TABLE["spanish"])
_EN_MARKERS = frozenset(_TABLE["english"])


def detect_language(locale: str, words: Iterable[str]) -> tuple[str, str]:
    """The thread's locale unless the text is clearly in the other language: ("es" or "en",
    "locale" or "detected")."""
    declared = "es" if locale.lower().startswith("es") else "en"
    spanish = english = 0
    for word in words:
        if word in _ES_MARKERS:
            spanish += 1
        elif word in _EN_MARKERS:
            english += 1
    if declared == "en" and spanish >= 3 and spanish > 3 * english:
        return "es", "detected"
    if declared == "es" and english >= 3 and english > 3 * spanish:
        return "en", "detected"
    return declared, "locale"
