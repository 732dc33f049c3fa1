"""What every embedder is: a name, a dimension count, and `embed(texts)` giving one unit-length
float32 row per text, so a dot product is the cosine. Also what the local models share: loading
once per process, and a bound on their BLAS threads. The errors callers catch are in
`kb.embeddings.errors`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Generic, Protocol, TypeAlias, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController

from kb.embeddings.errors import EmbedderUnavailable

Vectors: TypeAlias = NDArray[np.float32]

T = TypeVar("T")


@runtime_checkable
class Embedder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised float32 row per text, in order: shape (len(texts), dimensions)."""
        ...


def normalise_rows(matrix: NDArray[Any], *, source: str) -> Vectors:
    """`matrix` as float32 rows of length 1. A row that is all zeros or not finite has no
    direction, so no cosine can rank it: that is the embedder failing, not a vector."""
    rows = np.asarray(matrix, dtype=np.float32)
    if rows.ndim != 2:
        raise EmbedderUnavailable(f"{source} gave an array of shape {rows.shape}, not a matrix")
    if not np.isfinite(rows).all():
        raise EmbedderUnavailable(f"{source} gave a vector with NaN or infinite values")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if rows.shape[0] and float(norms.min()) == 0.0:
        raise EmbedderUnavailable(f"{source} gave an all-zero vector")
    return np.ascontiguousarray(rows / norms, dtype=np.float32)


def no_vectors(dimensions: int) -> Vectors:
    return np.zeros((0, dimensions), dtype=np.float32)


class LoadOnce(Generic[T]):
    """Builds a value on first use, once per process even when several threads ask at the same
    time (the others wait for the first), so a model's weights are read once. A failed load is
    not remembered: the next call tries again (a package installed meanwhile is picked up)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._value is not None

    def get(self) -> T:
        value = self._value
        if value is not None:
            return value
        with self._lock:
            if self._value is None:
                self._value = self._build()
            return self._value


class BlasThreads:
    """Runs numpy's matrix products on at most `threads` BLAS threads. On a small machine shared
    by the web process, the worker, the database and Meilisearch, an embedder that takes every
    core for itself slows the rest; `None` leaves numpy's own setting alone."""

    def __init__(self, threads: int | None) -> None:
        self.threads = threads
        self._limit: LoadOnce[Callable[..., AbstractContextManager[Any]]] | None = None
        if threads is not None:
            # Finding the BLAS libraries scans the loaded libraries: once, not on every call.
            self._limit = LoadOnce(_blas_limiter)

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if self._limit is None:
            yield
            return
        with self._limit.get()(limits=self.threads, user_api="blas"):
            yield


def _blas_limiter() -> Callable[..., AbstractContextManager[Any]]:
    limit: Callable[..., AbstractContextManager[Any]] = ThreadpoolController().limit
    return limit
