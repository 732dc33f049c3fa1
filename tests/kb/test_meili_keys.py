"""Least-privilege Meilisearch keys (`community search keys`), against the real server: the
search key can only search this site's indexes, the write key can only write them (add and
delete documents, create, configure, swap and drop indexes, follow its tasks; it cannot search),
neither reaches another site's indexes or manages keys; running the command again prints the
same keys; the web app holding only the search key serves search, and a worker holding only the
write key indexes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from community.cli import app as cli
from community.core import meili
from community.core.db import make_session_factory
from community.core.models import User
from community.core.settings import Settings
from community.worker import Worker
from kb.search import KB_SETTINGS, SearchEngine
from tests.conftest import MEILI_TEST_KEY, QA, drain, make_settings

runner = CliRunner()


def _prefix() -> str:
    return f"k{uuid.uuid4().hex[:10]}_"


def _keys_command(
    meili_server: meili.MeiliServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    monkeypatch.setenv("MEILI_URL", meili_server.url)
    monkeypatch.setenv("MEILI_MASTER_KEY", MEILI_TEST_KEY)
    monkeypatch.setenv("MEILI_INDEX_PREFIX", prefix)
    result = runner.invoke(cli, ["search", "keys"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split("=", 1) for line in result.output.splitlines() if "=" in line)
    assert sorted(lines) == ["MEILI_SEARCH_KEY", "MEILI_WRITE_KEY"]
    return lines


def _call(
    server: meili.MeiliServer, key: str, method: str, path: str, body: object = None
) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_the_command_makes_a_search_key_and_a_write_key_limited_to_the_site(
    meili_server: meili.MeiliServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = _prefix()
    keys = _keys_command(meili_server, prefix, monkeypatch)
    search_key, write_key = keys["MEILI_SEARCH_KEY"], keys["MEILI_WRITE_KEY"]
    assert len({search_key, write_key, MEILI_TEST_KEY}) == 3
    # Running it again finds the same keys (and makes no new ones).
    assert _keys_command(meili_server, prefix, monkeypatch) == keys
    listed = _call(meili_server, MEILI_TEST_KEY, "GET", "/keys?limit=1000").json()["results"]
    assert sum(1 for key in listed if key["indexes"] == [f"{prefix}*"]) == 2

    # The write key does what indexing does, through the product's own writes.
    writer = SearchEngine(
        make_settings(
            tmp_path,
            "sqlite://",
            meili_server.url,
            meili_master_key=None,
            meili_write_key=write_key,
            meili_index_prefix=prefix,
        )
    )
    uid, spare = writer.kb_index("acme"), f"{writer.kb_index('acme')}_spare"
    writer.ensure_index(uid, KB_SETTINGS, {})
    writer.ensure_index(spare, KB_SETTINGS, {})
    document = {"id": "article-1", "title_en": "Reset the router", "brand": "acme"}
    task = writer.upsert(uid, [document])
    assert task is not None
    writer.wait(task)
    writer.swap([(uid, spare)])
    writer.swap([(uid, spare)])
    writer.drop(spare)
    for task in (writer.delete(uid, ["article-1"]), writer.upsert(uid, [document])):
        assert task is not None
        writer.wait(task)
    # ...and cannot search, read documents, manage keys or reach another site's index.
    assert (
        _call(meili_server, write_key, "POST", f"/indexes/{uid}/search", {"q": "r"}).status_code
        == 403
    )
    assert _call(meili_server, write_key, "GET", f"/indexes/{uid}/documents").status_code == 403

    # The search key finds the document, and can change nothing.
    found = _call(meili_server, search_key, "POST", f"/indexes/{uid}/search", {"q": "router"})
    assert [hit["id"] for hit in found.json()["hits"]] == ["article-1"]
    for method, path, body in (
        ("POST", f"/indexes/{uid}/documents", [{"id": "x", "title_en": "spam"}]),
        ("POST", f"/indexes/{uid}/documents/delete", {"filter": "id = article-1"}),
        ("DELETE", f"/indexes/{uid}", None),
        ("PATCH", f"/indexes/{uid}/settings", {"stopWords": []}),
        ("POST", "/indexes", {"uid": f"{prefix}new"}),
    ):
        assert _call(meili_server, search_key, method, path, body).status_code == 403, path

    # Another site's index on the same server is out of reach of both.
    other = f"{_prefix()}kb_acme"
    made = _call(meili_server, MEILI_TEST_KEY, "POST", f"/indexes/{other}/documents", [document])
    assert made.status_code == 202
    assert (
        _call(meili_server, search_key, "POST", f"/indexes/{other}/search", {"q": "r"}).status_code
        == 403
    )
    assert (
        _call(
            meili_server, write_key, "POST", f"/indexes/{other}/documents", [document]
        ).status_code
        == 403
    )
    assert _call(meili_server, write_key, "DELETE", f"/indexes/{other}").status_code == 403
    for key in (search_key, write_key):
        assert _call(meili_server, key, "GET", "/keys").status_code == 403
        new_key = {"actions": ["*"], "indexes": ["*"], "expiresAt": None}
        assert _call(meili_server, key, "POST", "/keys", new_key).status_code == 403


def test_a_key_with_other_rights_is_made_again_with_the_same_value(
    meili_server: meili.MeiliServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key left by an older version (other actions) is replaced; Meilisearch derives a key's
    value from its uid, so the value in the env files stays valid."""
    prefix = _prefix()
    uid = meili.site_key_uid(meili.WRITE_KEY, prefix)
    old = {"uid": uid, "actions": ["documents.add"], "indexes": [f"{prefix}*"], "expiresAt": None}
    made = _call(meili_server, MEILI_TEST_KEY, "POST", "/keys", old)
    assert made.status_code == 201, made.text
    keys = _keys_command(meili_server, prefix, monkeypatch)
    assert keys["MEILI_WRITE_KEY"] == made.json()["key"]
    now = _call(meili_server, MEILI_TEST_KEY, "GET", f"/keys/{uid}").json()
    assert sorted(now["actions"]) == sorted(meili.KEY_ACTIONS[meili.WRITE_KEY])


