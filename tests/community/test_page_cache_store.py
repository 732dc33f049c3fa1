"""The page cache's stores and rules on their own (community/core/page_cache.py): bounds, the
generation that drops entries made before a write, the key, and Redis being out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from community.core.auth import ANONYMOUS
from community.core.page_cache import (
    MAX_TARGET_CHARS,
    PageCache,
    request_key,
    response_is_cacheable,
)
from community.core.page_store import Entry, MemoryStore, RedisStore, Store
from community.core.settings import Settings
from tests.conftest import LIMIT_STORAGES, REDIS_URL

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
HTML = [(b"content-type", b"text/html; charset=utf-8"), (b"vary", b"HX-Request")]


def _entry(generation: int, body: bytes = b"<p>page</p>") -> Entry:
    return Entry(generation, 200, HTML, body, [["thread_view", 7]])


@pytest.fixture(params=LIMIT_STORAGES)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield RedisStore(REDIS_URL, prefix, ttl=5.0)
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def test_an_entry_comes_back_whole_until_a_write(store: Store) -> None:
    found = store.lookup("page")
    assert found is not None
    generation, entry = found
    assert entry is None
    store.put("page", _entry(generation), ttl=5.0)
    assert store.lookup("page") == (generation, _entry(generation))
    store.bump()
    found = store.lookup("page")
    assert found is not None and found[1] is None and found[0] != generation


def test_a_page_rendered_while_a_write_committed_is_never_served(store: Store) -> None:
    found = store.lookup("page")
    assert found is not None
    generation_before_render = found[0]
    store.bump()  # the write commits while the page renders from older rows
    store.put("page", _entry(generation_before_render), ttl=5.0)
    found = store.lookup("page")
    assert found is not None and found[1] is None


def test_memory_store_keeps_the_recently_used_within_its_bounds() -> None:
    store = MemoryStore(max_entries=3, max_bytes=10_000)
    for key in ("a", "b", "c"):
        store.put(key, _entry(0), ttl=5.0)
    assert store.lookup("a")[1] is not None  # used: "b" is now the oldest
    store.put("d", _entry(0), ttl=5.0)
    assert len(store) == 3 and store.lookup("b")[1] is None
    store.put("big", _entry(0, b"x" * 9_600), ttl=5.0)
    assert store.bytes <= 10_000 and store.lookup("big")[1] is not None
    assert len(store) == 1


def test_memory_store_drops_an_entry_past_its_time() -> None:
    store = MemoryStore()
    store.put("page", _entry(0), ttl=0.0)
    assert store.lookup("page") == (0, None)
    assert len(store) == 0


def test_memory_store_lets_expired_pages_go_as_new_ones_come() -> None:
    """Pages nobody asks for again do not stay until the bounds push them out."""
    store = MemoryStore()
    for key in ("a", "b", "c"):
        store.put(key, _entry(0), ttl=0.0)
    store.put("fresh", _entry(0), ttl=5.0)
    assert len(store) == 1
    assert store.bytes == _entry(0).size()
    assert store.lookup("fresh")[1] is not None


def test_web_processes_share_entries_and_writes_through_redis() -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    one, other = (RedisStore(REDIS_URL, prefix, ttl=5.0) for _ in range(2))
    generation = one.lookup("page")[0]  # type: ignore[index]
    one.put("page", _entry(generation), ttl=5.0)
    assert other.lookup("page") == (generation, _entry(generation))
    other.bump()  # a write answered by the other process
    assert one.lookup("page")[1] is None  # type: ignore[index]
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*client.scan_iter(f"{prefix}:*"))


def test_with_redis_out_the_cache_steps_aside(tmp_path: Path) -> None:
    store = RedisStore(UNREACHABLE_REDIS, "t", ttl=5.0)
    assert store.lookup("page") is None  # render the page, do not fail it
    store.put("page", _entry(0), ttl=5.0)
    store.bump()
    assert store.lookup("page") is None


def _scope(path: str = "/t/1", query: bytes = b"", **headers: str) -> dict[str, object]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query,
        "headers": [(b"host", b"testserver")]
        + [
            (name.lower().replace("_", "-").encode(), value.encode())
            for name, value in headers.items()
        ],
        "state": {"viewer": ANONYMOUS, "csrf_token": "t", "csp_nonce": "n", "locale": "en"},
    }


def test_the_key_holds_the_page_the_language_and_the_htmx_headers() -> None:
    page = request_key(_scope())
    assert page is not None
    assert request_key(_scope(query=b"answers=new")) != page
    assert request_key(_scope(hx_request="true")) != page
    assert request_key(_scope(hx_request="true", hx_target="answers")) != request_key(
        _scope(hx_request="true")
    )
    # Where a fragment was asked from is not what it is.
    assert request_key(_scope(hx_current_url="http://testserver/b/acme")) == page
    spanish = _scope()
    spanish["state"]["locale"] = "es"  # type: ignore[index]
    assert request_key(spanish) != page


def test_requests_the_cache_never_answers() -> None:
    assert request_key(_scope(query=b"q=" + b"x" * MAX_TARGET_CHARS)) is None
    assert request_key(_scope(authorization="Bearer abc")) is None
    assert request_key(_scope(cookie="community_session=a.x; flash=abc.def")) is None
    assert request_key(_scope(cookie="community_session=a.x; lang=es")) is not None
    for path in ("/admin/users", "/b/acme/mod/flags", "/agent", "/api/v1/threads", "/metrics"):
        assert request_key(_scope(path)) is None, path
    signed_in = _scope()
    signed_in["state"]["viewer"] = type(ANONYMOUS)(user_id=1)  # type: ignore[index]
    assert request_key(signed_in) is None


def test_responses_the_cache_never_keeps() -> None:
    assert response_is_cacheable(200, HTML)
    assert not response_is_cacheable(404, HTML)
    assert not response_is_cacheable(200, [(b"content-type", b"application/json")])
    assert not response_is_cacheable(200, [*HTML, (b"set-cookie", b"flash=; Max-Age=0")])
    assert not response_is_cacheable(200, [*HTML, (b"cache-control", b"private")])
    assert not response_is_cacheable(200, [*HTML, (b"cache-control", b"no-store")])
    assert not response_is_cacheable(200, [*HTML, (b"vary", b"User-Agent")])


def test_placeholders_depend_on_the_secret(tmp_path: Path) -> None:
    one = PageCache(Settings(instance_dir=tmp_path, secret_key="one"))
    other = PageCache(Settings(instance_dir=tmp_path, secret_key="two"))
    assert one.csrf_mark != other.csrf_mark and one.csrf_mark != one.nonce_mark
    assert not PageCache(Settings(instance_dir=tmp_path, page_cache_seconds=0)).enabled
