"""A local model (MiniLM, the multilingual USE) run by the model server instead of this process
(community.core.model_client): same name, dimensions and vectors, none of the weights here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from community.core.model_client import ModelClient, ModelServerUnavailable
from kb.embeddings.base import Embedder, Vectors, no_vectors, normalise_rows
from kb.embeddings.errors import EmbedderUnavailable


class ServedEmbedder:
    def __init__(self, local: Embedder, options: Mapping[str, Any], client: ModelClient) -> None:
        # `local` is never loaded here: it only says the model's name and dimensions.
        self._local = local
        self._options = dict(options)
        self._client = client

    @property
    def name(self) -> str:
        return self._local.name

    @property
    def dimensions(self) -> int:
        return self._local.dimensions

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return no_vectors(self.dimensions)
        try:
            rows = self._client.embed(self.name, self._options, list(texts))
        except ModelServerUnavailable as exc:
            raise EmbedderUnavailable(str(exc)) from exc
        try:
            matrix = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EmbedderUnavailable("the model server answered other than numbers") from exc
        if matrix.shape != (len(texts), self.dimensions):
            raise EmbedderUnavailable(
                f"the model server answered vectors of shape {matrix.shape} for {self.name}"
            )
        return normalise_rows(matrix, source="the model server")
