"""Which brand a request is for, by its Host, and the brands' stylesheets.

A brand may be served on a host name of its own (`Brand.host`, "support.brand.example") as well
as under /b/<slug> on the shared host (BASE_URL's). The site answers only to the hosts it knows:
BASE_URL's, those in ALLOWED_HOSTS, and every brand's; any other Host gets a 400, so a request
for a name the site was never given (DNS pointed at it by someone else, a forged Host) is not
served as if it were the site. Probes (/healthz, /readyz, /metrics) answer whatever the Host:
load balancers and orchestrators call them by address.

On a brand's host, "/", "/kb" and "/search" are that brand's home, knowledge base and search
(the same pages as /b/<slug>, /b/<slug>/kb and /b/<slug>/search, which answer there too).
Another brand's pages (/b/<other>/...) are redirected to that brand's own address, with a 302
for GET and HEAD and a 404 for anything else: a link followed from one brand's page lands where
the other brand's look, cookies and canonical address are, and a form is never posted across
hosts (its CSRF cookie would not be there). A redirect, not a 404, because every brand's pages
are public at their own address anyway; temporary, because a brand's host can change.

The brands' names, hosts and looks are read in one statement and kept for a few seconds per
process (`BrandDirectory`); a change made here drops them at once (`forget_brands`), other
processes see it within DIRECTORY_SECONDS. The stylesheet of each brand (/b/<slug>/theme.css)
is answered here from that memory, before the request's viewer is loaded: no database work, and
browsers keep it (the address carries its version), signed in or not.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_from_bytes

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, load_only, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from community.core.brand_look import (
    BrandLook,
    brand_base_url,
    look_of,
    request_host,
    shared_hosts,
)
from community.core.models import Brand
from community.core.settings import Settings

logger = logging.getLogger(__name__)

DIRECTORY_SECONDS = 10.0
# Where the directory is kept on the app's state (the name the default brand's cache had, so
# the tests' per-test reset of the app's caches drops it too).
STATE_NAME = "site_brand"
# Answered whatever the Host (see the module's docstring).
PROBE_PATHS = ("/healthz", "/readyz", "/metrics")
# What a brand's own host serves at the shared host's brand-less addresses.
BRAND_HOME_PATHS = {"/": "", "/kb": "/kb", "/search": "/search"}
THEME_FILE = "theme.css"
_URL_SAFE = "".join(chr(code) for code in range(0x21, 0x7F))  # printable ASCII, "%" too
HOST_BRAND = "host_brand"  # request.state: the BrandLook of the brand whose host this is


@dataclass(frozen=True)
class BrandDirectory:
    """Every brand's look, by slug and by host, and the site's default brand."""

    by_slug: dict[str, BrandLook]
    by_host: dict[str, BrandLook]
    default: BrandLook | None
    expires_at: float = field(compare=False)


_COLUMNS = (
    Brand.id, Brand.slug, Brand.name, Brand.host, Brand.theme, Brand.logo_key,
    Brand.favicon_key, Brand.footer_links, Brand.contact_email, Brand.archived_at,
)  # fmt: skip


def load_directory(db: Session, default_slug: str | None) -> BrandDirectory:
    """One statement: the brands' look columns. The default brand is the configured one, else
    the oldest, never an archived one (as community.core.service.default_brand). An archived
    brand is not in it: its host is unknown again, its stylesheet gone, and no other brand's
    host sends anyone to it (its pages are there for site admins on the shared host)."""
    brands = list(db.scalars(select(Brand).options(load_only(*_COLUMNS)).order_by(Brand.id)))
    live = [brand for brand in brands if brand.archived_at is None]
    looks = {brand.slug: look_of(brand) for brand in live}
    chosen = next((brand for brand in live if brand.slug == default_slug), None)
    chosen = chosen or (live[0] if live else None)
    return BrandDirectory(
        by_slug=looks,
        by_host={look.host: look for look in looks.values() if look.host},
        default=looks[chosen.slug] if chosen else None,
        expires_at=time.monotonic() + DIRECTORY_SECONDS,
    )


def brand_directory(state: Any, *, fresh: bool = False) -> BrandDirectory | None:
    """The app's brand directory, loaded when missing or older than DIRECTORY_SECONDS; None
    when the database cannot be read (pages then render without a brand)."""
    cached: BrandDirectory | None = getattr(state, STATE_NAME, None)
    if cached is not None and not fresh and cached.expires_at > time.monotonic():
        return cached
    settings: Settings = state.settings
    factory: sessionmaker[Session] = state.session_factory
    try:
        with factory() as db:
            loaded = load_directory(db, settings.default_brand)
    except SQLAlchemyError as exc:
        logger.warning("brand directory not loaded: %s", exc)
        return None
    setattr(state, STATE_NAME, loaded)
    return loaded


def forget_brands(state: Any) -> None:
    """After a brand's name, look or host changed: the next request reads them again."""
    if hasattr(state, STATE_NAME):
        delattr(state, STATE_NAME)


