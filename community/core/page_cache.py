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
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from community.core.auth import Viewer
from community.core.member_pages import PersonalSlots, declared_class, viewer_class
from community.core.page_store import Entry, MemoryStore, Store, shared_store
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
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FLASH_COOKIE = "flash"  # community.core.web's flash messages: a page that shows one is not kept
REPLAYS_STATE = "page_cache_replays"
MAX_AGE_STATE = "page_cache_max_age"
_KEY_HEADERS_EXCLUDED = b"hx-current-url"  # the page a fragment was asked from: not its identity
_VARY_ALLOWED = frozenset({"cookie", "accept-language"})  # covered by the language and the rules
_CACHE_CONTROL_REFUSED = ("private", "no-store", "no-cache")

Replay = Callable[..., None]


def keep_at_most(request: Request, seconds: float) -> None:
    """Keep this page (and any page built with it) at most `seconds`, however long the cache
    keeps others: for pages that change without a write to bump the generation (search
    results change when the worker has indexed)."""
    state = request.scope.setdefault("state", {})
    state[MAX_AGE_STATE] = min(float(state.get(MAX_AGE_STATE, seconds)), seconds)


def replay_on_hit(request: Request, name: str, *args: Any) -> None:
    """Have the page cache call the replay registered as `name` with (request, *args) each time
    it serves this page from the cache. The arguments must be JSON values (they may be kept in
    Redis)."""
    request.scope.setdefault("state", {}).setdefault(REPLAYS_STATE, []).append([name, *args])


@dataclass(frozen=True, slots=True)
class CachedRoute:
    """Stands in for the route that rendered a cached page (its `path` template)."""

    path: str


class PageCache:
    """The app's cache (app.state.page_cache): settings, store and the placeholders."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.ttl = settings.page_cache_seconds
        self.enabled = self.ttl > 0
        self.store: Store = store or shared_store(settings) or MemoryStore()
        secret = settings.effective_secret_key.encode()
        # Derived from the secret: page text cannot contain them by chance, or by design.
        self.csrf_mark = _mark(secret, "csrf")
        self.nonce_mark = _mark(secret, "nonce")
        self.personal = PersonalSlots(_mark(secret, "display-name"), _mark(secret, "username"))


def _mark(secret: bytes, what: str) -> bytes:
    return (
        b"pc-"
        + hmac.new(secret, f"page-cache:{what}".encode(), hashlib.sha256).hexdigest()[:24].encode()
    )


def request_key(scope: Scope, member_class: str | None = None) -> str | None:
    """The cache key of a request the cache may answer, or None for one it must not: a
    logged-out visitor's, or with `member_class` (community.core.member_pages) a signed-in
    member's of that class."""
    state = scope.get("state") or {}
    viewer = state.get("viewer")
    if viewer is None or state.get("auth") == "token":
        return None
    if viewer.is_authenticated != (member_class is not None):
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
            # A member's page: their class, and the unread count their header shows.
            f"member:{member_class}:{viewer.unread_notifications}".encode()
            if member_class is not None
            else b"visitor",
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
        elif scope["method"] != "GET":
            await self.app(scope, receive, send)
        elif (key := request_key(scope)) is not None:
            await self._cached(cache, key, scope, receive, send)
        else:
            member = viewer_class(scope)
            key = request_key(scope, member) if member is not None else None
            if member is None or key is None:
                await self.app(scope, receive, send)
            else:
                await self._cached(cache, key, scope, receive, send, member)

    async def _cached(
        self,
        cache: PageCache,
        key: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        member: str | None = None,
    ) -> None:
        """Serve the entry under `key`, or render the page and keep it; `member`: the class of
        the signed-in member the page is for (community.core.member_pages)."""
        found = cache.store.lookup(key)
        if found is None:  # the store is out: render as if there were no cache
            await self.app(scope, receive, send)
            return
        generation, entry = found
        if entry is not None:
            await self._serve(cache, entry, scope, send)
            return
        if member is None:
            start, body = await self._render(scope, receive, send)
        else:
            start, body = await self._render_for_member(cache, scope, receive, send)
            if declared_class(scope) != member:
                return  # the route rendered it for another class, or for this member alone
        headers = [(bytes(k).lower(), bytes(v)) for k, v in start.get("headers", [])]
        if body is None or not start or not response_is_cacheable(start["status"], headers):
            return
        state = scope["state"]
        csrf, nonce = state["csrf_token"].encode(), state["csp_nonce"].encode()
        body = body.replace(csrf, cache.csrf_mark).replace(nonce, cache.nonce_mark)
        kept = [(k, v) for k, v in headers if k != b"content-length"]
        replays = list(state.get(REPLAYS_STATE, []))
        route = str(getattr(scope.get("route"), "path", "") or "")
        entry = Entry(generation, start["status"], kept, body, replays, route)
        cache.store.put(key, entry, min(cache.ttl, float(state.get(MAX_AGE_STATE, cache.ttl))))

    async def _render(
        self, scope: Scope, receive: Receive, send: Send
    ) -> tuple[Message, bytes | None]:
        """The page, sent as it comes, and a copy of it (None when too large to keep)."""
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
        return start, (b"".join(chunks) if size <= MAX_BODY_BYTES else None)

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
        body = _personalised(cache, entry.body, state)
        headers = [
            *entry.headers,
            (b"content-length", str(len(body)).encode()),
            (b"x-cache", b"hit"),
        ]
        await send({"type": "http.response.start", "status": entry.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _render_for_member(
        self, cache: PageCache, scope: Scope, receive: Receive, send: Send
    ) -> tuple[Message, bytes | None]:
        """The page rendered with the personal slots (the copy to keep), held until it is
        whole and sent with this member's own text in them."""
        state = scope["state"]
        viewer = state["viewer"]
        start: Message = {}
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send_held(cache, start, b"".join(chunks), viewer, send)

        state["viewer"] = cache.personal.stand_in(viewer)
        try:
            await self.app(scope, receive, hold)
        finally:
            state["viewer"] = viewer
        body = b"".join(chunks)
        return start, (body if len(body) <= MAX_BODY_BYTES else None)

    @staticmethod
    async def _send_held(
        cache: PageCache, start: Message, body: bytes, viewer: Viewer, send: Send
    ) -> None:
        body = cache.personal.personalise(body, viewer)
        headers = [
            (k, v) for k, v in start.get("headers", []) if bytes(k).lower() != b"content-length"
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        headers.append((b"x-cache", b"miss"))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _personalised(cache: PageCache, body: bytes, state: dict[str, Any]) -> bytes:
    """A kept page with this response's token, nonce and (a member's page) viewer put back."""
    body = body.replace(cache.csrf_mark, state["csrf_token"].encode()).replace(
        cache.nonce_mark, state["csp_nonce"].encode()
    )
    viewer = state.get("viewer")
    if viewer is not None and viewer.is_authenticated:
        body = cache.personal.personalise(body, viewer)
    return body


def _bumping(cache: PageCache, send: Send) -> Send:
    async def send_after_bump(message: Message) -> None:
        # Before the client hears of the write, so its next request cannot get the old page.
        if message["type"] == "http.response.start" and message["status"] < 400:
            cache.store.bump()
        await send(message)

    return send_after_bump
