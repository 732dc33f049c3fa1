"""Which of our languages a post is written in, so that search tokenizes it as that language.

The asker's interface language is only a guess (a Spanish speaker may browse in English, an
import says nothing about each post), so the text decides when it can: py3langid's naive Bayes
model, restricted to the languages we serve, with probabilities calibrated for the length of
the text. It overrides the fallback only when it is sure *and* has enough text to be sure of:
short titles full of product names ("Dos Equis Amber", "El Jimador Reposado price") score
high for Spanish while being English questions, so a few words never decide.

Measured on the three Stack Exchange dumps (1,802 English questions), 5,000 synthetic questions
(20% Spanish) and the demo threads (`bench/bench_language.py`): no question is moved to the wrong
language at any threshold from 0.9 up. At 0.99 and 30 letters the title alone settles 86% of
them, the title and 60 characters of body all but 4 of 6,820, the title and the body's start all.

The detector (py3langid, numpy and the model's ~45 MiB of tables) loads on the first detection,
not on import: a web process that serves pages and no new question never carries it. With a model
server (community.core.model_client) the server detects, and a web process never loads it; if
the server cannot answer, the process detects itself rather than guess.
"""

from __future__ import annotations

import html
import logging
import re
from functools import cache
from typing import Protocol, cast

import nh3

from community.core import model_client
from community.core.i18n import SUPPORTED_LOCALES

logger = logging.getLogger(__name__)

# The detector's probability must reach this before it overrides the fallback.
CONFIDENCE = 0.99
# Fewer letters than this and the fallback stands, however confident the detector is.
MIN_LETTERS = 30
# The start of the text decides: the title and 60 characters of body already find almost every
# question's language (measured), and the cost grows with the length.
HEAD_CHARS = 300
# Enough markup to yield HEAD_CHARS of text from a typical body, bounded for huge ones.
HTML_HEAD_CHARS = 8 * HEAD_CHARS

_URL = re.compile(r"\b(?:[a-z][a-z0-9+.-]*://|www\.)\S+", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


class _Classifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]: ...


@cache
def _identifier() -> _Classifier:
    """The model, loaded once per process (a third of a second) on first use.

    Built from our languages' columns alone: `set_languages` would keep the 142 languages'
    table (27 MiB) beside them in every process for nothing.
    """
    import numpy as np
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
    from py3langid.modelio import load_model

    ptc, pc, classes, nextmove, row, output = load_model(MODEL_DIR / MODEL_FILE)
    ours = [index for index, label in enumerate(classes) if label in SUPPORTED_LOCALES]
    identifier = LanguageIdentifier(
        np.ascontiguousarray(ptc[:, ours]),
        pc[ours],
        [classes[index] for index in ours],
        nextmove,
        output,
        norm_probs=True,
        tk_row=row,
    )
    return cast(_Classifier, identifier)


def _letters(text: str) -> int:
    return sum(map(str.isalpha, text))


def classify(text: str) -> tuple[str, float]:
    """The most likely of our languages for `text` and the detector's probability for it."""
    client = model_client.current()
    if client is not None:
        try:
            return client.classify_language(text)
        except model_client.ModelServerUnavailable as exc:
            logger.warning("language detected in this process: %s", exc)
    return classify_here(text)


def classify_here(text: str) -> tuple[str, float]:
    """`classify` with this process's own detector (the model server's answer)."""
    return _identifier().classify(text)


def detect_language(text: str, *, fallback: str) -> str:
    """The language of `text` among the supported locales, or `fallback` when unsure."""
    head = text[:HEAD_CHARS]
    if _letters(head) < MIN_LETTERS:
        return fallback
    language, probability = classify(head)
    if probability >= CONFIDENCE and language in SUPPORTED_LOCALES:
        return language
    return fallback


def post_text(title: str, body_html: str) -> str:
    """Title and the start of a post's prose: code, markup and addresses say nothing of the
    language the author writes in (code is mostly English whatever the post's language)."""
    # A space before each tag keeps the words of adjacent paragraphs and list items apart.
    markup = body_html[:HTML_HEAD_CHARS].replace("<", " <")
    prose = html.unescape(nh3.clean(markup, tags=set(), clean_content_tags={"pre", "code"}))
    prose = _SPACES.sub(" ", _URL.sub(" ", prose)).strip()
    return f"{title}\n{prose}"[:HEAD_CHARS]


def detect_post_language(title: str, body_html: str, *, fallback: str) -> str:
    """The language a question (title and rendered body) is written in, else `fallback`."""
    return detect_language(post_text(title, body_html), fallback=fallback)
