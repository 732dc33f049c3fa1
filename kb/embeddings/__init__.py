"""Sentence embeddings for semantic search: the `Embedder` interface, the models that run here
(multilingual Universal Sentence Encoder, all-MiniLM-L6-v2) and a brand's own HTTP service.

    embedder = get_embedder("use-multilingual")       # one per process, loads on first use
    embedder.embed([document, ...])                    # (n, 512) float32, rows of length 1
    embedder.embed_query("wifi drops at night")        # (512,), cached

Everything loads from installed packages (no model hub, no network). Failures raise
`EmbedderUnavailable`: search then stays lexical.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kb.embeddings.base import (
    Embedder,
    EmbedderConfigError,
    EmbedderTimeout,
    EmbedderUnavailable,
    Vectors,
)
from kb.embeddings.cache import CachingEmbedder
from kb.embeddings.minilm import MiniLM
from kb.embeddings.registry import (
    LocalModelOptions,
    create_embedder,
    embedder_names,
    get_embedder,
    register_embedder,
)
from kb.embeddings.remote import HttpEmbedder, HttpEmbedderConfig
from kb.embeddings.text import document_text
from kb.embeddings.use import UseMultilingual

# The multilingual model: English and Spanish in one space (a Spanish title finds an English
# thread), fast enough for the ask form and for embedding a big import on one core. See
# bench/bench_embeddings.py for the figures behind the choice.
DEFAULT_EMBEDDER = "use-multilingual"


def _use(options: Mapping[str, Any]) -> Embedder:
    return UseMultilingual(threads=LocalModelOptions.model_validate(options).threads)


def _minilm(options: Mapping[str, Any]) -> Embedder:
    return MiniLM(threads=LocalModelOptions.model_validate(options).threads)


def _http(options: Mapping[str, Any]) -> Embedder:
    return HttpEmbedder(HttpEmbedderConfig.model_validate(options))


register_embedder(UseMultilingual.name, _use)
register_embedder(MiniLM.name, _minilm)
register_embedder("http", _http)

__all__ = [
    "DEFAULT_EMBEDDER",
    "CachingEmbedder",
    "Embedder",
    "EmbedderConfigError",
    "EmbedderTimeout",
    "EmbedderUnavailable",
    "HttpEmbedder",
    "HttpEmbedderConfig",
    "MiniLM",
    "UseMultilingual",
    "Vectors",
    "create_embedder",
    "document_text",
    "embedder_names",
    "get_embedder",
    "register_embedder",
]
