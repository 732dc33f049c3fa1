"""HTTP at the edges: HEAD like GET without a body, oversized chunked bodies are 413, form
bodies that are not UTF-8 are refused, the API reference page's switch, the SQLite file's
permissions."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from community.app import create_app
from community.core.db import make_engine
from community.core.models import Post, User
from community.core.settings import Settings
from tests.conftest import QA, csrf_token, fresh, log_in


def test_head_answers_like_get_without_a_body(
    client: TestClient, qa: QA, make_user: Callable[..., User]
) -> None:
    thread = qa.ask(make_user("asker"))
    for path in ("/", f"/t/{thread.id}", f"/api/v1/threads/{thread.id}", "/api/v1/brands"):
        get = client.get(path)
        head = client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-security-policy"]
    assert client.head("/t/999999").status_code == 404


def _chunks(size: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        yield b"a" * min(piece, size - sent)
        sent += piece


def test_a_chunked_body_over_the_limit_is_413(
    client: TestClient, make_user: Callable[..., User], settings: Settings
) -> None:
    make_user("poster")
    log_in(client, "poster")
    token = csrf_token(client, "/")
    too_much = settings.max_body_bytes + 1
    form = client.post(
        "/login",
        content=_chunks(too_much),
        headers={"content-type": "application/x-www-form-urlencoded", "x-csrf-token": token},
    )
    assert form.status_code == 413, form.text[:200]
    api = client.post(
        "/api/v1/forums/1/threads",
        content=_chunks(too_much),
        headers={"content-type": "application/json", "x-csrf-token": token},
    )
    assert api.status_code == 413
    assert api.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "body=caf%E9+au+lait"),  # Latin-1 escape
        ("application/x-www-form-urlencoded", "body=caf\xe9"),  # a raw Latin-1 byte
    ],
)
def test_a_form_that_is_not_utf8_is_refused_and_changes_nothing(
    client: TestClient,
    db: Session,
    qa: QA,
    make_user: Callable[..., User],
    content_type: str,
    body: str,
) -> None:
    thread = qa.ask(make_user("asker"))
    make_user("answerer")
    log_in(client, "answerer")
    token = csrf_token(client, f"/t/{thread.id}")
    before = db.scalar(select(func.count()).select_from(Post))
    response = client.post(
        f"/t/{thread.id}/answers",
        content=f"csrf_token={token}&{body}".encode("latin-1"),
        headers={"content-type": content_type},
        follow_redirects=False,
    )
    assert response.status_code == 400
    assert "UTF-8" in response.text
    fresh(db)
    assert db.scalar(select(func.count()).select_from(Post)) == before


def test_utf8_forms_and_multipart_text_still_work(
    client: TestClient, db: Session, qa: QA, make_user: Callable[..., User]
) -> None:
    thread = qa.ask(make_user("asker"))
    make_user("answerer")
    log_in(client, "answerer")
    token = csrf_token(client, f"/t/{thread.id}")
    answered = client.post(
        f"/t/{thread.id}/answers",
        data={"csrf_token": token, "body": "Café con leche: reinicia el router. ¿Funcionó?"},
        follow_redirects=False,
    )
    assert answered.status_code == 303
    refused = client.post(
        f"/t/{thread.id}/answers",
        files={"body": (None, "caf\xe9 au lait".encode("latin-1"))},
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert refused.status_code == 400
    fresh(db)
    bodies = list(db.scalars(select(Post.body_source).where(Post.thread_id == thread.id)))
    assert "Café con leche: reinicia el router. ¿Funcionó?" in bodies


@pytest.mark.parametrize(
    ("base_url", "explicit", "shown"),
    [
        ("http://127.0.0.1:8000", None, True),
        ("https://support.example.com", None, False),
        ("https://support.example.com", True, True),
        ("http://127.0.0.1:8000", False, False),
    ],
)
def test_api_docs_are_off_by_default_on_https(
    settings: Settings, engine: Engine, base_url: str, explicit: bool | None, shown: bool
) -> None:
    configured = settings.model_copy(update={"base_url": base_url, "expose_api_docs": explicit})
    with TestClient(create_app(configured, engine=engine), base_url=base_url) as client:
        assert (client.get("/docs").status_code == 200) is shown
        assert client.get("/openapi.json").status_code == 200, "integrations keep the schema"


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "instance" / "community.core.db"
    path.parent.mkdir()
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x)")
    engine.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for extra in path.parent.glob("community.core.db-*"):  # WAL and shared memory
        assert stat.S_IMODE(extra.stat().st_mode) & 0o077 == 0, extra
