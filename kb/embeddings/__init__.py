"""Sentence embeddings for semantic search: the `Embedder` interface (`kb.embeddings.base`), the
models that run here (multilingual Universal Sentence Encoder in `.use`, all-MiniLM-L6-v2 in
`.minilm`) and a brand's own HTTP service (`.remote`), by name:

    embedder = get_embedder("use-multilingual")       # one per process, loads on first use
    embedder.embed([document, ...])                    # (n, 512) float32, rows of length 1
    embedder.embed_query("wifi drops at night")        # (512,), cached

Everything loads from installed packages (no model hub, no network). Failures raise
`EmbedderUnavailable`: search then stays lexical.

This package's top level is light (the errors, the registry, the document text): the models and
numpy are imported when an embedder is first created, so a process that never embeds (a web
process with semantic search off) does not carry them (docs/performance.md, "Memory").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kb.embeddings.errors import EmbedderConfigError, EmbedderTimeout, EmbedderUnavailable
from kb.embeddings.registry import (
    LocalModelOptions,
    create_embedder,
    embedder_names,
    get_embedder,
    register_embedder,
)
from kb.embeddings.text import document_text

if TYPE_CHECKING:
    from kb.embeddings.base import Embedder

# The multilingual model: English and Spanish in one space (a Spanish title finds an English
# thread), fast enough for the ask form and for embedding a big import on one core. See
# bench/bench_embeddings.py for the figures behind the choice.
DEFAULT_EMBEDDER = "use-multilingual"
USE_MULTILINGUAL = "use-multilingual"  # kb.embeddings.use.UseMultilingual.name
MINILM = "minilm"  # kb.embeddings.minilm.MiniLM.name
HTTP = "http"


def _use(options: Mapping[str, Any]) -> Embedder:
    from kb.embeddings.use import UseMultilingual

    return UseMultilingual(threads=LocalModelOptions.model_validate(options).threads)


def _minilm(options: Mapping[str, Any]) -> Embedder:
    from kb.embeddings.minilm import MiniLM

    return MiniLM(threads=LocalModelOptions.model_validate(options).threads)


def _http(options: Mapping[str, Any]) -> Embedder:
    from kb.embeddings.remote import HttpEmbedder, HttpEmbedderConfig

    return HttpEmbedder(HttpEmbedderConfig.model_validate(options))


register_embedder(USE_MULTILINGUAL, _use)
register_embedder(MINILM, _minilm)
register_embedder(HTTP, _http, local=False)

__all__ = [
    "DEFAULT_EMBEDDER",
    "HTTP",
    "MINILM",
    "USE_MULTILINGUAL",
    "EmbedderConfigError",
    "EmbedderTimeout",
    "EmbedderUnavailable",
    "LocalModelOptions",
    "create_embedder",
    "document_text",
    "embedder_names",
    "get_embedder",
    "register_embedder",
]
