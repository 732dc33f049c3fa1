"""Request-level protections: the request context (viewer, locale, CSRF token), CSRF checks,
security headers with a per-response CSP nonce, a body size cap, and a last-resort error page.

The middlewares are plain ASGI (not BaseHTTPMiddleware) so context variables set here (the active
translation) are visible to the endpoint and its exception handlers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from community.core import i18n
from community.core.api_tokens import viewer_for_token
from community.core.auth import (
    ANONYMOUS,
    VIEWER_ROW,
    Viewer,
    is_anonymous_token,
    load_viewer,
    new_anonymous_token,
)
from community.core.db import RETRY_AFTER_SECONDS, UNAVAILABLE_ERRORS
from community.core.errors import BadRequest, CSRFFailed, NotFound
from community.core.member_pages import CLASS_STATE, MemberPage, MemberPages
from community.core.models import User
from community.core.settings import Settings

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Machine-to-machine endpoints that authenticate each request by its own signature (never by a
# cookie), so a forged cross-site request cannot ride on a browser's session.
CSRF_EXEMPT_PREFIXES = ("/api/v1/helpdesk/",)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LANGUAGE_COOKIE = "lang"
# Paths that need no viewer: probes and static files must not touch the database.
_CONTEXT_FREE_PREFIXES = ("/static/", "/healthz", "/readyz")


def session_cookie_name(settings: Settings) -> str:
    # The __Host- prefix makes browsers refuse the cookie unless Secure, host-only, Path=/.
    return "__Host-community_session" if settings.cookie_secure else "community_session"


def session_cookie_header(settings: Settings, token: str, *, max_age: int | None = None) -> str:
    cookie: SimpleCookie = SimpleCookie()
    name = session_cookie_name(settings)
    cookie[name] = token
    morsel = cookie[name]
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = "Lax"
    morsel["max-age"] = str(
        max_age if max_age is not None else settings.session_max_age_days * 86400
    )
    if settings.cookie_secure:
        morsel["secure"] = True
    return morsel.OutputString()


def csrf_token_for(secret_key: str, session_token: str) -> str:
    """A synchronizer token bound to the session cookie: it changes when the session rotates."""
    return hmac.new(
        secret_key.encode(), f"csrf:{session_token}".encode(), hashlib.sha256
    ).hexdigest()


class RequestContextMiddleware:
    """Loads the viewer from the session cookie, picks the language and the CSRF token."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        session_factory: sessionmaker[Session],
        member_pages: MemberPages | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.session_factory = session_factory
        self.cookie_name = session_cookie_name(settings)
        self.member_pages = member_pages

    def _load_viewer(
        self, token: str, *, page: MemberPage | None = None
    ) -> tuple[Viewer, User | None, str | None]:
        """The viewer; the user's row, detached, for the route to attach
        without reading it again (get_optional_user); with `page`, the member's class on it
        (community.core.member_pages), read in the same round. Each request's session stays in
        the thread that uses it: sharing this one with the page let a cancelled request close
        it while the page's thread was still querying through it (a crash inside psycopg)."""
        try:
            with self.session_factory() as db:
                viewer = load_viewer(db, token)
                row: User | None = db.info.get(VIEWER_ROW)
                member_class = None
                if page is not None and row is not None:
                    member_class = _member_class(db, row, page)
                # A row that a session touch expired would be read again anyway.
                if row is None or inspect(row).unloaded:
                    return viewer, None, member_class
                db.expunge(row)
                return viewer, row, member_class
        except UNAVAILABLE_ERRORS:
            raise  # a 503 (retry), not a signed-in person shown pages as if signed out
        except SQLAlchemyError:
            logger.exception("could not load the session; treating the request as anonymous")
            return ANONYMOUS, None, None

    def _load_token_viewer(self, raw: str) -> Viewer:
        try:
            with self.session_factory() as db:
                return viewer_for_token(db, raw)
        except UNAVAILABLE_ERRORS:
            raise
        except SQLAlchemyError:
            logger.exception("could not check an API token; treating the request as anonymous")
            return ANONYMOUS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_CONTEXT_FREE_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        bearer = _bearer_token(request)
        if bearer is not None:
            # Token-authenticated API call: cookies play no part, so no CSRF token either.
            viewer = await run_in_threadpool(self._load_token_viewer, bearer)
            state = scope.setdefault("state", {})
            state.update(viewer=viewer, auth="token", session_token=None, csrf_token="")
            locale = i18n.negotiate([viewer.locale], request.headers.get("accept-language"))
            i18n.activate(locale)
            state["locale"] = locale
            await self.app(scope, receive, send)
            return
        token = request.cookies.get(self.cookie_name)
        viewer = ANONYMOUS
        row: User | None = None
        member_class = None
        if token and not is_anonymous_token(token):
            page = self.member_pages.match(scope) if self.member_pages is not None else None
            viewer, row, member_class = await run_in_threadpool(self._load_viewer, token, page=page)
        issued_token = None
        if not token or len(token) > 128:
            token = issued_token = new_anonymous_token()
        state = scope.setdefault("state", {})
        state["viewer"] = viewer
        if row is not None:
            state[VIEWER_ROW] = row
        if member_class is not None:
            state[CLASS_STATE] = member_class
        state["session_token"] = token
        state["csrf_token"] = csrf_token_for(self.settings.effective_secret_key, token)
        locale = i18n.negotiate(
            [viewer.locale, request.cookies.get(LANGUAGE_COOKIE)],
            request.headers.get("accept-language"),
        )
        i18n.activate(locale)
        state["locale"] = locale

        async def send_with_cookie(message: Message) -> None:
            if issued_token and message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                already_set = any(
                    value.startswith(f"{self.cookie_name}=")
                    for value in headers.getlist("set-cookie")
                )
                if not already_set:
                    headers.append("set-cookie", session_cookie_header(self.settings, issued_token))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _member_class(db: Session, user: User, page: MemberPage) -> str | None:
    """The member's class on a shared page, or None (also when it cannot be read: the page
    is then rendered for them alone, which is always right)."""
    try:
        return page.classify(db, user, page.params)
    except UNAVAILABLE_ERRORS:
        raise
    except SQLAlchemyError:
        logger.exception("could not classify the member; rendering their own page")
        db.rollback()
        return None


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    # Only Bearer: browsers replay cached Basic credentials on their own, never a bearer token.
    return value.strip() if scheme.lower() == "bearer" else None


