"""A brand's semantic search model, chosen by its admins on the search settings page, through the
API or with `community search-model`: every choice saves, bad input and internal addresses are
refused with nothing changed, only admins may, the service's secret header never comes back,
and the worker gives the brand's Meilisearch indexes the new embedders and every document its
vectors (and takes them away for "off"). /readyz says when the model fails, and stays ready."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from community.cli import app as cli_app
from community.core.audit import AuditLog
from community.core.db import make_session_factory
from community.core.models import Brand, Forum, Role, User
from community.core.outbox import OutboxEvent
from community.core.settings import Settings
from community.worker import Worker
from kb import vectors
from kb.embeddings.health import health
from kb.search import SearchEngine
from kb.search_model import MODEL_CHANGED, validate_model
from tests.conftest import MEILI_TEST_KEY, QA, csrf_token, drain, fresh, loopback_http_server

UserFactory = Callable[..., User]
AsRole = Callable[[Role | None], tuple[TestClient, User | None]]

PAGE = "/admin/brands/acme/search"
SAVE = "/admin/brands/acme/search/model"
API = "/api/v1/brands/acme/search-model"
DIMENSIONS = 8
SECRET = "Bearer s3cr3t-key-4f9a"
OTHER_SECRET = "Bearer another-key-77"


# --- a brand's own embedding service: a real HTTP server on loopback ------------------------------


def _vector(text: str) -> list[float]:
    """A fixed vector per text (never all zeros): the same text always gets the same one."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(byte - 127.5) / 127.5 for byte in digest[:DIMENSIONS]]


@dataclass
class EmbeddingService:
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/embed") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def service() -> Iterator[EmbeddingService]:
    """Answers {"embeddings": [...]} on /embed, OpenAI's shape on /openai, HTTP 500 on /error."""
    state = EmbeddingService()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            with state.lock:
                state.requests.append({"path": self.path, "headers": dict(self.headers)})
            texts = body.get("texts") or body.get("input") or []
            path = self.path.split("?", 1)[0]
            if path == "/error":
                self._send(500, {"error": "the model crashed"})
            elif path == "/openai":
                data = [{"index": i, "embedding": _vector(t)} for i, t in enumerate(texts)]
                self._send(200, {"data": data})
            else:
                self._send(200, {"embeddings": [_vector(text) for text in texts]})

        def _send(self, status: int, document: Any) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with loopback_http_server(Handler) as port:
        state.port = port
        yield state


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def admin(as_role: AsRole, forum: Forum) -> TestClient:
    browser, _user = as_role(Role.ADMIN)
    return browser


@pytest.fixture
def worker(settings: Settings, engine: Engine) -> Worker:
    return Worker(settings, make_session_factory(engine))


def _http_form(service: EmbeddingService, path: str = "/embed", **extra: str) -> dict[str, str]:
    return {
        "search_model": "http",
        "url": service.url(path),
        "dimensions": str(DIMENSIONS),
        "request_format": "texts",
        "response_path": "",
        "model": "brand-embed-v2",
        "timeout_seconds": "3",
        "batch_size": "16",
        "allow_private": "1",
    } | extra


def _save(browser: TestClient, form: dict[str, str]) -> Any:
    return browser.post(
        SAVE, data={"csrf_token": csrf_token(browser, PAGE)} | form, follow_redirects=False
    )


def _api_put(browser: TestClient, body: dict[str, Any]) -> Any:
    return browser.put(API, json=body, headers={"X-CSRF-Token": csrf_token(browser, PAGE)})


def _brand(db: Session) -> Brand:
    fresh(db)
    return db.scalars(select(Brand).where(Brand.slug == "acme")).one()


def _key(db: Session) -> str:
    """The embedder name of the brand's HTTP service (kb.vectors' spec key)."""
    spec = validate_model("http", _brand(db).search_model_options)
    assert spec is not None
    return spec.key


def _events(db: Session, kind: str) -> list[OutboxEvent]:
    fresh(db)
    return list(
        db.scalars(select(OutboxEvent).where(OutboxEvent.kind == kind).order_by(OutboxEvent.id))
    )


def _audits(db: Session) -> list[AuditLog]:
    fresh(db)
    return list(
        db.scalars(
            select(AuditLog).where(AuditLog.action == "brand.search_model").order_by(AuditLog.id)
        )
    )


def _meili(settings: Settings, path: str) -> Any:
    assert settings.meili_url
    response = httpx.get(
        f"{settings.meili_url}{path}", headers={"Authorization": f"Bearer {MEILI_TEST_KEY}"}
    )
    response.raise_for_status()
    return response.json()


