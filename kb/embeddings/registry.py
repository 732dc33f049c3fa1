"""Embedders by name ("use-multilingual", "minilm", "http"), built from per-brand options, and
one instance per name and options per process: a model's weights are read once and its query
cache is shared by every request.

Light to import: the embedders and numpy load when one is first created, so a process that
never embeds (a web process with semantic search off) never loads them. In a process that has a
model server (community.core.model_client), the local models run there: the embedder here sends
the texts and holds no weights. A brand's own HTTP service is called directly either way."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from community.core import model_client
from kb.embeddings.errors import EmbedderConfigError

if TYPE_CHECKING:
    from kb.embeddings.base import Embedder
    from kb.embeddings.cache import CachingEmbedder

EmbedderFactory = Callable[[Mapping[str, Any]], "Embedder"]


class LocalModelOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # BLAS threads for the model's matrix products; 1 leaves the other cores to the rest.
    threads: int | None = Field(default=1, ge=1, le=64)


_factories: dict[str, EmbedderFactory] = {}
# Names whose model runs in this process unless a model server runs it (not a remote service).
_local_models: set[str] = set()
_instances: dict[tuple[str, str, str], CachingEmbedder] = {}
_lock = threading.Lock()


def register_embedder(name: str, factory: EmbedderFactory, *, local: bool = True) -> None:
    _factories[name] = factory
    if local:
        _local_models.add(name)


def embedder_names() -> list[str]:
    return sorted(_factories)


def create_embedder(name: str, options: Mapping[str, Any] | None = None) -> Embedder:
    """A new embedder (nothing loaded yet). EmbedderConfigError for an unknown name or options
    the embedder does not take."""
    factory = _factories.get(name)
    if factory is None:
        known = ", ".join(embedder_names())
        raise EmbedderConfigError(f"unknown embedder {name!r} (known: {known})")
    try:
        return factory(options or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or name}: {error['msg']}"
            for error in exc.errors()
        )
        raise EmbedderConfigError(f"embedder {name!r}: {problems}") from exc


def get_embedder(name: str, options: Mapping[str, Any] | None = None) -> CachingEmbedder:
    """The process's embedder for `name` and `options`, with its query cache; the model loads
    on first use, here or in the model server."""
    from kb.embeddings.cache import CachingEmbedder  # numpy: only where embedding happens

    client = model_client.current() if name in _local_models else None
    options_key = json.dumps(dict(options or {}), sort_keys=True, default=str)
    key = (name, options_key, client.address if client is not None else "")
    with _lock:
        embedder = _instances.get(key)
        if embedder is None:
            inner = create_embedder(name, options)
            if client is not None:
                from kb.embeddings.served import ServedEmbedder

                inner = ServedEmbedder(inner, options or {}, client)
            embedder = CachingEmbedder(inner)
            _instances[key] = embedder
        return embedder
