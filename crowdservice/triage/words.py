"""Text as triage reads it: folded (no accents, lower case), padded word strings in which a
phrase is a substring search, and the cue tables in `cues/*.toml`."""

from __future__ import annotations

import re
import tomllib
from importlib.resources import files
from typing import Any

# Posts are cut here before classifying: the opening says what the post is about, and it
# keeps a pasted log from costing milliseconds.
MAX_TEXT = 4000

_ACCENTED = "áéíóúüñàèìòùâêîôûäëïöçÁÉÍÓÚÜÑÀÈÌÒÙÂÊÎÔÛÄËÏÖÇ"
_FOLD = str.maketrans(_ACCENTED, "aeiouunaeiouaeiouaeiocAEIOUUNAEIOUAEIOUAEIOC")
_APOSTROPHES = re.compile(r"['’`´]")
_WORD = re.compile(r"[a-z0-9]+")
_CODE_BLOCK = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
_URL = re.compile(r"https?://\S+|www\.\S+")


def fold(text: str, *, lower: bool = True) -> str:
    """Without accents (and lower case): "Está caído" -> "esta caido"."""
    folded = text.translate(_FOLD)
    return folded.lower() if lower else folded


def padded_words(text: str) -> str:
    """Folded words separated by single spaces, with a space at each end, so that a phrase
    is found with `" phrase " in padded` and a word prefix with `" stem" in padded`."""
    words = _WORD.findall(_APOSTROPHES.sub("", fold(text)))
    return f" {' '.join(words)} "


def needle(phrase: str) -> str:
    """What `padded_words` text is searched for: " word " for exact words and phrases,
    " stem" for "stem*" (a word prefix)."""
    padded = padded_words(phrase.rstrip("*"))
    return padded.rstrip() if phrase.endswith("*") else padded


def clean_text(text: str) -> str:
    """Markdown source as prose: no code, no links, bounded length."""
    return _URL.sub(" ", _CODE_BLOCK.sub(" ", text[: MAX_TEXT * 2]))[:MAX_TEXT]


def read_table(name: str) -> dict[str, Any]:
    """One of the cue tables shipped in `cues/` (package data), parsed."""
    resource = files(__package__ or "crowdservice.triage") / "cues" / f"{name}.toml"
    return tomllib.loads(resource.read_text(encoding="utf-8"))