def _embedders(settings: Settings) -> dict[str, Any]:
    uid = SearchEngine(settings).threads_index("acme")
    return dict(_meili(settings, f"/indexes/{uid}/settings/embedders"))


def _document_vectors(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each thread document's `_vectors` as Meilisearch holds them."""
    uid = SearchEngine(settings).threads_index("acme")
    documents = _meili(settings, f"/indexes/{uid}/documents?retrieveVectors=true&limit=100")
    return {document["id"]: document.get("_vectors") or {} for document in documents["results"]}


def _threads(qa: QA, make_user: UserFactory, count: int = 3) -> list[int]:
    asker, helper = make_user("asker"), make_user("helper")
    made = []
    for title in [
        "Router reboots every night at midnight",
        "La fibra va muy lenta por la noche",
        "Voicemail greeting will not save",
    ][:count]:
        thread = qa.ask(asker, title=title)
        qa.answer(helper, thread)
        made.append(thread.id)
    return made


# --- the settings page ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "stored"),
    [
        ("", None),
        ("auto", "auto"),
        ("use-multilingual", "use-multilingual"),
        ("minilm", "minilm"),
        ("off", "off"),
        ("http", "http"),
    ],
)
def test_the_admin_saves_each_choice(
    admin: TestClient, db: Session, service: EmbeddingService, choice: str, stored: str | None
) -> None:
    if choice == "":  # from another choice, so that the site default is a change too
        _brand(db).search_model = "off"
        db.commit()
    form = _http_form(service) if choice == "http" else {"search_model": choice}
    saved = _save(admin, form)
    assert saved.status_code == 303, saved.text[:2000]
    brand = _brand(db)
    assert brand.search_model == stored
    if choice == "http":
        assert brand.search_model_options == {
            "url": service.url(),
            "dimensions": DIMENSIONS,
            "request_format": "texts",
            "model": "brand-embed-v2",
            "timeout_seconds": 3.0,
            "batch_size": 16,
            "allow_private": True,
        }
    else:
        assert brand.search_model_options == {}
    page = admin.get(PAGE).text
    assert f'<option value="{choice}" selected>' in page
    (audit,) = _audits(db)
    assert audit.after is not None and audit.after["search_model"] == (stored or "default")
    assert audit.actor_role == "admin"


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"search_model": "bert-large"}, "search_model", "Choose one of the offered models"),
        ({"search_model": "http", "url": ""}, "url", "Enter the URL of your embedding service"),
        ({"search_model": "http", "url": "ftp://8.8.8.8/embed"}, "url", "http:// or https://"),
        (
            {"search_model": "http", "url": "http://user:pw@8.8.8.8/embed"},
            "url",
            "use the Authorization header",
        ),
        ({"search_model": "http", "dimensions": "0"}, "dimensions", "from 1 to 8192"),
        ({"search_model": "http", "dimensions": "abc"}, "dimensions", "from 1 to 8192"),
        ({"search_model": "http", "dimensions": "١٢"}, "dimensions", "from 1 to 8192"),
        ({"search_model": "http", "dimensions": "9000"}, "dimensions", "from 1 to 8192"),
        ({"search_model": "http", "request_format": "xml"}, "request_format", "request formats"),
        ({"search_model": "http", "response_path": "a..b"}, "response_path", "separated by dots"),
        ({"search_model": "http", "timeout_seconds": "0"}, "timeout_seconds", "above 0"),
        ({"search_model": "http", "timeout_seconds": "nan"}, "timeout_seconds", "above 0"),
        ({"search_model": "http", "timeout_seconds": "500"}, "timeout_seconds", "at most 120"),
        ({"search_model": "http", "batch_size": "0"}, "batch_size", "from 1 to 2048"),
        ({"search_model": "http", "model": "m" * 250}, "model", "At most 200"),
        (
            {"search_model": "http", "authorization": "Bearer a\nX-Other: b"},
            "authorization",
            "printable characters only",
        ),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_changes_nothing(
    admin: TestClient,
    db: Session,
    service: EmbeddingService,
    form: dict[str, str],
    field: str,
    message: str,
) -> None:
    typed = _http_form(service) | form if form["search_model"] == "http" else form
    refused = _save(admin, typed)
    assert refused.status_code == 422
    assert f'id="error-{field}"' in refused.text
    assert message in refused.text
    brand = _brand(db)
    assert (brand.search_model, brand.search_model_options) == (None, {})
    assert _events(db, MODEL_CHANGED) == []
    assert _events(db, vectors.VECTORS_NEEDED) == []
    assert _audits(db) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/embed",
        "http://localhost/embed",
        "http://10.1.2.3/embed",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/embed",
    ],
)
def test_internal_addresses_are_refused_unless_allowed_for_testing(
    admin: TestClient, db: Session, service: EmbeddingService, url: str
) -> None:
    form = _http_form(service) | {"url": url}
    del form["allow_private"]
    refused = _save(admin, form)
    assert refused.status_code == 422
    assert "private, loopback or reserved address" in refused.text
    api = _api_put(admin, {"model": "http", "http": {"url": url, "dimensions": DIMENSIONS}})
    assert api.status_code == 422
    assert "private" in api.json()["error"]["details"]["url"]
    brand = _brand(db)
    assert (brand.search_model, brand.search_model_options) == (None, {})
    assert _audits(db) == []
    # The same address with the testing switch on is taken.
    assert _save(admin, form | {"allow_private": "1"}).status_code == 303


