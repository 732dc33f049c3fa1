"""Shared fragments of signed-in pages: a block that every reader who is not staff sees alike
(a forum's thread list) is rendered once and reused until the next write.

It lives in the anonymous page cache's store (community.core.page_cache), under its rules: the
same generation, bumped by every successful write, so a fragment rendered before a vote, an
answer or a hide is never served after it; the same PAGE_CACHE_SECONDS, after which changes
made elsewhere (the worker, another process without Redis) show; Redis when REDIS_URL is set.
A fragment holds no per-person data (no CSRF token, no nonce, nothing the viewer's role or
own posts change): callers render it only for those who see the shared version, and the key
holds the language.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

from markupsafe import Markup
from starlette.requests import Request

from community.core import i18n
from community.core.page_cache import PageCache
from community.core.page_store import Entry

KEY_PREFIX = "fragment:"


def fragments_enabled(request: Request) -> bool:
    cache: PageCache | None = getattr(request.app.state, "page_cache", None)
    return cache is not None and cache.enabled


def shared_fragment(
    request: Request, name: str, parts: Sequence[str | int | None], render: Callable[[], Markup]
) -> Markup:
    """The fragment `name` for `parts` (what the fragment depends on besides the language):
    from the cache, or rendered by `render` (an autoescaped template's output) and kept."""
    cache: PageCache | None = getattr(request.app.state, "page_cache", None)
    if cache is None or not cache.enabled:
        return render()
    identity = json.dumps([name, i18n.active_locale(), *parts], separators=(",", ":"))
    key = KEY_PREFIX + hashlib.sha256(identity.encode()).hexdigest()
    found = cache.store.lookup(key)
    if found is None:  # the store is out
        return render()
    generation, entry = found
    if entry is not None:
        return Markup(entry.body.decode())  # noqa: S704 - kept as render() made it
    # The generation was read before rendering: a write that lands meanwhile makes it stale.
    html = render()
    cache.store.put(key, Entry(generation, 200, [], html.encode(), []), cache.ttl)
    return html
