"""Query vectors, cached: while a title is typed into the ask form the same few queries arrive
again and again (each keystroke after the debounce, the back button, a second tab), and a query
vector costs a model run or a round trip to the brand's service."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kb.embeddings.base import Embedder, Vectors

QUERY_CACHE_SIZE = 512  # 512 vectors of 512 floats: 1 MiB


def query_key(text: str) -> str:
    """What a query is cached and embedded as: runs of spaces do not make a new query."""
    return " ".join(text.split())


class CachingEmbedder:
    """An embedder with a small LRU cache of query vectors in front. Documents go through
    `embed` in batches and are not cached: each is embedded once when it changes."""

    def __init__(self, inner: Embedder, *, query_cache_size: int = QUERY_CACHE_SIZE) -> None:
        self.inner = inner
        # lru_cache is thread-safe; two threads missing on one key both compute it, harmlessly.
        # Failures are not cached: the next call asks again.
        self._cached = functools.lru_cache(maxsize=query_cache_size)(self._embed_one)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self.inner.embed(texts)

    def embed_query(self, text: str) -> NDArray[np.float32]:
        """The unit vector of one query, shape (dimensions,). Read-only: the same array is
        handed to every caller of the same query."""
        vector: NDArray[np.float32] = self._cached(query_key(text))
        return vector

    def cache_info(self) -> Any:
        return self._cached.cache_info()

    def _embed_one(self, text: str) -> NDArray[np.float32]:
        vector: NDArray[np.float32] = self.inner.embed([text])[0].copy()
        vector.setflags(write=False)
        return vector