@pytest.mark.parametrize("role", [None, Role.MEMBER, Role.MODERATOR, Role.AGENT])
def test_only_admins_see_or_change_the_model(
    as_role: AsRole, forum: Forum, role: Role | None, db: Session
) -> None:
    browser, _user = as_role(role)
    token = csrf_token(browser, "/")
    page = browser.get(PAGE, follow_redirects=False)
    posted = browser.post(
        SAVE, data={"csrf_token": token, "search_model": "off"}, follow_redirects=False
    )
    read = browser.get(API)
    written = browser.put(API, json={"model": "off"}, headers={"X-CSRF-Token": token})
    if role is None:
        assert page.status_code == posted.status_code == 303  # to the login page
        assert read.status_code == written.status_code == 401
    else:
        assert page.status_code == posted.status_code == 403
        assert read.status_code == written.status_code == 403
    assert _brand(db).search_model is None
    assert _events(db, MODEL_CHANGED) == []


def test_changes_need_the_csrf_token(admin: TestClient, db: Session) -> None:
    assert admin.post(SAVE, data={"search_model": "off"}).status_code == 403
    assert admin.put(API, json={"model": "off"}).status_code == 403
    assert _brand(db).search_model is None


def test_the_secret_header_is_stored_and_never_shown(
    admin: TestClient, db: Session, service: EmbeddingService
) -> None:
    assert _save(admin, _http_form(service, authorization=SECRET)).status_code == 303
    brand = _brand(db)
    assert brand.search_model_options["headers"] == {"Authorization": SECRET}
    page = admin.get(PAGE).text
    assert SECRET not in page and "s3cr3t" not in page
    assert 'id="authorization-status">Authorization header: <strong>set</strong>' in page
    described = admin.get(API).json()
    assert described["authorization_set"] is True
    assert "s3cr3t" not in json.dumps(described)
    # A form sent back with a mistake does not echo the secret typed with it.
    refused = _save(admin, _http_form(service, authorization=OTHER_SECRET, dimensions="x"))
    assert refused.status_code == 422
    assert "another-key" not in refused.text and "s3cr3t" not in refused.text
    # An empty field keeps it; a new value replaces it; the checkbox removes it.
    assert _save(admin, _http_form(service, timeout_seconds="4")).status_code == 303
    assert _brand(db).search_model_options["headers"] == {"Authorization": SECRET}
    assert _save(admin, _http_form(service, authorization=OTHER_SECRET)).status_code == 303
    assert _brand(db).search_model_options["headers"] == {"Authorization": OTHER_SECRET}
    assert _save(admin, _http_form(service, clear_authorization="1")).status_code == 303
    assert "headers" not in _brand(db).search_model_options
    assert "Authorization header: <strong>not set</strong>" in admin.get(PAGE).text
    # The audit trail says a secret was set, never which.
    trail = json.dumps([[row.before, row.after] for row in _audits(db)])
    assert "s3cr3t" not in trail and "another-key" not in trail
    assert '"authorization": "set"' in trail
    # Nor does the audit page.
    audit_page = admin.get("/mod/audit")
    assert audit_page.status_code == 200
    assert "s3cr3t" not in audit_page.text and "another-key" not in audit_page.text


