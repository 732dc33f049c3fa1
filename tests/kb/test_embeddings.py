"""The embedding layer: the local models load from installed packages with no network, give
unit vectors that put paraphrases (and, for the multilingual model, translations) close; the
MiniLM forward pass matches the published reference; batches equal single texts; query vectors
are cached; the HTTP embedder works against a real local server and fails with an error class
the caller can catch."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import numpy as np
import pytest

from kb.embeddings import (
    EmbedderConfigError,
    EmbedderTimeout,
    EmbedderUnavailable,
    create_embedder,
    document_text,
    get_embedder,
)
from kb.embeddings.base import Embedder, LoadOnce
from kb.embeddings.cache import CachingEmbedder
from kb.embeddings.minilm import MiniLM
from kb.embeddings.remote import HttpEmbedder, HttpEmbedderConfig
from kb.embeddings.text import shorten
from kb.embeddings.use import UseMultilingual
from tests.conftest import loopback_http_server

MODEL_NAMES = ["use-multilingual", "minilm"]


@contextmanager
def no_network() -> Iterator[None]:
    """Any attempt to resolve a name or open a connection fails the load it happens in."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the model tried to use the network")

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(socket, "getaddrinfo", refuse)
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        yield


@pytest.fixture(scope="session")
def models() -> dict[str, Embedder]:
    """Each local model, loaded once for the session with the network cut off."""
    loaded: dict[str, Embedder] = {}
    with no_network():
        for name in MODEL_NAMES:
            embedder = create_embedder(name)
            assert isinstance(embedder, UseMultilingual | MiniLM)
            embedder.load()
            loaded[name] = embedder
    return loaded


def cosine(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    return float(a @ b)


# --- the local models ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "dimensions"), [("use-multilingual", 512), ("minilm", 384)])
def test_model_loads_offline_and_gives_unit_vectors_of_its_dimension(
    models: dict[str, Embedder], name: str, dimensions: int
) -> None:
    embedder = models[name]
    vectors = embedder.embed(["How do I reset my router?", "¿Cómo reinicio mi router?", ""])
    assert embedder.name == name
    assert embedder.dimensions == dimensions
    assert vectors.shape == (3, dimensions)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, dimensions)


