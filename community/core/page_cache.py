"""The anonymous page cache: logged-out visitors' HTML pages kept for a few seconds.

What is kept, and for whom: GET (and HEAD, which community.core.protocol.HeadAsGet turns into a
GET outside this middleware) of a text/html 200 page by a visitor who is not signed in (an
anonymous cookie or none, no Authorization header, no flash message waiting), whose route set
no cookie and no `Cache-Control: private/no-store/no-cache`, and whose `Vary` names only what
the key holds. Staff, account and machine paths are never kept, whatever they answer.

The key: scheme, host, path, query string, the visitor's language, and every htmx header but
HX-Current-URL (a fragment is never served as a page, nor the other way round).

Per-visitor parts: an anonymous page embeds the visitor's CSRF token and the response's CSP
nonce. Both are stored as placeholders and each visitor's own are put back on every hit, so
nobody receives another's token and every page's scripts carry this response's nonce.

Freshness: every write (an unsafe method answered below 400) bumps a generation; an entry made
under an older one is never served. The generation is read before the page is rendered, so a
page rendered while a write commits is tagged with the generation before it and dropped. With
REDIS_URL the entries and the generation live in Redis, shared by every web process; otherwise
in this process's memory (an LRU bounded in entries and bytes, expired entries dropped as new
ones come). Changes made elsewhere (the
worker, another process without Redis) show within PAGE_CACHE_SECONDS.

Side effects a page GET records (a thread view, an article view, a logged search) still happen
on a hit: the route names them with `replay_on_hit`, the entry keeps them, and the middleware
calls the replay the app registered under that name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from community.core.settings import Settings

logger = logging.getLogger(__name__)

# Paths whose pages are per person or for staff (they answer anonymous visitors with a redirect
# or an error anyway; this keeps them out even if one day they did not).
PRIVATE_SEGMENTS = frozenset(
    {"admin", "agent", "mod", "api", "static", "metrics", "account", "notifications", "private",
     "insights", "healthz", "readyz", "edit", "versions", "queue"}
)  # fmt: skip
# A longer path and query is not a page anyone links to; it would only fill the cache.
MAX_TARGET_CHARS = 1024
MAX_BODY_BYTES = 1024 * 1024
MEMORY_MAX_ENTRIES = 2000
# A web process is meant to stay within 200 MB (docs/performance.md, "Memory"); more than this
# many live pages in PAGE_CACHE_SECONDS is a site for REDIS_URL.
MEMORY_MAX_BYTES = 32 * 1024 * 1024
REDIS_TIMEOUT_SECONDS = 0.5
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FLASH_COOKIE = "flash"  # community.core.web's flash messages: a page that shows one is not kept
REPLAYS_STATE = "page_cache_replays"
_KEY_HEADERS_EXCLUDED = b"hx-current-url"  # the page a fragment was asked from: not its identity
_VARY_ALLOWED = frozenset({"cookie", "accept-language"})  # covered by the language and the rules
_CACHE_CONTROL_REFUSED = ("private", "no-store", "no-cache")

Replay = Callable[..., None]


def replay_on_hit(request: Request, name: str, *args: Any) -> None:
    """Have the page cache call the replay registered as `name` with (request, *args) each time
    it serves this page from the cache. The arguments must be JSON values (they may be kept in
    Redis)."""
    request.scope.setdefault("state", {}).setdefault(REPLAYS_STATE, []).append([name, *args])


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


@dataclass(frozen=True, slots=True)
class CachedRoute:
    """Stands in for the route that rendered a cached page (its `path` template)."""

    path: str


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


class PageCache:
    """The app's cache (app.state.page_cache): settings, store and the placeholders."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.ttl = settings.page_cache_seconds
        self.enabled = self.ttl > 0
        if store is None and settings.redis_url:
            store = RedisStore(settings.redis_url, settings.rate_limit_prefix, self.ttl)
        self.store: Store = store or MemoryStore()
        secret = settings.effective_secret_key.encode()
        # Derived from the secret: page text cannot contain them by chance, or by design.
        self.csrf_mark = _mark(secret, "csrf")
        self.nonce_mark = _mark(secret, "nonce")


def _mark(secret: bytes, what: str) -> bytes:
    return (
        b"pc-"
        + hmac.new(secret, f"page-cache:{what}".encode(), hashlib.sha256).hexdigest()[:24].encode()
    )


def request_key(scope: Scope) -> str | None:
    """The cache key of a request the cache may answer, or None for one it must not."""
    state = scope.get("state") or {}
    viewer = state.get("viewer")
    if viewer is None or viewer.is_authenticated or state.get("auth") == "token":
        return None
    if not state.get("csrf_token") or not state.get("csp_nonce"):
        return None
    path: str = scope["path"]
    query: bytes = scope.get("query_string", b"")
    if len(path) + len(query) > MAX_TARGET_CHARS:
        return None
    if any(segment in PRIVATE_SEGMENTS for segment in path.split("/")):
        return None
    host = b""
    varies: list[bytes] = []
    for name, value in scope["headers"]:
        if name == b"authorization":
            return None
        if name == b"cookie" and FLASH_COOKIE in cookie_parser(value.decode("latin-1")):
            return None
        if name == b"host":
            host = value
        elif name.startswith(b"hx-") and name != _KEY_HEADERS_EXCLUDED:
            varies.append(name + b"=" + value)
    material = b"\0".join(
        [
            str(scope.get("scheme", "")).encode(),  # what absolute links a page builds start with
            host,
            path.encode(),
            query,
            str(state.get("locale", "")).encode(),
            *sorted(varies),
        ]
    )
    return hashlib.sha256(material).hexdigest()