# The largest id a BIGINT (and SQLite's INTEGER) holds: a larger one can name no row.
MAX_ROW_ID = 2**63 - 1


def is_row_number(path_param: str) -> bool:
    """Path parameters that count rows: ids, and a post's revision number."""
    return path_param.endswith("_id") or path_param == "number"


async def path_ids_exist(request: Request) -> None:
    """App-wide dependency: an id in the path that cannot name a row (not a positive decimal
    number of ASCII digits, or past the largest id) is a page that does not exist: 404,
    before any database sees a value it cannot bind."""
    for name, value in request.path_params.items():
        if is_row_number(name) and not (
            isinstance(value, str)
            and value.isascii()
            and value.isdigit()
            and 0 < int(value) <= MAX_ROW_ID
        ):
            raise NotFound()


async def csrf_protect(request: Request) -> None:
    """App-wide dependency: every state-changing request must prove it came from our pages."""
    if request.method in SAFE_METHODS:
        return
    if request.url.path.startswith(CSRF_EXEMPT_PREFIXES):
        return
    if getattr(request.state, "auth", None) == "token":
        return
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site == "cross-site":
        raise CSRFFailed()
    origin = request.headers.get("origin")
    if origin and origin != "null" and not _same_origin(origin, request):
        raise CSRFFailed()
    expected = getattr(request.state, "csrf_token", None)
    supplied = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if supplied is None and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        try:
            form = await request.form()
        except StarletteHTTPException:
            raise  # 413 and the like say more than "could not be read"
        except Exception as exc:  # malformed bodies are the client's fault, never a 500
            raise BadRequest("The form data could not be read.") from exc
        value = form.get(CSRF_FIELD)
        supplied = value if isinstance(value, str) else None
    if not expected or not supplied or not hmac.compare_digest(expected, supplied):
        raise CSRFFailed()