def test_the_command_needs_the_url_and_the_master_key(
    meili_server: meili.MeiliServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEILI_URL", raising=False)
    monkeypatch.setenv("MEILI_MASTER_KEY", MEILI_TEST_KEY)
    result = runner.invoke(cli, ["search", "keys"])
    assert result.exit_code == 1
    assert "MEILI_URL" in result.output
    monkeypatch.setenv("MEILI_URL", meili_server.url)
    monkeypatch.setenv("MEILI_MASTER_KEY", "not-the-master-key-0123456789")
    refused = runner.invoke(cli, ["search", "keys"])
    assert refused.exit_code == 1
    assert "refused" in refused.output and "MEILI_SEARCH_KEY" not in refused.output


@pytest.fixture
def site_keys(meili_server: meili.MeiliServer) -> tuple[str, dict[str, str]]:
    prefix = _prefix()
    return prefix, meili.find_or_create_site_keys(meili_server.url, MEILI_TEST_KEY, prefix)


@pytest.fixture
def settings(
    tmp_path: Path,
    database_url: str,
    meili_server: meili.MeiliServer,
    site_keys: tuple[str, dict[str, str]],
) -> Settings:
    """The web process's settings: the search key, no master key (so no way to write)."""
    prefix, keys = site_keys
    return make_settings(
        tmp_path,
        database_url,
        meili_server.url,
        meili_master_key=None,
        meili_search_key=keys[meili.SEARCH_KEY],
        meili_index_prefix=prefix,
    )


def test_the_web_app_with_the_search_key_serves_what_a_worker_with_the_write_key_indexed(
    settings: Settings,
    site_keys: tuple[str, dict[str, str]],
    engine: Engine,
    qa: QA,
    make_user: Callable[..., User],
    client: TestClient,
) -> None:
    keys = site_keys[1]
    thread = qa.ask(make_user("asker"), title="The router reboots every night at three")
    worker_settings = settings.model_copy(
        update={"meili_search_key": None, "meili_write_key": keys[meili.WRITE_KEY]}
    )
    drain(Worker(worker_settings, make_session_factory(engine)))
    page = client.get("/b/acme/search", params={"q": "router reboots", "scope": "community"})
    assert page.status_code == 200
    assert f'href="/t/{thread.id}' in page.text
    assert "reduced mode" not in page.text  # Meilisearch answered, not the database fallback
    # The web process's engine holds no client that could write.
    with pytest.raises(Exception, match="MEILI_URL is not configured"):
        client.app.state.search.client()  # type: ignore[attr-defined]
