"""The errors callers of the embedders catch. Apart from the models (and numpy) so that code that
only catches them, or validates a configuration, loads nothing heavy."""

from __future__ import annotations


class EmbedderUnavailable(RuntimeError):
    """No vectors now (a model that cannot load, a service that is down or answers nonsense).
    Callers catch this and fall back to lexical search; the vectors are computed later."""


class EmbedderTimeout(EmbedderUnavailable):
    """A remote embedding service did not answer within its timeout."""


class EmbedderConfigError(ValueError):
    """An unknown embedder name or options it does not accept: a configuration mistake, shown
    to the admin who made it rather than silently falling back."""