def _same_origin(origin: str, request: Request) -> bool:
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return bool(parts.netloc) and parts.netloc == host


class SecurityHeadersMiddleware:
    """Adds the security headers to every response and turns unexpected errors into a plain
    500 page without details (the traceback goes to the log, never to the client)."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def _headers(self, scope: Scope, nonce: str) -> dict[str, str]:
        script_src = f"'nonce-{nonce}' 'strict-dynamic'"
        style_src = "'self'"
        headers = {
            "content-security-policy": (
                f"default-src 'self'; script-src {script_src}; style-src {style_src}; "
                "img-src 'self' https: data:; font-src 'self'; connect-src 'self'; "
                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
            ),
            "x-content-type-options": "nosniff",
            "referrer-policy": "strict-origin-when-cross-origin",
            "x-frame-options": "DENY",
            "cross-origin-opener-policy": "same-origin",
            "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
        }
        if self.settings.cookie_secure:
            headers["strict-transport-security"] = "max-age=31536000; includeSubDomains"
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        state = scope.setdefault("state", {})
        state["csp_nonce"] = nonce
        extra = self._headers(scope, nonce)
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
                viewer = state.get("viewer")
                shared = headers.get("cache-control", "").startswith("public")
                if viewer is not None and viewer.is_authenticated and not shared:
                    # Pages for a signed-in person must not be kept by shared caches (a
                    # response the same for everyone says so: a public picture).
                    headers["cache-control"] = "no-store"
                headers.append("vary", "Cookie")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except UNAVAILABLE_ERRORS as exc:
            logger.warning("database unavailable on %s: %s", scope["path"], exc)
            if started:
                raise
            await send_unavailable(scope, send_with_headers, RETRY_AFTER_SECONDS)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope["path"])
            if started:
                raise
            await _send_plain_error(scope, send_with_headers)


async def _send_plain_error(scope: Scope, send: Callable[[Message], Awaitable[None]]) -> None:
    await send_fixed_error(
        scope,
        send,
        500,
        "server_error",
        "Something went wrong on our side.",
        "Please try again in a moment.",
    )


async def send_unavailable(
    scope: Scope, send: Callable[[Message], Awaitable[None]], retry_after: int
) -> None:
    """503: the site is busy or its database is out of reach; the client may retry."""
    await send_fixed_error(
        scope,
        send,
        503,
        "unavailable",
        "The site is busy right now.",
        f"Please try again in {retry_after} seconds.",
        extra_headers=[(b"retry-after", str(retry_after).encode())],
    )


async def send_fixed_error(
    scope: Scope,
    send: Callable[[Message], Awaitable[None]],
    status: int,
    code: str,
    message: str,
    advice: str,
    *,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A small self-contained answer for failures outside the app (no templates, no database)."""
    if scope["path"].startswith("/api/"):
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        content_type = b"application/json"
    else:
        body = (
            f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{status}</title>"
            f"<h1>{message}</h1><p>{advice}</p></html>"
        ).encode()
        content_type = b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *(extra_headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimitMiddleware:
    """Refuses bodies over MAX_BODY_BYTES before the framework buffers them; `larger` names
    paths with a limit of their own (where images are uploaded)."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.larger.get(scope["path"], self.max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > max_bytes:
            await _send_too_large(scope, send)
            return
        received = 0
        started = False

        async def counting_receive() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge()
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        # A body without Content-Length (chunked) is counted as it arrives. The framework
        # answers BodyTooLarge itself when it reads the body (it is an HTTP error); a reader
        # outside it (a middleware) lets it come here.
        try:
            await self.app(
                scope, receive if declared is not None else counting_receive, watching_send
            )
        except BodyTooLarge:
            if started:
                raise
            await _send_too_large(scope, send)


class BodyTooLarge(StarletteHTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=413, detail="The request body is too large.")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_too_large(scope: Scope, send: Send) -> None:
    await send_fixed_error(
        scope,
        send,
        413,
        "payload_too_large",
        "The request body is too large.",
        "Shorten the text and try again.",
    )
