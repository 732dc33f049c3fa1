"""Which known issues a text reports: the ask form's typed title (crowdservice.known_issues.
ask_form) and a new thread's title and question (crowdservice.known_issues.linking).

- **Words**: an issue matches when the text contains one of its match terms as a whole-word
  phrase. Both are folded the same way (casefold, accents stripped after NFKD, split on
  everything that is not a letter or digit) and the term's words must follow each other in the
  text: "502" matches "error 502 at checkout", not "5020"; "can't sign in" matches "I CAN'T
  sign in!".
- **Meaning**: when the brand's first model is calibrated for possible duplicates
  (kb.duplicates.DUPLICATE_THRESHOLD, measured on the real duplicate pairs of the Stack
  Exchange dumps), a text also matches when the cosine of its vector with the issue's (title
  and plain summary) reaches that threshold: "this question reports that issue" is the same
  judgement as "this question duplicates that one". A model that cannot run now (or a brand
  without a calibrated one) leaves words only, never an error.
- **Order**: word matches first, then by cosine; at most MAX_MATCHES (the ask form shows them
  above its suggestions, and a thread reports one problem).
- **Scope** (linking only; no forum is chosen yet on the ask form): an issue with forums
  applies to threads in them, with tags to threads carrying one, with both to either; with
  neither to the whole brand.

numpy is imported where vectors are compared: with semantic search off the ask form matches by
words and a web process never loads it.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from community.core.models import Brand
from crowdservice.known_issues.models import KnownIssue
from kb import query_vectors
from kb.documents import plain_text
from kb.duplicates import DUPLICATE_THRESHOLD, duplicate_spec
from kb.vectors import ModelSpec

if TYPE_CHECKING:
    import numpy as np

MAX_MATCHES = 2
# Letters and digits of any script; "_" is a word character to `\w` but a separator here.
_WORD = re.compile(r"[^\W_]+")
# The summary is what customers are told; its first part says what the problem is.
ISSUE_SUMMARY_CHARS = 500


def words(text: str) -> tuple[str, ...]:
    """The text's words, folded: casefold, accents stripped, split on non-alphanumerics."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return tuple(_WORD.findall(bare))


def contains_phrase(text_words: Sequence[str], phrase: Sequence[str]) -> bool:
    """Whether `phrase` occurs in `text_words` as consecutive words (an empty phrase never)."""
    size = len(phrase)
    if size == 0 or size > len(text_words):
        return False
    first = phrase[0]
    return any(
        text_words[start] == first and tuple(text_words[start : start + size]) == tuple(phrase)
        for start in range(len(text_words) - size + 1)
    )


def matches_terms(terms: Iterable[str], *texts: str) -> bool:
    """Whether any of the terms occurs as a whole-word phrase in any of the texts (each text on
    its own: a phrase never runs from a title into the question)."""
    phrases = [phrase for phrase in (words(term) for term in terms) if phrase]
    folded = [words(text) for text in texts if text]
    return any(contains_phrase(text, phrase) for phrase in phrases for text in folded)


def applies_to(issue: KnownIssue, forum_id: int, tag_names: Iterable[str]) -> bool:
    """Whether the issue's scope covers a thread in `forum_id` carrying `tag_names`."""
    if not issue.forum_ids and not issue.tags:
        return True
    if forum_id in issue.forum_ids:
        return True
    wanted = {tag.casefold() for tag in issue.tags}
    return any(tag.casefold() in wanted for tag in tag_names)


# --- meaning -------------------------------------------------------------------------------------


def issue_text(issue: KnownIssue) -> str:
    summary = plain_text(issue.summary_html, ISSUE_SUMMARY_CHARS) if issue.summary_html else ""
    return f"{issue.title}. {summary}".strip() if summary else issue.title


class _IssueVectors:
    """Issue vectors by model and text: an issue changes rarely and is compared on every
    suggestion request, so its vector is kept (bounded; a changed text is another key)."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def get(self, spec: ModelSpec, text: str) -> np.ndarray | None:
        key = (spec.key, hashlib.sha256(text.encode()).hexdigest())
        with self._lock:
            if key in self._vectors:
                self._vectors.move_to_end(key)
                return self._vectors[key]
        found = query_vectors.query_vector(spec, text)
        if found is None:
            return None  # the model cannot run now: not cached, the next call asks again
        vector = _unit(found)
        with self._lock:
            self._vectors[key] = vector
            while len(self._vectors) > self._size:
                self._vectors.popitem(last=False)
        return vector

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()


issue_vectors = _IssueVectors()


def _unit(values: Sequence[float]) -> np.ndarray:
    import numpy as np

    vector = np.asarray(values, dtype=np.float64)
    return vector / (np.linalg.norm(vector) or 1.0)


def cosines(
    brand: Brand, default_model: str, text: str, issues: Sequence[KnownIssue]
) -> dict[int, float]:
    """Each issue's cosine with `text` by the brand's calibrated model; empty when there is
    none or it cannot run now (the caller then matches by words only)."""
    spec = duplicate_spec(brand, default_model)
    if spec is None or not issues or not text.strip():
        return {}
    query = query_vectors.query_vector(spec, text)
    if query is None:
        return {}
    import numpy as np

    unit_query = _unit(query)
    found: dict[int, float] = {}
    for issue in issues:
        vector = issue_vectors.get(spec, issue_text(issue))
        if vector is None:
            return {}
        found[issue.id] = float(np.dot(unit_query, vector))
    return found


def threshold_for(brand: Brand, default_model: str) -> float | None:
    spec = duplicate_spec(brand, default_model)
    return DUPLICATE_THRESHOLD[spec.key] if spec is not None else None


# --- matching ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    issue: KnownIssue
    by_words: bool
    cosine: float | None


def match_issues(
    issues: Sequence[KnownIssue],
    title: str,
    *,
    brand: Brand,
    default_model: str,
    body: str = "",
    limit: int = MAX_MATCHES,
) -> list[Match]:
    """The issues `title` (and, for match terms only, `body`) reports, strongest first."""
    if not issues or not title.strip():
        return []
    scores = cosines(brand, default_model, title, issues)
    threshold = threshold_for(brand, default_model) if scores else None
    candidates = [
        Match(issue, matches_terms(issue.match_terms or [], title, body), scores.get(issue.id))
        for issue in issues
    ]
    found = [match for match in candidates if match.by_words or _close(match.cosine, threshold)]
    found.sort(key=_strength)
    return found[:limit]


def _close(cosine: float | None, threshold: float | None) -> bool:
    return cosine is not None and threshold is not None and cosine >= threshold


def _strength(match: Match) -> tuple[bool, float, int]:
    """Word matches first, then the closest in meaning, then the newest issue."""
    cosine = match.cosine if match.cosine is not None else -1.0
    return (not match.by_words, -cosine, -match.issue.id)
