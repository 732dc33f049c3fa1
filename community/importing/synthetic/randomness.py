"""Seeded streams and the few distributions the synthetic community draws from."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import random
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

_MASK64 = (1 << 64) - 1
_GOLDEN64 = 0x9E3779B97F4A7C15


def seeded(key: str) -> random.Random:
    # Reproducible test data, not secrets: a seeded Mersenne Twister per record is the point.
    return random.Random(key)  # noqa: S311


def unit(salt: int, n: int) -> float:
    """SplitMix64 at position n, as a float in [0, 1): far cheaper than seeding a Random."""
    x = (salt + n * _GOLDEN64) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return ((x ^ (x >> 31)) >> 11) / float(1 << 53)


def hash64(key: str) -> int:
    """A salt for `unit`, the same for a key on every platform."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


# random.choice and randint go through getrandbits in Python code; these are several times
# faster, and a hair of bias does not matter for test data.
def choice(rng: random.Random, items: Sequence[T]) -> T:
    return items[int(rng.random() * len(items))]


def between(rng: random.Random, low: int, high: int) -> int:
    return low + int(rng.random() * (high - low + 1))


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))  # gauss: faster than normalvariate


def lomax(rng: random.Random, scale: float, shape: float) -> float:
    """Pareto type II: mostly small values and a long tail (votes, answer counts)."""
    return scale * (math.pow(1.0 - rng.random(), -1.0 / shape) - 1.0)


class Zipf(Generic[T]):
    """Draws items with weight 1 / rank**exponent: the first few dominate."""

    def __init__(self, items: Sequence[T], exponent: float = 1.0) -> None:
        self.items = tuple(items)
        self._cumulative = list(
            itertools.accumulate(1.0 / rank**exponent for rank in range(1, len(self.items) + 1))
        )
        self._total = self._cumulative[-1]

    def pick(self, rng: random.Random) -> T:
        return self.items[bisect.bisect_right(self._cumulative, rng.random() * self._total)]