def brand_url(settings: Settings, look: BrandLook | None) -> str:
    """Where a brand's absolute links start (community.core.brand_look.brand_base_url)."""
    return brand_base_url(settings.base_url, look.host if look else None)


# --- the middleware --------------------------------------------------------------------------


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    """A small answer of our own, before the app (and its templates) run: JSON under /api/, plain
    text elsewhere. (community.core.security's helper would import the web layer from here.)"""
    if scope.get("path", "").startswith("/api/"):
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        content_type = b"application/json"
    else:
        body, content_type = f"{message}\n".encode(), b"text/plain; charset=utf-8"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await _send(send, status, headers, body)


def _theme_slug(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) == 4 and parts[1] == "b" and parts[3] == THEME_FILE:
        return parts[2]
    return None


class BrandHosts:
    """Refuses unknown hosts, maps a brand's host to its pages, serves the brands' stylesheets
    (the module's docstring says what and why)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(PROBE_PATHS):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        settings: Settings = state.settings
        headers = Headers(scope=scope)
        if (slug := _theme_slug(path)) is not None:
            await self._stylesheet(state, slug, scope, headers, send)
            return
        host = request_host(headers.get("host", ""))
        names = shared_hosts(settings.base_url, settings.allowed_hosts)
        if host in names:
            await self.app(scope, receive, send)
            return
        directory = await run_in_threadpool(brand_directory, state)
        look = directory.by_host.get(host) if directory else None
        if look is None and "*" in names:  # any other host is the shared site
            await self.app(scope, receive, send)
            return
        if look is None:
            if directory is None:
                await _refuse(scope, send, 503, "unavailable", "The site is busy right now.")
            else:
                await _refuse(scope, send, 400, "unknown_host", "Unknown host name.")
            return
        assert directory is not None
        scope.setdefault("state", {})[HOST_BRAND] = look
        other = self._other_brand(path, look, directory)
        if other is not None:
            await self._to_other_brand(scope, settings, other, send)
            return
        if path in BRAND_HOME_PATHS:
            brand_path = f"/b/{look.slug}{BRAND_HOME_PATHS[path]}"
            scope = {**scope, "path": brand_path, "raw_path": brand_path.encode()}
        await self.app(scope, receive, send)

    @staticmethod
    def _other_brand(path: str, look: BrandLook, directory: BrandDirectory) -> BrandLook | None:
        parts = path.split("/", 3)
        if len(parts) < 3 or parts[1] != "b" or parts[2] == look.slug:
            return None
        return directory.by_slug.get(parts[2])

    @staticmethod
    async def _to_other_brand(
        scope: Scope, settings: Settings, other: BrandLook, send: Send
    ) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _refuse(scope, send, 404, "not_found", "That page is another community's.")
            return
        # The path and query as they were sent (still percent-encoded: a decoded "%0d%0a"
        # would break the header), anything but printable ASCII encoded.
        path = quote_from_bytes(scope.get("raw_path") or scope["path"].encode(), _URL_SAFE)
        query = quote_from_bytes(scope.get("query_string", b""), _URL_SAFE)
        target = brand_url(settings, other) + path + (f"?{query}" if query else "")
        await _send(send, 302, [(b"location", target.encode()), (b"content-length", b"0")], b"")

    async def _stylesheet(
        self, state: Any, slug: str, scope: Scope, headers: Headers, send: Send
    ) -> None:
        wanted = _query_value(scope, "v")
        directory = await run_in_threadpool(brand_directory, state)
        look = directory.by_slug.get(slug) if directory else None
        if look is not None and wanted and wanted != look.version:
            # Changed in another process since this one read the brands: read them again
            # rather than keep old colours under the new version's address.
            directory = await run_in_threadpool(brand_directory, state, fresh=True)
            look = directory.by_slug.get(slug) if directory else None
        if look is None or look.css is None:
            await _refuse(scope, send, 404, "not_found", "No such stylesheet.")
            return
        etag = f'"{look.version}"'
        lasting = wanted == look.version
        common = [
            (b"etag", etag.encode()),
            (b"cache-control", b"public, max-age=31536000, immutable" if lasting else b"no-cache"),
        ]
        if etag in (headers.get("if-none-match") or ""):
            await _send(send, 304, common, b"")
            return
        body = look.css.encode()
        await _send(
            send,
            200,
            [
                (b"content-type", b"text/css; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *common,
            ],
            body,
        )


def _query_value(scope: Scope, name: str) -> str:
    query: bytes = scope.get("query_string", b"")
    for pair in query.decode("latin-1").split("&"):
        key, _sep, value = pair.partition("=")
        if key == name:
            return value
    return ""
