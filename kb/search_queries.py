"""How a typed question becomes Meilisearch queries: quoted filter values, the words that carry
meaning (stop words out), and the federated queries one question becomes (the whole question,
then each variant with one word left out). The engine that runs them is in `kb.search`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Words that carry no meaning in a support question; dropping them lets "my wifi keeps dropping
# at night" match on wifi/dropping/night instead of on "my".
STOP_WORDS = sorted(
    {
        "a", "an", "and", "are", "at", "be", "can", "do", "does", "for", "from", "how", "i", "in",
        "is", "it", "me", "my", "of", "on", "or", "the", "this", "to", "what", "when", "why",
        "with", "you", "your",
        "al", "con", "cómo", "como", "de", "del", "el", "en", "es", "la", "las", "lo", "los",
        "mi", "mis", "por", "qué", "que", "se", "su", "un", "una", "y",
    }
)  # fmt: skip


def quote(value: str) -> str:
    """A Meilisearch filter string literal for any user-supplied value."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def equals(field_name: str, value: str) -> str:
    return f"{field_name} = {quote(value)}"


@dataclass(frozen=True)
class FederatedQuery:
    """One query of a federated multi-search: its hits are merged with the others' by
    Meilisearch's ranking score times `weight`."""

    index: str
    text: str
    filters: tuple[str, ...] = ()
    weight: float = 1.0
    strategy: str = "frequency"
    # Hybrid search: the query's vector for the index's embedder of that name, and the share of
    # the semantic ranking in the merged one (0 lexical only, 1 semantic only).
    semantic: Semantic | None = None


@dataclass(frozen=True)
class Semantic:
    embedder: str
    vector: Sequence[float]
    ratio: float

    def options(self) -> dict[str, Any]:
        return {
            "vector": list(self.vector),
            "hybrid": {"embedder": self.embedder, "semanticRatio": self.ratio},
        }


_WORD = re.compile(r"\w+")
# Enough for a question's title; past it, the leave-one-out queries cost more than they find.
MAX_QUERY_WORDS = 10
LEXICAL_RULES = ("frequency", "last", "frequency+last", "drop-one", "drop-one-weighted")


def query_words(text: str) -> list[str]:
    """The words of a query Meilisearch matches on: lower-cased, stop words and repeats out."""
    words: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word not in STOP_WORDS and word not in words:
            words.append(word)
    return words[:MAX_QUERY_WORDS]


def lexical_queries(
    index: str,
    text: str,
    *,
    filters: Sequence[str] = (),
    weight: float = 1.0,
    rule: str = "drop-one",
    semantic: Semantic | None = None,
) -> list[FederatedQuery]:
    """The queries one typed question becomes, for a federated search (see LEXICAL_RULES).
    With `semantic`, the whole question is searched hybrid, its variants lexically."""
    base = FederatedQuery(index, text, tuple(filters), weight, "frequency", semantic)
    if rule == "frequency":
        return [base]
    if rule == "last":
        return [FederatedQuery(index, text, tuple(filters), weight, "last")]
    if rule == "frequency+last":
        return [base, FederatedQuery(index, text, tuple(filters), weight, "last")]
    words = query_words(text)
    if len(words) < 3:
        return [base]
    shrink = (len(words) - 1) / len(words) if rule == "drop-one-weighted" else 1.0
    return [base] + [
        FederatedQuery(
            index,
            " ".join(words[:skipped] + words[skipped + 1 :]),
            tuple(filters),
            weight * shrink,
            "frequency",
        )
        for skipped in range(len(words))
    ]
