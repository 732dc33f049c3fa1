"""The real Meilisearch server: the session fixture answers, /readyz follows its health, and the
managed-process helpers start and stop a server cleanly."""

from __future__ import annotations

import uuid
from pathlib import Path

import meilisearch
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from community.app import create_app
from community.core import meili
from tests.conftest import MEILI_TEST_KEY, make_settings


def test_meili_fixture_is_a_real_server(meili_server: meili.MeiliServer) -> None:
    client = meilisearch.Client(meili_server.url, MEILI_TEST_KEY)
    assert client.version()["pkgVersion"] == "1.21.0"
    index_uid = f"probe_{uuid.uuid4().hex[:8]}"
    task = client.create_index(index_uid, {"primaryKey": "id"})
    client.wait_for_task(task.task_uid)
    index = client.index(index_uid)
    task = index.add_documents(
        [
            {"id": 1, "title": "Wi-Fi drops every evening"},
            {"id": 2, "title": "Move my number to an eSIM"},
        ]
    )
    assert client.wait_for_task(task.task_uid).status == "succeeded"
    hits = index.search("wifi evening")["hits"]  # typo-tolerant, real ranking
    assert [hit["id"] for hit in hits] == [1]
    client.wait_for_task(client.delete_index(index_uid).task_uid)


def test_waiting_for_a_task_returns_it_finished(meili_server: meili.MeiliServer) -> None:
    client = meilisearch.Client(meili_server.url, MEILI_TEST_KEY)
    index_uid = f"probe_{uuid.uuid4().hex[:8]}"
    created = client.create_index(index_uid, {"primaryKey": "id"}).task_uid
    assert meili.wait_for_task(client, created, timeout_ms=5000).status == "succeeded"
    # A document without the primary key: the task fails, and the wait says so.
    failing = client.index(index_uid).add_documents([{"title": "no id"}]).task_uid
    failed = meili.wait_for_task(client, failing, timeout_ms=5000)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error["code"] == "missing_document_id"
    client.wait_for_task(client.delete_index(index_uid).task_uid)


def test_the_managed_server_indexes_within_a_bounded_memory_budget(
    meili_server: meili.MeiliServer,
) -> None:
    # Two thirds of the machine's memory (Meilisearch's default) made every write slow.
    arguments = Path(f"/proc/{meili_server.process.pid}/cmdline").read_bytes().split(b"\0")
    budget = arguments.index(b"--max-indexing-memory") + 1
    assert arguments[budget].decode() == meili.INDEXING_MEMORY == "1GiB"
    client = meilisearch.Client(meili_server.url, MEILI_TEST_KEY)
    assert client.health()["status"] == "available"  # the server accepted the option


def test_meili_refuses_requests_without_the_key(meili_server: meili.MeiliServer) -> None:
    anonymous = meilisearch.Client(meili_server.url, "not-the-key")
    with pytest.raises(meilisearch.errors.MeilisearchApiError) as refused:
        anonymous.get_indexes()
    assert refused.value.status_code == 403


def test_readyz_reports_503_when_meilisearch_stops(
    tmp_path: Path, database_url: str, engine: Engine, clean_db: None
) -> None:
    server = meili.start_server(meili.find_binary(), tmp_path / "meili", MEILI_TEST_KEY)
    try:
        app = create_app(make_settings(tmp_path, database_url, server.url), engine=engine)
        with TestClient(app) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {
                "status": "ok",
                "checks": {
                    "database": "ok",
                    "embedder": "ok",
                    "search": "ok",
                    "rate_limits": "ok",
                },
            }
            server.stop()
            down = client.get("/readyz")
            assert down.status_code == 503
            assert down.json()["checks"]["search"].startswith("unavailable")
            assert down.json()["checks"]["database"] == "ok"
            assert client.get("/healthz").status_code == 200  # alive, just not ready
            assert client.get("/").status_code == 200  # pages keep working
    finally:
        server.stop()


def test_readyz_reports_503_when_the_database_is_unreachable(
    tmp_path: Path, meili_server: meili.MeiliServer
) -> None:
    missing = tmp_path / "no-such-dir" / "db.sqlite"
    app = create_app(make_settings(tmp_path, f"sqlite:///{missing}", meili_server.url))
    with TestClient(app) as client:
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["database"].startswith("unavailable")
        assert down.json()["checks"]["search"] == "ok"


def test_managed_server_lives_under_the_instance_and_cleans_up(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}", None)
    assert settings.uses_managed_meili
    server = meili.start_managed(settings)
    try:
        assert meili.managed_status(settings) == server.url
        assert (settings.instance_path / "meili" / "data.ms").is_dir()
        key_file = settings.instance_path / meili.MASTER_KEY_FILE
        assert key_file.read_text().strip() == server.master_key
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        # A second start (as after a crash) ends the stale server first, then takes over.
        second = meili.start_managed(settings)
        assert server.process.wait(timeout=10) is not None
        assert second.master_key == server.master_key
        server = second
    finally:
        server.stop()
    assert meili.managed_status(settings) is None
    assert not (settings.instance_path / "meili" / "meilisearch.pid").exists()


def test_find_binary_prefers_meili_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "meilisearch"
    fake.write_text("#!/bin/sh\n")
    monkeypatch.setenv("MEILI_BIN", str(fake))
    assert meili.find_binary() == fake
    monkeypatch.setenv("MEILI_BIN", str(tmp_path / "missing"))
    with pytest.raises(meili.MeiliUnavailable, match="MEILI_BIN"):
        meili.find_binary()


def _command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_a_master_key_that_looks_like_an_option_starts_and_stays_off_the_command_line(
    tmp_path: Path,
) -> None:
    """About one generated key in 64 starts with "-": on the command line Meilisearch read it
    as an option and never started, at every start of that instance."""
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}", None)
    key = "-_" + uuid.uuid4().hex + uuid.uuid4().hex
    key_file = settings.instance_path / meili.MASTER_KEY_FILE
    key_file.write_text(key)  # an existing instance with such a key
    key_file.chmod(0o600)
    server = meili.start_managed(settings)
    try:
        assert server.master_key == key
        assert key not in _command_line(server.process.pid), "the key shows in ps"
        client = meilisearch.Client(server.url, key)
        assert client.get_keys().total >= 1, "the server took the key from the environment"
        with pytest.raises(meilisearch.errors.MeilisearchApiError):
            meilisearch.Client(server.url, "-_not-the-key-0123456789").get_keys()
    finally:
        server.stop()


def test_a_server_that_does_not_start_says_why(tmp_path: Path) -> None:
    # Meilisearch refuses a master key under 16 bytes in production and exits at once.
    with pytest.raises(meili.MeiliUnavailable) as refused:
        meili.start_server(meili.find_binary(), tmp_path / "meili", "short")
    message = str(refused.value)
    assert "exited with code" in message
    assert "master key" in message.lower(), message
