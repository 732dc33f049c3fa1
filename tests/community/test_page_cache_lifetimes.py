"""How long the page cache keeps a page (community/core/page_cache.py): PAGE_CACHE_SECONDS for
pages that only web writes change, 5 s at most for pages built from the search index (the
worker's indexing bumps no generation), and the worker's promotion of a thread to the KB makes
every kept page stale at once (through Redis, as the web processes share it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from community import voting
from community.core import meili
from community.core.db import make_session_factory
from community.core.models import User
from community.core.page_store import Entry
from community.core.settings import Settings
from community.worker import Worker
from kb.routes import INDEX_PAGE_SECONDS
from tests.conftest import QA, REDIS_URL, drain, make_settings

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
LIFETIME = 30.0


@pytest.fixture
def settings(tmp_path: Path, database_url: str, meili_server: meili.MeiliServer) -> Settings:
    return make_settings(
        tmp_path, database_url, meili_server.url, redis_url=REDIS_URL, page_cache_seconds=LIFETIME
    )


def _lifetimes(settings: Settings) -> dict[str, float]:
    """Seconds left to each kept page, by its route."""
    client = redis.Redis.from_url(REDIS_URL)
    found: dict[str, float] = {}
    for key in client.scan_iter(f"{settings.rate_limit_prefix}:pagecache:entry:*"):
        raw = client.get(key)
        assert isinstance(raw, bytes)
        found[Entry.loads(raw).route] = client.pttl(key) / 1000
    return found


def test_pages_of_the_search_index_are_kept_seconds_and_thread_pages_longer(
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    qa: QA,
    settings: Settings,
) -> None:
    thread = qa.ask(make_user("asker"), title="Router reboots every night at midnight")
    visitor = make_client()
    for path in (f"/t/{thread.id}", "/b/acme/search?q=router"):
        assert visitor.get(path, headers=BROWSER).status_code == 200
        assert visitor.get(path, headers=BROWSER).headers["x-cache"] == "hit"
    lifetimes = _lifetimes(settings)
    assert INDEX_PAGE_SECONDS < lifetimes["/t/{thread_id}"] <= LIFETIME
    assert 0 < lifetimes["/b/{brand_slug}/search"] <= INDEX_PAGE_SECONDS


def test_a_promotion_by_the_worker_refreshes_kept_pages_at_once(
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
    engine: Engine,
    settings: Settings,
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker, title="Router reboots every night at midnight", tags=["router"])
    answer = qa.answer(helper, thread, "Turn off the scheduled reboot under Settings > Power.")
    worker = Worker(settings, make_session_factory(engine))
    drain(worker)
    visitor = make_client()
    assert visitor.get(f"/t/{thread.id}", headers=BROWSER).status_code == 200
    kept = visitor.get(f"/t/{thread.id}", headers=BROWSER)
    assert kept.headers["x-cache"] == "hit" and "In the knowledge base" not in kept.text

    # Not through a web request: no write bumps the generation, only the worker's promotion.
    for index in range(2):
        voting.cast_vote(db, make_user(f"fan{index}"), answer.id, 1)
    voting.accept(db, asker, answer.id)
    db.commit()
    drain(worker)

    page = visitor.get(f"/t/{thread.id}", headers=BROWSER)
    assert page.headers["x-cache"] == "miss"
    assert "In the knowledge base" in page.text
