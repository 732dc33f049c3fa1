"""The model server: one process that holds the models web processes would otherwise each load
(the semantic search models, the language detector) and answers them over a Unix socket or
loopback HTTP (`community model-server`; `community serve --workers N` starts one for its web
processes). The client is community.core.model_client.

    POST /embed     {"model": "minilm", "options": {}, "texts": [...]} -> {"vectors": [[...]]}
    POST /language  {"text": "..."}                   -> {"language": "es", "probability": 1.0}
    GET  /health                                      -> {"status": "ok", "loaded": [...]}

It serves this machine's own processes and nothing else: no authentication, so it listens on a
socket only the same user can open, or on loopback. Requests are bounded (texts, lengths) like
any input, and a bad one is a 422 that changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from community.core import language
from kb import embeddings
from kb.embeddings import EmbedderConfigError, EmbedderUnavailable, get_embedder
from kb.vectors import AUTO, OFF

logger = logging.getLogger(__name__)

MAX_TEXTS = 64
# A query or a document's embedded text (kb.embeddings.text bounds documents far below this).
MAX_TEXT_CHARS = 20_000

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
Parsed = TypeVar("Parsed", bound=BaseModel)


class EmbedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(max_length=60)
    options: dict[str, Any] = Field(default_factory=dict)
    texts: list[Text] = Field(min_length=1, max_length=MAX_TEXTS)


class LanguageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text


def _problem(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def _body(request: Request, schema: type[Parsed]) -> Parsed | JSONResponse:
    try:
        return schema.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        return _problem(422, errors)


async def embed(request: Request) -> JSONResponse:
    parsed = await _body(request, EmbedRequest)
    if isinstance(parsed, JSONResponse):
        return parsed
    if parsed.model == embeddings.HTTP:
        # A brand's own service is called by the web process directly: never relayed from here.
        return _problem(422, "the model server runs local models only")
    try:
        embedder = get_embedder(parsed.model, parsed.options)
    except EmbedderConfigError as exc:
        return _problem(422, str(exc))
    texts = parsed.texts
    try:
        if len(texts) == 1:  # a query: the embedder's cache answers repeats
            rows = [await run_in_threadpool(embedder.embed_query, texts[0])]
        else:
            rows = list(await run_in_threadpool(embedder.embed, texts))
    except EmbedderUnavailable as exc:
        return _problem(503, str(exc))
    return JSONResponse({"vectors": [[float(value) for value in row] for row in rows]})


async def detect(request: Request) -> JSONResponse:
    parsed = await _body(request, LanguageRequest)
    if isinstance(parsed, JSONResponse):
        return parsed
    found, probability = await run_in_threadpool(language.classify_here, parsed.text)
    return JSONResponse({"language": found, "probability": float(probability)})


_loaded: list[str] = []


async def health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "loaded": list(_loaded)})


def models_of(search_model: str) -> list[str]:
    """The local models a site default needs (what to load before the first request asks)."""
    if search_model == OFF:
        return []
    if search_model == AUTO:
        return [embeddings.MINILM, embeddings.USE_MULTILINGUAL]
    return [search_model] if search_model != embeddings.HTTP else []


def _warm(models: Iterable[str]) -> None:
    """Load the detector and the site's models now, so no visitor's search waits for them."""
    language.classify_here("warm up the language detector before the first question arrives")
    _loaded.append("language")
    for name in models:
        try:
            get_embedder(name).embed_query("warm up")
        except (EmbedderConfigError, EmbedderUnavailable) as exc:
            logger.warning("model server: %s not loaded: %s", name, exc)
            continue
        _loaded.append(name)


def create_model_app(search_model: str) -> Starlette:
    models = models_of(search_model)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        threading.Thread(target=_warm, args=(models,), name="warm-models", daemon=True).start()
        yield

    return Starlette(
        routes=[
            Route("/embed", embed, methods=["POST"]),
            Route("/language", detect, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
