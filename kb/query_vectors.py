"""The vector of a search query: the first of a brand's models that serves the query's language,
or None when that model cannot run now (search stays lexical and /readyz says so). numpy is
imported where a vector is computed: a web process whose search is lexical never loads it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kb.embeddings import EmbedderUnavailable
from kb.embeddings.health import health
from kb.vectors import ModelSpec, blended

logger = logging.getLogger(__name__)


def query_spec(specs: Sequence[ModelSpec], language: str) -> ModelSpec | None:
    for spec in specs:
        if spec.languages is None or language in spec.languages:
            return spec
    return None


def query_vector(spec: ModelSpec, text: str) -> list[float] | None:
    """The query's vector, or None when a model cannot run now (search stays lexical)."""
    if spec.is_blend:
        import numpy as np

        pieces = []
        for part, weight in spec.parts:
            part_vector = query_vector(part, text)
            if part_vector is None:
                return None
            pieces.append((np.asarray(part_vector, dtype=np.float32), weight))
        return [float(value) for value in blended(pieces)]
    try:
        vector = spec.embedder().embed_query(text)
    except EmbedderUnavailable as exc:
        health.failed(spec.key, str(exc))
        logger.warning("semantic search unavailable (%s): %s", spec.key, exc)
        return None
    health.worked(spec.key)
    return [float(value) for value in vector]
