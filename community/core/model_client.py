"""The client of the model server (kb/model_server.py): a web process asks one shared process for
query vectors and language guesses instead of loading the models itself.

The models are 250-300 MB of weights and tables. Loaded in every web process, they took each one
from ~160 MB to ~405 MB; asked of one process beside them, they cost a loopback round trip
(docs/serving.md, "The model server"). `community serve --workers N` starts the server and hands
its address to the web processes in MODEL_SERVER; `create_app` calls `configure` with it.

Any failure (no server, a timeout, a malformed answer) is a `ModelServerUnavailable`: the caller
falls back (search stays lexical; a language is detected in the process itself).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

# A query's vector takes a few milliseconds; this much is a server that is stuck or restarting,
# and the search should go on lexically rather than keep the visitor waiting.
REQUEST_SECONDS = 5.0
# /readyz asks for the server's health: a probe must answer quickly whatever the server does.
HEALTH_SECONDS = 1.0


class ModelServerUnavailable(RuntimeError):
    """The model server could not answer; the message says why."""


class ModelClient:
    """One process's connection to the model server, shared by its request threads."""

    def __init__(self, address: str, *, timeout: float = REQUEST_SECONDS) -> None:
        self.address = address
        if address.startswith(("http://", "https://")):
            transport = httpx.HTTPTransport()
            base_url = address.rstrip("/")
        else:  # a Unix socket's path: only processes of the same user reach it
            transport = httpx.HTTPTransport(uds=address)
            base_url = "http://model-server"
        # httpx's Client is safe to share between threads, and keeps its connections alive.
        self._http = httpx.Client(transport=transport, base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def embed(self, model: str, options: Mapping[str, Any], texts: Sequence[str]) -> list[Any]:
        """The server's vectors for `texts` with the named model: one list of floats per text."""
        answer = self._post("/embed", {"model": model, "options": dict(options), "texts": texts})
        vectors = answer.get("vectors")
        if not isinstance(vectors, list) or len(vectors) != len(texts):
            raise ModelServerUnavailable("the model server answered the wrong number of vectors")
        return vectors

    def classify_language(self, text: str) -> tuple[str, float]:
        """The detector's most likely language for `text` and its probability."""
        answer = self._post("/language", {"text": text})
        language, probability = answer.get("language"), answer.get("probability")
        if not isinstance(language, str) or not isinstance(probability, int | float):
            raise ModelServerUnavailable("the model server answered no language")
        return language, float(probability)

    def health(self) -> dict[str, Any]:
        try:
            response = self._http.get("/health", timeout=HEALTH_SECONDS)
        except httpx.HTTPError as exc:
            raise ModelServerUnavailable(f"the model server could not be reached: {exc}") from exc
        return self._json(response)

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.post(path, json=payload)
        except httpx.TimeoutException as exc:
            raise ModelServerUnavailable("the model server did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise ModelServerUnavailable(f"the model server could not be reached: {exc}") from exc
        return self._json(response)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise ModelServerUnavailable(f"the model server answered HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError as exc:
            raise ModelServerUnavailable("the model server did not answer JSON") from exc
        if not isinstance(document, dict):
            raise ModelServerUnavailable("the model server did not answer a JSON object")
        return document


_current: ModelClient | None = None
_lock = threading.Lock()


def configure(address: str | None) -> None:
    """Use the model server at `address` from now on in this process (None: no server, the
    process loads the models it needs itself)."""
    global _current
    with _lock:
        if _current is not None and _current.address == address:
            return
        previous, _current = _current, ModelClient(address) if address else None
    if previous is not None:
        previous.close()


def current() -> ModelClient | None:
    return _current
