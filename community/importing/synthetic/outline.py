"""A thread's outline: everything the parts of the synthetic source must agree on about it.

Thread k's outline is drawn first from the thread's own stream (``"{seed}:t:{k}"``): its date,
language, kind, topic, popularity, answer times, acceptance and votes. Each part then continues
that same stream for what only it needs (see `source.py`), so every part can replay it alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from community.core.models import ThreadKind
from community.importing.synthetic.randomness import Zipf, between, lognormal, lomax, seeded, unit
from community.importing.synthetic.vocabulary import (
    ACCOUNT,
    ACCOUNT_ISSUES,
    DEVICE,
    FEATURES,
    HOWTO,
    IDEA,
    MODEL_SUFFIXES,
    PRAISE,
    PRODUCTS,
    SYMPTOMS,
    TASKS,
)

ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(days=730)
POST_ID_STRIDE = 100  # question k is post 100k; its answers follow, so at most 99 answers
MAX_ANSWERS = 30
FOUNDERS = 5  # users who joined before the window; always eligible authors

# Outlines keep time as whole seconds since the epoch; records get aware UTC datetimes.
DAY = 86400
ANCHOR_TS = int(ANCHOR.timestamp())
WINDOW_S = int(WINDOW.total_seconds())
START_TS = ANCHOR_TS - WINDOW_S

_PRODUCT_RANKS = Zipf(range(len(PRODUCTS)))
_SYMPTOM_RANKS = Zipf(range(len(SYMPTOMS)))
_TASK_RANKS = Zipf(range(len(TASKS)))
_ISSUE_RANKS = Zipf(range(len(ACCOUNT_ISSUES)))
_FEATURE_RANKS = Zipf(range(len(FEATURES)))
_SUFFIX_RANKS = Zipf(MODEL_SUFFIXES)

_KINDS = (
    (0.62, ThreadKind.QUESTION),
    (0.82, ThreadKind.PROBLEM),
    (0.89, ThreadKind.IDEA),
    (0.95, ThreadKind.COMPLAINT),
    (1.0, ThreadKind.PRAISE),
)
SOLVABLE = (ThreadKind.QUESTION, ThreadKind.PROBLEM)
DUPLICATE_DRAW = 0.019  # about 1% of all threads once kinds and dates have ruled some out


def utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass(slots=True)
class Outline:
    """What every part must agree on about thread k, drawn first from the thread's stream.

    Each part then continues that same stream for what only it needs: the question's author
    (questions, answers, comments), then the answerers (answers), then its own text. The
    votes part stops before the authors; nothing else depends on how far a part went.
    """

    number: int
    question_id: int
    rng: random.Random  # the thread's stream, positioned after the outline
    created: int  # seconds since the epoch, like every time here
    locale: str
    kind: ThreadKind
    topic: Topic  # the original's, for a duplicate
    heat: float  # popularity: scales votes and views together
    up: int
    down: int
    answer_times: list[int]
    answer_up: list[int]
    answer_down: list[int]
    accepted: int | None  # index into the answers

    @property
    def es(self) -> bool:
        return self.locale == "es"

    @property
    def last_activity(self) -> int:
        return self.answer_times[-1] if self.answer_times else self.created


@dataclass(frozen=True, slots=True)
class Topic:
    """What a thread is about; a duplicate reuses its original's topic."""

    product: int
    model: str
    symptom: int
    task: int
    issue: int
    feature: int
    roll: float  # picks the family within the thread's kind

    def family(self, kind: ThreadKind) -> str:
        if kind is ThreadKind.IDEA:
            return IDEA
        if kind is ThreadKind.PRAISE:
            return PRAISE
        if kind is ThreadKind.QUESTION:
            return HOWTO if self.roll < 0.45 else DEVICE if self.roll < 0.8 else ACCOUNT
        if kind is ThreadKind.PROBLEM:
            return DEVICE if self.roll < 0.8 else ACCOUNT
        return DEVICE if self.roll < 0.6 else ACCOUNT  # complaints

    def topic_tag(self, family: str) -> str:
        if family == HOWTO:
            return TASKS[self.task][0]
        if family == ACCOUNT:
            return ACCOUNT_ISSUES[self.issue][0]
        if family == IDEA:
            return FEATURES[self.feature][0]
        return SYMPTOMS[self.symptom][0]