def test_the_api_reads_and_writes_the_same_setting(
    admin: TestClient, db: Session, service: EmbeddingService
) -> None:
    initial = admin.get(API).json()
    assert initial["model"] is None and initial["site_default"] == "off"
    assert initial["embedders"] == [] and initial["http"] is None
    http: dict[str, Any] = {
        "url": service.url("/openai"),
        "dimensions": DIMENSIONS,
        "request_format": "openai",
        "allow_private": True,
        "authorization": SECRET,
    }
    body = {"model": "http", "http": http}
    written = _api_put(admin, body)
    assert written.status_code == 200, written.text
    answer = written.json()
    assert "s3cr3t" not in written.text
    assert answer["model"] == "http" and answer["authorization_set"] is True
    assert answer["http"] == {
        "url": service.url("/openai"),
        "dimensions": DIMENSIONS,
        "request_format": "openai",
        "response_path": None,
        "model": None,
        "timeout_seconds": 5.0,
        "batch_size": 64,
        "allow_private": True,
    }
    assert answer["embedders"] == [_key(db)]
    assert answer["coverage"] == {
        "models": answer["embedders"],
        "documents": 0,
        "with_vectors": 0,
        "complete": True,
    }
    # Left out: the secret is kept; "": removed.
    http.pop("authorization")
    assert "headers" in _brand(db).search_model_options
    assert _api_put(admin, body).json()["authorization_set"] is True
    http["authorization"] = ""
    assert _api_put(admin, body).json()["authorization_set"] is False
    for bad in (
        {"model": "bert-large"},
        {"model": "http"},
        {"model": "http", "http": {"url": service.url(), "dimensions": 0, "allow_private": True}},
        {"model": "http", "http": {"url": service.url(), "dimensions": "many"}},
        {"model": "off", "extra": 1},
        {},
    ):
        refused = _api_put(admin, bad)
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["code"] == "invalid_input"
    assert _brand(db).search_model == "http"
    assert _api_put(admin, {"model": None}).json()["model"] is None


# --- saving: the events, then the worker and Meilisearch ------------------------------------------


def test_saving_a_model_queues_the_index_settings_then_the_vectors(
    admin: TestClient, db: Session, qa: QA, make_user: UserFactory
) -> None:
    threads = _threads(qa, make_user)
    fresh(db)
    before = db.scalar(select(func.max(OutboxEvent.id))) or 0
    assert _save(admin, {"search_model": "use-multilingual"}).status_code == 303
    (settings_event,) = [e for e in _events(db, MODEL_CHANGED) if e.id > before]
    assert settings_event.payload == {"brand_id": _brand(db).id}
    wanted = [e for e in _events(db, vectors.VECTORS_NEEDED) if e.id > before]
    assert sorted(e.payload["thread_id"] for e in wanted) == sorted(threads)
    # The worker handles the settings first: the embedder exists when the vectors arrive.
    assert all(settings_event.id < event.id for event in wanted)
    # The same choice again changes nothing and queues nothing.
    again = _save(admin, {"search_model": "use-multilingual"})
    assert again.status_code == 303
    assert len(_events(db, vectors.VECTORS_NEEDED)) == len(wanted)
    assert len(_audits(db)) == 1


def test_the_worker_gives_the_index_the_embedder_and_every_document_its_vector(
    admin: TestClient,
    db: Session,
    qa: QA,
    make_user: UserFactory,
    worker: Worker,
    settings: Settings,
) -> None:
    threads = _threads(qa, make_user)
    drain(worker)  # the suite's default is "off": lexical only
    assert _embedders(settings) == {}
    assert "3 of 3 documents" not in admin.get(PAGE).text

    assert _save(admin, {"search_model": "use-multilingual"}).status_code == 303
    assert "0 of 3 documents have vectors" in admin.get(PAGE).text
    drain(worker)
    assert _embedders(settings) == {
        "use_multilingual": {"source": "userProvided", "dimensions": 512}
    }
    documents = _document_vectors(settings)
    assert sorted(documents) == sorted(str(thread) for thread in threads)
    for held in documents.values():
        (embedding,) = held["use_multilingual"]["embeddings"]
        assert len(embedding) == 512
    assert "3 of 3 documents have vectors" in admin.get(PAGE).text

    # Off: the embedder leaves the indexes.
    assert _save(admin, {"search_model": "off"}).status_code == 303
    drain(worker)
    assert _embedders(settings) == {}
    assert "lexical only" in admin.get(PAGE).text

    # Back on: the stored vectors go to the new embedder without computing them again.
    assert _save(admin, {"search_model": "use-multilingual"}).status_code == 303
    drain(worker)
    assert set(_embedders(settings)) == {"use_multilingual"}
    assert all(
        len(held["use_multilingual"]["embeddings"]) == 1
        for held in _document_vectors(settings).values()
    )


