"""A brand's own embedding service over HTTP, for models larger than this machine should run.

Two request shapes: `{"texts": [...]}` (the default) or OpenAI's `{"input": [...]}`, each with
`"model"` when one is configured; the vectors are found in the JSON answer by a dotted path
(`embeddings`, or `data.*.embedding` for OpenAI's shape; `*` walks a list). Every failure
(refused connection, timeout, an error status, an answer that is not the vectors asked for)
is an `EmbedderUnavailable`, so the caller falls back to lexical search.

The service's address is checked like a webhook's (community.core.netguard) before every request:
one that resolves to a private, loopback or reserved address is refused unless the brand's
admin allowed private addresses, and the request goes to the address that was checked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Literal

import httpx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from community.core import netguard, tls
from kb.embeddings.base import Vectors, no_vectors, normalise_rows
from kb.embeddings.errors import EmbedderTimeout, EmbedderUnavailable

DEFAULT_RESPONSE_PATHS = {"texts": "embeddings", "openai": "data.*.embedding"}
# The longest a number in a JSON vector takes ("-0.0123456789012345678,"): bounds the answer
# read from a service before parsing, so a broken one cannot fill the memory.
_BYTES_PER_NUMBER = 32


class HttpEmbedderConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: HttpUrl
    dimensions: int = Field(ge=1, le=8192)
    # Sent with every request, e.g. {"Authorization": "Bearer ..."}; never logged.
    headers: dict[str, str] = Field(default_factory=dict)
    model: str | None = Field(default=None, max_length=200)
    request_format: Literal["texts", "openai"] = "texts"
    response_path: str | None = Field(
        default=None, max_length=200, pattern=r"^[\w*-]+(\.[\w*-]+)*$"
    )
    # Bounds each wait on the network and also the whole answer's arrival, so a service that
    # trickles its answer byte by byte is cut off too.
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    batch_size: int = Field(default=64, ge=1, le=2048)
    name: str = Field(default="http", min_length=1, max_length=60)
    # A service on the private network (or this machine, in tests): off unless the admin says so.
    allow_private: bool = False

    @model_validator(mode="after")
    def _default_path(self) -> HttpEmbedderConfig:
        if self.response_path is None:
            object.__setattr__(self, "response_path", DEFAULT_RESPONSE_PATHS[self.request_format])
        return self


class HttpEmbedder:
    def __init__(self, config: HttpEmbedderConfig) -> None:
        self.config = config
        # httpx's Client is safe to share between threads; one keeps connections alive.
        self._client = httpx.Client(
            headers=config.headers, follow_redirects=False, verify=tls.client_context()
        )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def dimensions(self) -> int:
        return self.config.dimensions

    def close(self) -> None:
        self._client.close()

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return no_vectors(self.dimensions)
        size = self.config.batch_size
        parts = [self._request(list(texts[i : i + size])) for i in range(0, len(texts), size)]
        return normalise_rows(np.concatenate(parts), source=self._source)

    @property
    def _source(self) -> str:
        return f"the embedding service at {self.config.url}"

    @property
    def _too_slow(self) -> str:
        return f"{self._source} did not answer within {self.config.timeout_seconds:g} s"

    def _request(self, texts: list[str]) -> Vectors:
        config = self.config
        key = "texts" if config.request_format == "texts" else "input"
        payload: dict[str, Any] = {key: texts}
        if config.model:
            payload["model"] = config.model
        limit = 4096 + len(texts) * (config.dimensions * _BYTES_PER_NUMBER + 256)
        deadline = time.monotonic() + config.timeout_seconds
        url, headers, extensions = self._destination()
        try:
            with self._client.stream(
                "POST",
                url,
                json=payload,
                headers=headers,
                extensions=extensions,
                timeout=config.timeout_seconds,
            ) as response:
                if response.status_code != 200:
                    raise EmbedderUnavailable(
                        f"{self._source} answered HTTP {response.status_code}"
                    )
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise EmbedderUnavailable(f"{self._source} sent more than {limit} bytes")
                    if time.monotonic() > deadline:
                        raise EmbedderTimeout(self._too_slow)
        except httpx.TimeoutException as exc:
            raise EmbedderTimeout(self._too_slow) from exc
        except httpx.HTTPError as exc:
            raise EmbedderUnavailable(f"{self._source} could not be reached: {exc}") from exc
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise EmbedderUnavailable(f"{self._source} did not answer JSON") from exc
        vectors = _find(document, str(config.response_path).split("."))
        if not isinstance(vectors, list) or len(vectors) != len(texts):
            count = len(vectors) if isinstance(vectors, list) else "no"
            raise EmbedderUnavailable(
                f"{self._source} answered {count} vectors at {config.response_path!r} "
                f"for {len(texts)} texts"
            )
        if any(
            not isinstance(row, list)
            or len(row) != config.dimensions
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in row)
            for row in vectors
        ):
            raise EmbedderUnavailable(
                f"{self._source} answered other than {config.dimensions} numbers per text"
            )
        return np.asarray(vectors, dtype=np.float32)

    def _destination(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        """Where to send a request: the URL as configured when private addresses are allowed
        (nothing to guard), else the checked public address with the host name kept."""
        if self.config.allow_private:
            return str(self.config.url), {}, {}
        try:
            target = netguard.parse_url(
                str(self.config.url),
                missing="no URL",
                credentials="a user name or password in the URL",
            )
            address = netguard.checked_addresses(target, allow_private=False)[0]
        except netguard.Refused as exc:
            raise EmbedderUnavailable(f"{self._source} is refused: {exc}") from exc
        pinned = netguard.pinned(target, address)
        return pinned.url, pinned.headers, pinned.extensions


def _find(document: Any, path: list[str]) -> Any:
    """The value at a dotted path; `*` maps the rest of the path over a list."""
    if not path:
        return document
    head, rest = path[0], path[1:]
    if head == "*":
        if not isinstance(document, list):
            return None
        return [_find(item, rest) for item in document]
    if isinstance(document, dict):
        return _find(document.get(head), rest) if head in document else None
    return None