def _topic(rng: random.Random) -> Topic:
    product = _PRODUCT_RANKS.pick(rng)
    model = f"{PRODUCTS[product][3]} {between(rng, 1, 9)}{_SUFFIX_RANKS.pick(rng)}"
    return Topic(
        product=product,
        model=model,
        symptom=_SYMPTOM_RANKS.pick(rng),
        task=_TASK_RANKS.pick(rng),
        issue=_ISSUE_RANKS.pick(rng),
        feature=_FEATURE_RANKS.pick(rng),
        roll=rng.random(),
    )


def author_pool(thread: int) -> int:
    """How many users thread `thread` may draw authors from; grows with k, never with N."""
    return max(FOUNDERS, (thread + 2) // 3)


def head(rng: random.Random) -> tuple[int, str, ThreadKind]:
    """The first draws of a thread's outline: cheap enough to check duplicates against."""
    created = ANCHOR_TS - 1 - int((WINDOW_S - 2) * rng.random() ** 1.25)
    locale = "es" if rng.random() < 0.2 else "en"
    roll = rng.random()
    for threshold, kind in _KINDS:
        if roll < threshold:
            return created, locale, kind
    return created, locale, ThreadKind.PRAISE


def duplicate_of(
    seed: int, duplicate_salt: int, k: int, created: int, kind: ThreadKind
) -> int | None:
    """The earlier thread k duplicates, for about 1% of questions and problems."""
    if k < 2 or kind not in SOLVABLE or unit(duplicate_salt, k) >= DUPLICATE_DRAW:
        return None
    rng = seeded(f"{seed}:d:{k}")
    for _ in range(4):
        original = between(rng, 1, k - 1)
        original_created, _, original_kind = head(seeded(f"{seed}:t:{original}"))
        if original_created < created and original_kind in SOLVABLE:
            return original
    return None


def _answer_count(rng: random.Random) -> int:
    if rng.random() < 0.2:
        return 0
    return min(MAX_ANSWERS, 1 + int(lomax(rng, 3.0, 2.5)))


def _answer_times(rng: random.Random, created: int) -> list[int]:
    times: list[int] = []
    when = created
    for i in range(_answer_count(rng)):
        when += 1 + int(3600 * lognormal(rng, 4.0 if i == 0 else 10.0, 1.6))
        if when >= ANCHOR_TS:
            break  # not written yet on the anchor date
        times.append(when)
    return times


def _accepted(rng: random.Random, kind: ThreadKind, answers: int) -> int | None:
    if answers and rng.random() < (0.5 if kind in SOLVABLE else 0.12):
        return 0 if rng.random() < 0.55 else int(rng.random() * answers)
    return None


def _downvotes(rng: random.Random, up: int) -> int:
    stray = 1 if rng.random() < 0.02 else 0
    return int(up * 0.05 + rng.random()) + stray


def draw_outline(seed: int, duplicate_salt: int, k: int) -> Outline:
    """Thread k's outline, leaving its stream just after the outline's draws."""
    rng = seeded(f"{seed}:t:{k}")
    created, locale, kind = head(rng)
    topic = _topic(rng)
    original = duplicate_of(seed, duplicate_salt, k, created, kind)
    if original is not None:
        original_rng = seeded(f"{seed}:t:{original}")
        head(original_rng)
        topic = _topic(original_rng)
    heat = lognormal(rng, 1.0, 0.75)
    up = int(lomax(rng, 1.3 * heat, 1.8))
    down = _downvotes(rng, up)
    times = _answer_times(rng, created)
    accepted = _accepted(rng, kind, len(times))

    ups: list[int] = []
    downs: list[int] = []
    for i in range(len(times)):
        scale = heat * (2.0 if i == accepted else 1.0) / (1.0 + 0.3 * i)
        answer_up = int(lomax(rng, scale, 1.8))
        ups.append(answer_up)
        downs.append(_downvotes(rng, answer_up))

    return Outline(
        number=k,
        question_id=k * POST_ID_STRIDE,
        rng=rng,
        created=created,
        locale=locale,
        kind=kind,
        topic=topic,
        heat=heat,
        up=up,
        down=down,
        answer_times=times,
        answer_up=ups,
        answer_down=downs,
        accepted=accepted,
    )
