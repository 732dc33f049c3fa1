"""The page cache's stores: where kept pages and the generation live (one process's memory, or
Redis shared by every web process), and the entry format. The rules of what is kept for whom
are community.core.page_cache's."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from community.core.settings import Settings

logger = logging.getLogger(__name__)

MEMORY_MAX_ENTRIES = 2000
# A web process is meant to stay within 200 MB (docs/performance.md, "Memory"); more than this
# many live pages in PAGE_CACHE_SECONDS is a site for REDIS_URL.
MEMORY_MAX_BYTES = 32 * 1024 * 1024
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Entry:
    generation: int
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    replays: list[list[Any]]
    route: str = ""  # the route's path template, for the per-route metrics of a hit

    def size(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + 200

    def dumps(self) -> bytes:
        head = {
            "g": self.generation,
            "s": self.status,
            "h": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in self.headers],
            "r": self.replays,
            "t": self.route,
        }
        return json.dumps(head, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def loads(cls, raw: bytes) -> Entry:
        head_raw, _, body = raw.partition(b"\n")
        head = json.loads(head_raw)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in head["h"]]
        return cls(
            int(head["g"]), int(head["s"]), headers, body, list(head["r"]), str(head.get("t", ""))
        )


class Store(Protocol):
    def lookup(self, key: str) -> tuple[int, Entry | None] | None:
        """(the current generation, the entry if one is kept) or None when the store is out."""

    def put(self, key: str, entry: Entry, ttl: float) -> None: ...

    def bump(self) -> None: ...


class MemoryStore:
    """One process's entries: least recently used go first past the bounds; a bump drops all."""

    def __init__(
        self, *, max_entries: int = MEMORY_MAX_ENTRIES, max_bytes: int = MEMORY_MAX_BYTES
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.generation = 0
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[float, Entry]] = OrderedDict()
        self._lock = threading.Lock()  # TestClient and uvicorn run loops on other threads

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: str) -> tuple[int, Entry | None]:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return self.generation, None
            expires, entry = found
            if expires <= time.monotonic() or entry.generation != self.generation:
                self._drop(key)
                return self.generation, None
            self._entries.move_to_end(key)
            return self.generation, entry

    def put(self, key: str, entry: Entry, ttl: float) -> None:
        with self._lock:
            if entry.generation != self.generation:
                return  # a write came while it was rendered
            self._drop(key)
            now = time.monotonic()
            # Pages nobody asked for again would otherwise stay until the bounds push them out,
            # and the store would sit at its bounds for good. The oldest come first (a hit
            # moves an entry back, so an expired one may wait behind it: lookup checks anyway).
            while self._entries:
                oldest = next(iter(self._entries))
                if self._entries[oldest][0] > now:
                    break
                self._drop(oldest)
            self._entries[key] = (now + ttl, entry)
            self.bytes += entry.size()
            while self._entries and (
                len(self._entries) > self.max_entries or self.bytes > self.max_bytes
            ):
                self._drop(next(iter(self._entries)))

    def bump(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()
            self.bytes = 0

    def _drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self.bytes -= found[1].size()


class RedisStore:
    """Entries and the generation in Redis, shared by every web process. One round trip per
    lookup (MGET of the generation and the entry). When Redis fails, the cache steps aside
    for a TTL (pages are rendered, writes are not recorded as bumps): by then every entry kept
    before the failure has expired, so none can be served stale afterwards."""

    def __init__(self, url: str, prefix: str, ttl: float) -> None:
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
        )
        self._generation_key = f"{prefix}:pagecache:generation"
        self._entry_prefix = f"{prefix}:pagecache:entry:"
        self._pause = max(ttl, 1.0)
        self._down_until = 0.0

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, error: redis.RedisError) -> None:
        if self._available():
            logger.warning(
                "page cache off for %.0f s: Redis does not answer (%s)", self._pause, error
            )
        self._down_until = time.monotonic() + self._pause

    def lookup(self, key: str) -> tuple[int, Entry | None] | None:
        if not self._available():
            return None
        try:
            generation, raw = self._client.mget(self._generation_key, self._entry_prefix + key)
        except redis.RedisError as exc:
            self._failed(exc)
            return None
        current = int(generation or 0)
        if raw is None:
            return current, None
        try:
            entry = Entry.loads(raw if isinstance(raw, bytes) else raw.encode("latin-1"))
        except (ValueError, KeyError, TypeError):
            return current, None
        return current, entry if entry.generation == current else None

    def put(self, key: str, entry: Entry, ttl: float) -> None:
        if not self._available():
            return
        try:
            self._client.set(self._entry_prefix + key, entry.dumps(), px=int(ttl * 1000))
        except redis.RedisError as exc:
            self._failed(exc)

    def bump(self) -> None:
        try:
            self._client.incr(self._generation_key)
        except redis.RedisError as exc:
            self._failed(exc)  # and nothing is served from the cache until entries expired


def shared_store(settings: Settings) -> RedisStore | None:
    """The store the web processes share (with REDIS_URL): also how a process without pages of
    its own (the worker) marks every kept page stale after a change no web request made. None
    without Redis: each web process keeps its own pages, which expire within their time."""
    if not settings.redis_url:
        return None
    return RedisStore(settings.redis_url, settings.rate_limit_prefix, settings.page_cache_seconds)