def test_a_brands_own_service_embeds_the_documents_with_its_secret_header(
    admin: TestClient,
    db: Session,
    qa: QA,
    make_user: UserFactory,
    worker: Worker,
    settings: Settings,
    service: EmbeddingService,
) -> None:
    threads = _threads(qa, make_user)
    drain(worker)
    assert _save(admin, _http_form(service, authorization=SECRET)).status_code == 303
    drain(worker)
    key = _key(db)
    assert _embedders(settings) == {key: {"source": "userProvided", "dimensions": DIMENSIONS}}
    documents = _document_vectors(settings)
    assert sorted(documents) == sorted(str(thread) for thread in threads)
    for held in documents.values():
        (embedding,) = held[key]["embeddings"]
        assert len(embedding) == DIMENSIONS
    assert service.requests
    assert all(request["headers"]["Authorization"] == SECRET for request in service.requests)

    # Switching to another model replaces the embedder.
    assert _save(admin, {"search_model": "use-multilingual"}).status_code == 303
    drain(worker)
    assert set(_embedders(settings)) == {"use_multilingual"}


# --- /readyz --------------------------------------------------------------------------------------


def test_readyz_says_when_the_model_fails_and_stays_ready(
    admin: TestClient,
    client: TestClient,
    db: Session,
    qa: QA,
    make_user: UserFactory,
    worker: Worker,
    service: EmbeddingService,
) -> None:
    _threads(qa, make_user)
    assert client.get("/readyz").json()["checks"]["embedder"] == "ok"
    assert _save(admin, _http_form(service, "/error?key=hidden-in-url")).status_code == 303
    drain(worker)  # the vectors cannot be computed: they wait, lexical search goes on
    key = _key(db)
    health.worked(key)  # the worker's failure: this test is about the search's
    try:
        assert client.get("/readyz").json()["checks"]["embedder"] == "ok"
        page = client.get("/b/acme/search", params={"q": "router reboots", "scope": "community"})
        assert page.status_code == 200
        assert "every night at midnight" in page.text  # found by its words
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ok"
        check = ready.json()["checks"]["embedder"]
        assert check.startswith(f"degraded: {key}: ")
        assert "answered HTTP 500" in check
        assert "hidden-in-url" not in check  # a URL's query may hold a key: not on a public probe
        # A working service again: the next search clears it.
        assert _save(admin, _http_form(service)).status_code == 303
        client.get("/b/acme/search", params={"q": "router reboots", "scope": "community"})
        assert client.get("/readyz").json()["checks"]["embedder"] == "ok"
    finally:
        health.worked(key)


# --- the command line -----------------------------------------------------------------------------


def test_the_command_line_sets_the_model_with_the_same_checks(
    cli_env: None, db: Session, forum: Forum, qa: QA, make_user: UserFactory
) -> None:
    runner = CliRunner()
    _threads(qa, make_user, count=2)
    shown = runner.invoke(cli_app, ["search-model", "acme"])
    assert shown.exit_code == 0, shown.output
    assert "acme: default (auto)" in shown.output

    refused = runner.invoke(
        cli_app,
        ["search-model", "acme", "http", "-o", "url=http://10.0.0.1/embed", "-o", "dimensions=8"],
    )
    assert refused.exit_code == 1
    assert "private, loopback or reserved" in refused.output
    assert "Traceback" not in refused.output
    for wrong in (["bert"], ["http", "-o", "colour=blue"], ["minilm", "-o", "url=x"]):
        result = runner.invoke(cli_app, ["search-model", "acme", *wrong])
        assert result.exit_code == 1, wrong
        assert result.output.startswith("error:"), result.output
    assert runner.invoke(cli_app, ["search-model", "nope", "off"]).exit_code == 1
    assert _brand(db).search_model is None

    saved = runner.invoke(
        cli_app,
        [
            "search-model", "acme", "http", "-o", "url=http://127.0.0.1:9/embed",
            "-o", "dimensions=8", "-o", "allow_private=yes", "--authorization", SECRET,
        ],
    )  # fmt: skip
    assert saved.exit_code == 0, saved.output
    assert "2 documents queued for vectors" in saved.output
    assert "Authorization header set" in saved.output
    assert "s3cr3t" not in saved.output
    brand = _brand(db)
    assert brand.search_model == "http"
    assert brand.search_model_options["headers"] == {"Authorization": SECRET}
    (audit,) = _audits(db)
    assert audit.actor_id is None and audit.reason == "community search-model"
    assert _events(db, MODEL_CHANGED)

    status = runner.invoke(cli_app, ["vectors", "status"])
    assert status.exit_code == 0, status.output
    assert f"acme: http ({_key(db)}): 0 of 2 documents have vectors, catching up" in status.output