def response_is_cacheable(status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    """A 200 HTML page the route meant for anyone: no cookie of its own, not private, and
    varying only on what the key holds."""
    if status != 200:
        return False
    html = False
    for name, value in headers:
        text = value.decode("latin-1").lower()
        if name == b"content-type":
            html = text.startswith("text/html")
        elif _refuses(name, text):
            return False
    return html


def _refuses(name: bytes, text: str) -> bool:
    if name == b"set-cookie":
        return True
    if name == b"cache-control":
        return any(word in text for word in _CACHE_CONTROL_REFUSED)
    if name == b"vary":
        tokens = [token.strip() for token in text.split(",")]
        return not all(token in _VARY_ALLOWED or token.startswith("hx-") for token in tokens)
    return False


class PageCacheMiddleware:
    """Serves and fills app.state.page_cache; bumps its generation on every successful write.

    Registered inside RequestContextMiddleware (it needs the viewer, the CSRF token and the
    language) and inside SecurityHeadersMiddleware (a cached page still gets this response's
    headers and CSP nonce). `replays` name what a route's `replay_on_hit` may ask for."""

    def __init__(self, app: ASGIApp, *, replays: Mapping[str, Replay]) -> None:
        self.app = app
        self.replays = replays

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache: PageCache | None = None
        if scope["type"] == "http":
            cache = getattr(scope["app"].state, "page_cache", None)
        if cache is None or not cache.enabled:
            await self.app(scope, receive, send)
        elif scope["method"] in UNSAFE_METHODS:
            await self.app(scope, receive, _bumping(cache, send))
        elif scope["method"] != "GET" or (key := request_key(scope)) is None:
            await self.app(scope, receive, send)
        else:
            await self._cached(cache, key, scope, receive, send)

    async def _cached(
        self, cache: PageCache, key: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        found = cache.store.lookup(key)
        if found is None:  # the store is out: render as if there were no cache
            await self.app(scope, receive, send)
            return
        generation, entry = found
        if entry is not None:
            await self._serve(cache, entry, scope, send)
            return
        state = scope["state"]
        csrf, nonce = state["csrf_token"].encode(), state["csp_nonce"].encode()
        start: Message = {}
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal start, size
            if message["type"] == "http.response.start":
                start = message
                message = {**message, "headers": [*message["headers"], (b"x-cache", b"miss")]}
            elif message["type"] == "http.response.body" and size <= MAX_BODY_BYTES:
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
            await send(message)

        await self.app(scope, receive, capture)
        headers = [(bytes(k).lower(), bytes(v)) for k, v in start.get("headers", [])]
        if (
            not start
            or size > MAX_BODY_BYTES
            or not response_is_cacheable(start["status"], headers)
        ):
            return
        body = b"".join(chunks).replace(csrf, cache.csrf_mark).replace(nonce, cache.nonce_mark)
        kept = [(k, v) for k, v in headers if k != b"content-length"]
        replays = list(state.get(REPLAYS_STATE, []))
        route = str(getattr(scope.get("route"), "path", "") or "")
        entry = Entry(generation, start["status"], kept, body, replays, route)
        cache.store.put(key, entry, cache.ttl)

    async def _serve(self, cache: PageCache, entry: Entry, scope: Scope, send: Send) -> None:
        state = scope["state"]
        if entry.route:
            # What the router would have set: a hit is timed under the page's own route.
            scope["route"] = CachedRoute(entry.route)
        request = Request(scope)
        for name, *args in entry.replays:
            replay = self.replays.get(name)
            if replay is None:
                logger.warning("page cache: no replay named %r", name)
                continue
            try:
                replay(request, *args)
            except Exception:  # a view not counted must not fail the page
                logger.exception("page cache: replay %r failed", name)
        body = entry.body.replace(cache.csrf_mark, state["csrf_token"].encode()).replace(
            cache.nonce_mark, state["csp_nonce"].encode()
        )
        headers = [
            *entry.headers,
            (b"content-length", str(len(body)).encode()),
            (b"x-cache", b"hit"),
        ]
        await send({"type": "http.response.start", "status": entry.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _bumping(cache: PageCache, send: Send) -> Send:
    async def send_after_bump(message: Message) -> None:
        # Before the client hears of the write, so its next request cannot get the old page.
        if message["type"] == "http.response.start" and message["status"] < 400:
            cache.store.bump()
        await send(message)

    return send_after_bump