def test_minilm_reproduces_the_reference_sentence_transformers_output(
    models: dict[str, Embedder],
) -> None:
    embedder = models["minilm"]
    # The similarity matrix sentence-transformers documents for these sentences under
    # all-MiniLM-L6-v2 (its README's quick start).
    vectors = embedder.embed(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    expected = [[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]]
    assert np.allclose(vectors @ vectors.T, expected, atol=1e-3)
    # The first values of the reference vector of "hello world" (the canonical values the
    # fastembed project checks its ONNX export of the same model against).
    hello = embedder.embed(["hello world", "flag embedding"])[0]
    assert np.allclose(hello[:5], [-0.034478, 0.03102, 0.00673, 0.02611, -0.039362], atol=1e-4)


def test_minilm_reads_up_to_256_word_pieces_like_the_reference(
    models: dict[str, Embedder],
) -> None:
    # The packaged tokenizer file cuts at 128 tokens; the model reads 256. Text after word
    # piece 128 must change the vector, text after 256 must not.
    embedder = models["minilm"]
    start = "my bike chain skips on the smallest cog " * 20  # about 180 word pieces
    vectors = embedder.embed(
        [start, start + "and the brakes squeal", start * 2, start * 2 + "and the brakes squeal"]
    )
    assert cosine(vectors[0], vectors[1]) < 0.99999
    assert cosine(vectors[2], vectors[3]) > 0.99999


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_paraphrases_are_closer_than_unrelated_texts(
    models: dict[str, Embedder], name: str
) -> None:
    embedder = models[name]
    query, paraphrase, unrelated, other = embedder.embed(
        [
            "How do I reset the password of my wifi router?",
            "I forgot the admin password for my wireless router, how can I change it?",
            "What temperature should I store red wine at?",
            "My bicycle chain keeps falling off when I change gear",
        ]
    )
    assert cosine(query, paraphrase) > cosine(query, unrelated) + 0.2
    assert cosine(query, paraphrase) > cosine(query, other) + 0.2


def test_multilingual_model_puts_a_spanish_question_near_its_english_twin(
    models: dict[str, Embedder],
) -> None:
    english, spanish, unrelated_es, unrelated_en = models["use-multilingual"].embed(
        [
            "How long does an opened bottle of wine keep?",
            "¿Cuánto tiempo se conserva una botella de vino abierta?",
            "¿Cómo cambio la contraseña de mi cuenta?",
            "The Alexa app does not find my smart plug",
        ]
    )
    assert cosine(english, spanish) > cosine(english, unrelated_es) + 0.3
    assert cosine(spanish, english) > cosine(spanish, unrelated_en) + 0.3


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_batch_gives_what_texts_one_by_one_give(models: dict[str, Embedder], name: str) -> None:
    embedder = models[name]
    texts = [
        "Short one",
        "A somewhat longer question about storing beer in a cold cellar for a year or two",
        "¿Se puede congelar la cerveza?",
        "wifi " * 300,  # past MiniLM's 256 word pieces
        "",
        "Short one",
    ]
    batch = embedder.embed(texts)
    single = np.stack([embedder.embed([text])[0] for text in texts])
    assert np.allclose(batch, single, atol=2e-5)
    assert np.allclose(batch[0], batch[5], atol=1e-6)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_threads_embedding_at_once_get_what_one_thread_gets(
    models: dict[str, Embedder], name: str
) -> None:
    embedder = models[name]
    texts = [f"question {n}: my router drops the connection every {n} minutes" for n in range(8)]
    expected = embedder.embed(texts)
    results: list[np.ndarray[Any, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work() -> None:
        try:
            start.wait()
            results.append(embedder.embed(texts))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    assert len(results) == 4
    for result in results:
        assert np.allclose(result, expected, atol=1e-6)


def test_a_model_loads_once_when_many_threads_ask_first() -> None:
    builds: list[int] = []
    gate = threading.Event()

    def build() -> str:
        builds.append(1)
        gate.wait(5)
        return "model"

    once = LoadOnce(build)
    values: list[str] = []
    workers = [threading.Thread(target=lambda: values.append(once.get())) for _ in range(6)]
    for worker in workers:
        worker.start()
    gate.set()
    for worker in workers:
        worker.join()
    assert values == ["model"] * 6
    assert builds == [1]


def test_a_failed_load_is_tried_again() -> None:
    attempts: list[int] = []

    def build() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise EmbedderUnavailable("package missing")
        return "model"

    once = LoadOnce(build)
    with pytest.raises(EmbedderUnavailable):
        once.get()
    assert once.get() == "model"


def test_minilm_without_its_files_is_unavailable(tmp_path: Any) -> None:
    with pytest.raises(EmbedderUnavailable, match="could not read the minilm model"):
        MiniLM(path=tmp_path).embed(["anything"])


# --- the query cache and the registry --------------------------------------------------------


def test_query_vectors_are_cached(models: dict[str, Embedder]) -> None:
    embedder = CachingEmbedder(models["use-multilingual"], query_cache_size=4)
    first = embedder.embed_query("wifi keeps dropping at night")
    again = embedder.embed_query("  wifi keeps   dropping at night ")
    assert again is first
    assert embedder.cache_info().hits == 1
    assert embedder.cache_info().misses == 1
    assert np.allclose(first, models["use-multilingual"].embed(["wifi keeps dropping at night"])[0])
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 0.0


def test_the_registry_gives_one_embedder_per_name_and_options() -> None:
    assert get_embedder("minilm") is get_embedder("minilm")
    assert get_embedder("minilm") is not get_embedder("minilm", {"threads": 2})
    assert get_embedder("use-multilingual").dimensions == 512


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("bert-large", {}, "unknown embedder 'bert-large'"),
        ("minilm", {"threads": 0}, "threads"),
        ("minilm", {"device": "cuda"}, "device"),
        ("http", {"url": "http://127.0.0.1:9/embed"}, "dimensions"),
        ("http", {"url": "ftp://example.com/x", "dimensions": 8}, "url"),
        ("http", {"url": "http://x.test/", "dimensions": 8, "timeout_seconds": 0}, "timeout"),
        ("http", {"url": "http://x.test/", "dimensions": 8, "response_path": "a..b"}, "path"),
    ],
)
def test_bad_configuration_is_a_clear_config_error(
    name: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(EmbedderConfigError, match=message):
        create_embedder(name, options)


# --- the document text -----------------------------------------------------------------------


def test_document_text_keeps_title_then_the_start_of_question_and_answer() -> None:
    text = document_text(
        "Wifi drops",
        "The   connection\ndrops every night " + "and more words " * 100,
        "Update the firmware. " * 100,
        question_chars=40,
        answer_chars=30,
    )
    title, question, answer = text.split("\n")
    assert title == "Wifi drops"
    assert question == "The connection drops every night and"
    assert answer == "Update the firmware. Update"
    assert document_text("Only a title", "", "") == "Only a title"


def test_shorten_cuts_on_a_word_boundary_or_inside_one_long_word() -> None:
    assert shorten("one two three", 9) == "one two"
    assert shorten("one two three", 13) == "one two three"
    assert shorten("x" * 50, 10) == "x" * 10


# --- the HTTP embedder against a real local server -------------------------------------------


class _EmbeddingService(BaseHTTPRequestHandler):
    """Serves vectors computed by the multilingual model, in the shape the path names."""

    model: ClassVar[Embedder]
    api_key: ClassVar[str] = "secret-key-123"
    requests: ClassVar[list[dict[str, Any]]] = []
    release: ClassVar[threading.Event] = threading.Event()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        if self.headers.get("Authorization") != f"Bearer {self.api_key}":
            self._send(401, {"error": "unauthorized"})
            return
        texts = body.get("texts") or body.get("input") or []
        vectors = [[float(v) for v in row] for row in self.model.embed(texts)]
        match self.path:
            case "/texts":
                self._send(200, {"embeddings": vectors})
            case "/openai":
                data = [
                    {"object": "embedding", "index": i, "embedding": v}
                    for i, v in enumerate(vectors)
                ]
                self._send(200, {"object": "list", "data": data, "model": body.get("model")})
            case "/unnormalised":
                self._send(200, {"result": {"vectors": [[3 * v for v in row] for row in vectors]}})
            case "/slow":
                self.release.wait(5)
                self._send(200, {"embeddings": vectors})
            case "/trickle":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                payload = json.dumps({"embeddings": vectors}).encode()
                for start in range(0, len(payload), 200):
                    self.wfile.write(payload[start : start + 200])
                    self.wfile.flush()
                    if self.release.wait(0.05):
                        break
            case "/error":
                self._send(500, {"error": "model crashed"})
            case "/wrong-dimensions":
                self._send(200, {"embeddings": [row[:100] for row in vectors]})
            case "/wrong-count":
                self._send(200, {"embeddings": vectors[:-1]})
            case "/zeros":
                self._send(200, {"embeddings": [[0.0] * 512 for _ in vectors]})
            case "/strings":
                self._send(200, {"embeddings": [[str(v) for v in row] for row in vectors]})
            case _:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<html>not an embedding service</html>")

    def _send(self, status: int, document: Any) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def service(models: dict[str, Embedder]) -> Iterator[str]:
    _EmbeddingService.model = models["use-multilingual"]
    _EmbeddingService.release = threading.Event()
    try:
        with loopback_http_server(_EmbeddingService) as port:
            yield f"http://127.0.0.1:{port}"
    finally:
        _EmbeddingService.release.set()


def http_embedder(service: str, path: str, **options: Any) -> HttpEmbedder:
    config: dict[str, Any] = {
        "url": service + path,
        "dimensions": 512,
        "headers": {"Authorization": f"Bearer {_EmbeddingService.api_key}"},
        "timeout_seconds": 5,
        "allow_private": True,  # the service is on loopback
    } | options
    embedder = create_embedder("http", config)
    assert isinstance(embedder, HttpEmbedder)
    return embedder


TEXTS = ["Is my beer still good after a year?", "¿Cómo conecto Alexa a la red wifi?", "Flat tyre"]


def test_http_embedder_gets_the_services_vectors(service: str, models: dict[str, Embedder]) -> None:
    embedder = http_embedder(service, "/texts")
    vectors = embedder.embed(TEXTS)
    assert embedder.name == "http"
    assert vectors.shape == (3, 512)
    assert vectors.dtype == np.float32
    assert np.allclose(vectors, models["use-multilingual"].embed(TEXTS), atol=1e-6)
    sent = _EmbeddingService.requests[-1]
    assert sent["body"] == {"texts": TEXTS}


def test_http_embedder_speaks_the_openai_shape_with_a_model_name(
    service: str, models: dict[str, Embedder]
) -> None:
    embedder = http_embedder(service, "/openai", request_format="openai", model="brand-embed-v2")
    vectors = embedder.embed(TEXTS)
    assert np.allclose(vectors, models["use-multilingual"].embed(TEXTS), atol=1e-6)
    assert _EmbeddingService.requests[-1]["body"] == {"input": TEXTS, "model": "brand-embed-v2"}


def test_http_embedder_follows_a_response_path_and_normalises(
    service: str, models: dict[str, Embedder]
) -> None:
    embedder = http_embedder(service, "/unnormalised", response_path="result.vectors")
    vectors = embedder.embed(TEXTS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors, models["use-multilingual"].embed(TEXTS), atol=1e-6)


def test_http_embedder_sends_documents_in_batches_and_keeps_their_order(
    service: str, models: dict[str, Embedder]
) -> None:
    texts = [f"document {n} about cold brew coffee and beer" for n in range(5)]
    before = len(_EmbeddingService.requests)
    vectors = http_embedder(service, "/texts", batch_size=2).embed(texts)
    batches = [r["body"]["texts"] for r in _EmbeddingService.requests[before:]]
    assert batches == [texts[0:2], texts[2:4], texts[4:5]]
    assert np.allclose(vectors, models["use-multilingual"].embed(texts), atol=1e-6)


def test_http_query_vectors_are_cached(service: str) -> None:
    embedder = CachingEmbedder(http_embedder(service, "/texts"))
    before = len(_EmbeddingService.requests)
    first = embedder.embed_query("alexa does not find my plug")
    assert embedder.embed_query("alexa does not find my plug") is first
    assert len(_EmbeddingService.requests) == before + 1


def test_http_embedder_gives_up_at_its_timeout(service: str) -> None:
    embedder = http_embedder(service, "/slow", timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(EmbedderTimeout, match=r"did not answer within 0\.3 s"):
        embedder.embed(TEXTS)
    assert time.monotonic() - started < 2


def test_http_embedder_cuts_off_an_answer_that_trickles_in(service: str) -> None:
    # Each chunk arrives well within the timeout; the whole answer would not.
    embedder = http_embedder(service, "/trickle", timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(EmbedderTimeout):
        embedder.embed(TEXTS)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("path", "options", "message"),
    [
        ("/error", {}, "answered HTTP 500"),
        ("/texts", {"headers": {}}, "answered HTTP 401"),
        ("/texts", {"headers": {"Authorization": "Bearer wrong"}}, "answered HTTP 401"),
        ("/wrong-dimensions", {}, "answered other than 512 numbers per text"),
        ("/wrong-count", {}, "answered 2 vectors at 'embeddings' for 3 texts"),
        ("/zeros", {}, "all-zero vector"),
        ("/strings", {}, "answered other than 512 numbers per text"),
        ("/html", {}, "did not answer JSON"),
        ("/texts", {"response_path": "data.*.embedding"}, "answered no vectors"),
        ("/texts", {"dimensions": 4}, "sent more than"),
    ],
)
def test_http_embedder_failures_are_one_catchable_error(
    service: str, path: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(EmbedderUnavailable, match=message):
        http_embedder(service, path, **options).embed(TEXTS)


def test_http_embedder_without_a_service_is_unavailable() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = HttpEmbedderConfig.model_validate(
        {
            "url": f"http://127.0.0.1:{port}/embed",
            "dimensions": 512,
            "timeout_seconds": 2,
            "allow_private": True,
        }
    )
    with pytest.raises(EmbedderUnavailable, match="could not be reached"):
        HttpEmbedder(config).embed(TEXTS)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "10.0.0.1"])
def test_http_embedder_refuses_private_addresses_unless_allowed(service: str, host: str) -> None:
    """Checked before every request like a webhook (a service whose name now resolves inside,
    or whose admin turned the testing switch off, gets nothing)."""
    port = service.rsplit(":", 1)[1]
    before = len(_EmbeddingService.requests)
    embedder = http_embedder(f"http://{host}:{port}", "/texts", allow_private=False)
    with pytest.raises(EmbedderUnavailable, match=r"is refused: .*private, loopback or reserved"):
        embedder.embed(TEXTS)
    assert len(_EmbeddingService.requests) == before
