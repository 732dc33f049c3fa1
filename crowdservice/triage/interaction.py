"""What a post is: weighted keyword and phrase cues per interaction type (the tables are in
`cues/interaction_types.toml`), the kind the asker picked as a prior, question marks, and the
sentiment (a negative post is never praise, a positive one never a complaint). The highest
score wins; with no evidence at all the asker's kind (or "question") stands."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from crowdservice.models import InteractionType
from crowdservice.triage.sentiment import NEGATIVE_AT, POSITIVE_AT
from crowdservice.triage.words import needle, read_table


@dataclass(frozen=True, slots=True)
class Cue:
    type: InteractionType
    weight: float
    text: str
    needle: str
    group: str = ""


_TABLE = read_table("interaction_types")
INCORRECT_INFO_PAIR: float = _TABLE["incorrect_info_pair"]
# The kind the asker picked, as a prior: (type, weight).
KIND_PRIOR: dict[str, tuple[InteractionType, float]] = {
    kind: (InteractionType(prior["type"]), float(prior["weight"]))
    for kind, prior in _TABLE["kind_prior"].items()
}

# Ties go to the first: the more specific types before the catch-all "question".
TYPE_ORDER = (
    InteractionType.INCORRECT_INFO,
    InteractionType.COMPLAINT,
    InteractionType.PROBLEM,
    InteractionType.SUGGESTION,
    InteractionType.PRAISE,
    InteractionType.QUESTION,
)
_REQUESTS = (
    InteractionType.QUESTION,
    InteractionType.PROBLEM,
    InteractionType.SUGGESTION,
    InteractionType.INCORRECT_INFO,
)

TypeScores = dict[InteractionType, float]


def _cues() -> tuple[Cue, ...]:
    cues: dict[tuple[InteractionType, str], Cue] = {}
    for entry in _TABLE["cues"]:
        kind = InteractionType(entry["type"])
        weight = float(entry["weight"])
        group = entry.get("group", "")
        for phrase in entry["phrases"]:
            text = " ".join(phrase.split())
            if not text:
                continue
            cue = Cue(kind, weight, text, needle(text), group)
            # A phrase listed twice for a type counts once, with its higher weight.
            known = cues.get((kind, cue.needle))
            if known is None or known.weight < weight:
                cues[(kind, cue.needle)] = cue
    return tuple(cues.values())


TYPE_CUES = _cues()


def _index(cues: Iterable[Cue]) -> tuple[dict[str, tuple[Cue, ...]], tuple[Cue, ...]]:
    """Cues by their first whole word, so a post is only checked for cues that can occur in
    it; one-word prefixes ("overheat*") are checked one by one."""
    by_word: dict[str, list[Cue]] = defaultdict(list)
    prefixes: list[Cue] = []
    for cue in cues:
        words = cue.needle.split()
        if len(words) == 1 and not cue.needle.endswith(" "):
            prefixes.append(cue)
        else:
            by_word[words[0]].append(cue)
    return {word: tuple(found) for word, found in by_word.items()}, tuple(prefixes)


_CUES_BY_WORD, _PREFIX_CUES = _index(TYPE_CUES)


def find_cues(padded: str) -> list[Cue]:
    """The type cues in a padded text (see `words.padded_words`)."""
    found = [cue for cue in _PREFIX_CUES if cue.needle in padded]
    for word in set(padded.split()):
        for cue in _CUES_BY_WORD.get(word, ()):
            if cue.needle in padded:
                found.append(cue)
    return found


def _longest(found: Iterable[Cue]) -> list[Cue]:
    """Cues found in the text, less those inside a longer one found ("false" inside "false
    advertising", "harto" inside "estoy harto"): the longer phrase says what is meant."""
    cues = list(found)
    return [
        cue
        for cue in cues
        if not any(
            len(other.needle) > len(cue.needle) and cue.needle in other.needle for other in cues
        )
    ]


def _cue_scores(padded: str) -> tuple[TypeScores, dict[str, list[str]]]:
    """Scores from the cues alone, and the cues found by type."""
    scores: TypeScores = dict.fromkeys(InteractionType, 0.0)
    matched: dict[str, list[str]] = defaultdict(list)
    groups: set[str] = set()
    for cue in _longest(find_cues(padded)):
        matched[cue.type.value].append(cue.text)
        if cue.group:
            # A source or a wrongness word counts once however often it comes up.
            if cue.group not in groups:
                scores[cue.type] += cue.weight
            groups.add(cue.group)
        else:
            scores[cue.type] += cue.weight
    if {"source", "wrong"} <= groups:
        scores[InteractionType.INCORRECT_INFO] += INCORRECT_INFO_PAIR
    return scores, dict(matched)


def type_scores(
    padded: str, text: str, kind_hint: str | None, compound: float
) -> tuple[TypeScores, dict[str, list[str]]]:
    """Every type's score for a post (`padded` its padded words, `text` its cleaned text,
    `compound` its sentiment), and the cues found by type."""
    scores, matched = _cue_scores(padded)
    prior = KIND_PRIOR.get(kind_hint or "")
    if prior is not None:
        scores[prior[0]] += prior[1]
    questions = text.count("?")
    if questions:
        scores[InteractionType.QUESTION] += 0.75 if questions == 1 else 1.0
    # Praise asks for nothing: a post that also asks, reports or proposes something is
    # that, however warmly it is put.
    if any(scores[kind] >= 2 for kind in _REQUESTS):
        scores[InteractionType.PRAISE] -= 2.0
    # A complaint is negative and praise positive by definition.
    if compound <= NEGATIVE_AT:
        scores[InteractionType.PRAISE] -= 3.0
        if compound <= -0.5:
            scores[InteractionType.COMPLAINT] += 1.0
    elif compound >= POSITIVE_AT:
        scores[InteractionType.COMPLAINT] -= 3.0
        if compound >= 0.5:
            scores[InteractionType.PRAISE] += 1.0
    return scores, matched


def best_type(scores: TypeScores, kind_hint: str | None) -> tuple[InteractionType, str]:
    """The highest-scoring type and the rule that chose it; with no evidence at all, the
    asker's kind (or "question")."""
    best = max(TYPE_ORDER, key=lambda kind: scores[kind])
    if scores[best] > 0:
        return best, "highest score"
    prior = KIND_PRIOR.get(kind_hint or "")
    if prior is not None:
        return prior[0], "no evidence: the asker's kind"
    return InteractionType.QUESTION, "no evidence"
