"""HTML helpers shared by every package: templates, the page-or-fragment render helper, flash
messages, safe redirects and the error pages (JSON under /api/)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from babel.dates import format_datetime as babel_format_datetime
from babel.dates import format_timedelta
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2_fragments import render_block
from markupsafe import Markup
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from community.core import i18n, policy
from community.core.auth import ANONYMOUS, Viewer, client_ip
from community.core.brand_look import BrandLook, brand_links, look_of, request_host
from community.core.clock import utcnow
from community.core.db import RETRY_AFTER_SECONDS, UNAVAILABLE_ERRORS, no_queries
from community.core.errors import AppError, FormErrors, LoginRequired, TooManyRequests
from community.core.hosts import HOST_BRAND, brand_directory
from community.core.i18n import gettext as _
from community.core.labels import label, queue_label, sort_label
from community.core.models import Brand
from community.core.viewcount import daily_viewer_key, is_bot

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = PROJECT_ROOT / "templates"
STATIC_DIR = PROJECT_ROOT / "static"
FLASH_COOKIE = "flash"


def build_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates ship with the code and change only with a restart; checking each one's
        # modification time cost some twenty stat() calls per page (a thread page's includes).
        auto_reload=False,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["language_name"] = i18n.language_name
    env.globals["label"] = label
    # A global, not an import per template: a block rendered alone (an htmx fragment) does not
    # run the template's top-level imports.
    env.globals["icon"] = _memoized_icon(env.get_template("_components/icons.html").module.icon)  # type: ignore[attr-defined]
    env.globals["queue_label"] = queue_label
    env.globals["sort_label"] = sort_label
    env.globals["now"] = utcnow
    env.globals["supported_locales"] = i18n.SUPPORTED_LOCALES
    env.filters["datetime"] = format_datetime
    env.filters["ago"] = format_ago
    env.filters["host"] = url_host
    env.filters["duration"] = format_duration
    return env


def _memoized_icon(macro: Callable[..., Markup]) -> Callable[..., Markup]:
    """The icon macro renders the same SVG for the same name and label: a listing of 30 solved
    threads called it 30 times."""

    @functools.lru_cache(maxsize=256)
    def icon(name: str, label: str | None, is_markup: bool) -> Markup:
        return macro(name, label)

    # Markup("a&amp;b") and "a&b" hash alike but escape differently: which it is is in the key.
    return lambda name, label=None: icon(name, label, isinstance(label, Markup))


def format_duration(seconds: int | float | None) -> str:
    """ "12 minutes" in the reader's language (the sign is the caller's to word)."""
    if seconds is None:
        return ""
    return format_timedelta(
        timedelta(seconds=abs(seconds)), threshold=1.1, locale=i18n.active_locale()
    )


def url_host(url: str) -> str:
    """The host of a link, for attribution lines ("beer.stackexchange.com")."""
    return urlsplit(url).hostname or url


def format_datetime(value: Any, style: str = "medium") -> str:
    if value is None:
        return ""
    return _formatted_datetime(value, style, i18n.active_locale())


# A thread page formats each post's and comment's time on every view: Babel takes ~0.1 ms a
# call (pattern and locale lookups), and the same posts are shown again and again.
@functools.lru_cache(maxsize=8192)
def _formatted_datetime(value: datetime, style: str, locale: str) -> str:
    return babel_format_datetime(value, format=style, locale=locale, tzinfo=None)


def format_ago(value: datetime | None) -> str:
    """ "3 hours ago" in the reader's language."""
    if value is None:
        return ""
    return _formatted_ago(_ago_bucket(value - utcnow()), i18n.active_locale())


def _ago_bucket(delta: timedelta) -> int:
    """The age in whole seconds, coarsened as it grows (a minute past a day, an hour past a
    week): "3 days ago" reads the same a minute later, and the cache below then hits."""
    seconds = int(delta.total_seconds())
    size = abs(seconds)
    step = 1 if size < 86_400 else 60 if size < 7 * 86_400 else 3600
    return seconds - seconds % step if seconds >= 0 else -((-seconds) - (-seconds) % step)


@functools.lru_cache(maxsize=8192)
def _formatted_ago(seconds: int, locale: str) -> str:
    return format_timedelta(
        timedelta(seconds=seconds), add_direction=True, threshold=1.1, locale=locale
    )


def is_htmx(request: Request) -> bool:
    return (
        request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"
    )


def page_viewer_key(request: Request, user_id: int | None) -> str | None:
    """Whom a page view counts for today, or None for a bot (whose views never count)."""
    user_agent = request.headers.get("user-agent")
    if is_bot(user_agent):
        return None
    return daily_viewer_key(
        request.app.state.settings.effective_secret_key,
        user_id=user_id,
        ip=client_ip(request),
        user_agent=user_agent,
        day=utcnow().date(),
    )


def site_brand(request: Request) -> tuple[str, str] | None:
    """The default brand's (name, slug), from the brands kept briefly (community.core.hosts)."""
    directory = brand_directory(request.app.state)
    found = directory.default if directory else None
    return (found.name, found.slug) if found else None


def current_brand(request: Request, page_brand: object = None) -> BrandLook | None:
    """The brand whose look a page shows: the page's own (a thread's, a forum's, /b/<slug>'s,
    from the row the route loaded: no query), else the brand of the host it is read on, else
    the site's default brand."""
    if isinstance(page_brand, Brand):
        return look_of(page_brand)
    host_look: BrandLook | None = getattr(request.state, HOST_BRAND, None)
    if host_look is not None:
        return host_look
    directory = brand_directory(request.app.state)
    return directory.default if directory else None


def brand_context(request: Request, page_brand: object = None) -> dict[str, Any]:
    """What base.html shows of the current brand: its look, the header's links inside it
    (relative to its own host when read there), and which staff links this viewer gets in it."""
    look = current_brand(request, page_brand)
    if look is None:
        return {"current_brand": None}
    viewer: Viewer = getattr(request.state, "viewer", ANONYMOUS)
    own_host = look.host is not None and request_host(request.headers.get("host", "")) == look.host
    return {
        "current_brand": look,
        "brand_links": brand_links(look.slug, own_host=own_host),
        "brand_staff": {
            "moderation": policy.can_moderate(viewer, look.id),
            "agent": policy.is_agent(viewer, look.id),
            "admin": policy.is_brand_admin(viewer, look.id),
        },
    }


class RouteUrls:
    """URL building for templates from a name → path table built once per app (FastAPI's
    url_path_for walks every router on each call: a real cost at ~30 links a page)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.paths: dict[str, str] = {}
        for route in walk_routes(app.router.routes):
            name, path = getattr(route, "name", None), getattr(route, "path", None)
            if isinstance(name, str) and isinstance(path, str):
                self.paths.setdefault(name, path)

    def __call__(self, name: str, **params: object) -> str:
        path = self.paths.get(name)
        if path is None:
            return str(self.app.url_path_for(name, **params))
        return path.format(**{key: quote(str(value), safe="") for key, value in params.items()})


def walk_routes(routes: list[Any]) -> list[Any]:
    """Every route, those of included routers too (FastAPI keeps those inside the router)."""
    found: list[Any] = []
    for route in routes:
        found.append(route)
        inner = getattr(route, "original_router", None)
        if inner is not None:
            found.extend(walk_routes(inner.routes))
    return found


def route_urls(request: Request) -> RouteUrls:
    urls: RouteUrls | None = getattr(request.app.state, "route_urls", None)
    if urls is None:
        urls = request.app.state.route_urls = RouteUrls(request.app)
    return urls


def base_context(request: Request) -> dict[str, Any]:
    state = request.state
    viewer: Viewer = getattr(state, "viewer", ANONYMOUS)
    context: dict[str, Any] = {
        "request": request,
        "viewer": viewer,
        "csrf_token": getattr(state, "csrf_token", ""),
        "csp_nonce": getattr(state, "csp_nonce", ""),
        "locale": getattr(state, "locale", i18n.DEFAULT_LOCALE),
        "flashes": getattr(state, "flashes", None) or read_flashes(request),
        "url": route_urls(request),
        "current_path": request.url.path,
    }
    brand = site_brand(request)
    if brand:
        context["site_name"], context["brand_slug"] = brand
    return context


# What a domain adds to every whole page (a brand's known-issue banner): called with the request
# and the page's context before rendering, it returns more values. The composition root
# registers them (add_page_context), so the core knows no domain.
PageContext = Callable[[Request, dict[str, Any]], dict[str, Any]]


def add_page_context(app: FastAPI, provider: PageContext) -> None:
    app.state.page_context = [*getattr(app.state, "page_context", ()), provider]


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    block: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a whole page, or only `block` when htmx asked for a fragment.

    Templates never query: everything the page shows is loaded before this call (eager
    loading in the service or loader that feeds it). A template that still reaches the
    database, say through a lazy relationship, raises QueryWhileRendering under the
    `strict_queries` setting (the tests) and logs a warning naming the template otherwise
    (production, where the page still renders).
    """
    env: Environment = request.app.state.templates
    data = base_context(request) | (context or {})
    fragment = block is not None and is_htmx(request)
    if not fragment:
        data |= brand_context(request, data.get("brand"))
        for provide in getattr(request.app.state, "page_context", ()):
            data |= provide(request, data)
    with no_queries(template, strict=request.app.state.settings.strict_queries):
        if block is not None and fragment:
            html = render_block(env, template, block, data)
        else:
            html = env.get_template(template).render(data)
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    response.headers.append("vary", "HX-Request")
    if data["flashes"] and not fragment:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def render_fragment(request: Request, template: str, block: str, context: dict[str, Any]) -> Markup:
    """One block of a page as HTML, for a page to embed (community.core.fragment_cache)."""
    env: Environment = request.app.state.templates
    data = base_context(request) | context
    with no_queries(template, strict=request.app.state.settings.strict_queries):
        html = render_block(env, template, block, data)
    return Markup(html)  # noqa: S704 - the output of an autoescaping template


# --- flash messages --------------------------------------------------------------------------


def _flash_signature(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), f"flash:{payload}".encode(), hashlib.sha256).hexdigest()[:32]


def flash_redirect(
    request: Request, location: str, message: str, *, category: str = "info"
) -> RedirectResponse:
    """Redirect (303, so the browser GETs) and show `message` on the next page."""
    response = RedirectResponse(location, status_code=303)
    payload = base64.urlsafe_b64encode(
        json.dumps([{"category": category, "message": message}]).encode()
    ).decode()
    secret = request.app.state.settings.effective_secret_key
    response.set_cookie(
        FLASH_COOKIE,
        f"{payload}.{_flash_signature(secret, payload)}",
        max_age=60,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.cookie_secure,
    )
    return response


def read_flashes(request: Request) -> list[dict[str, str]]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or "." not in raw:
        return []
    payload, signature = raw.rsplit(".", 1)
    secret = request.app.state.settings.effective_secret_key
    if not hmac.compare_digest(signature, _flash_signature(secret, payload)):
        return []
    try:
        items = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, TypeError):
        return []
    return [item for item in items if isinstance(item, dict)][:5]


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site relative paths: '/x' yes; '//evil', '/\\evil', 'https:evil' no."""
    if not target or len(target) > 2000:
        return default
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ch in target for ch in "\\\r\n\t\x00"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


# --- errors ----------------------------------------------------------------------------------


def wants_json(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(
    request: Request,
    status_code: int,
    code: str,
    message: str,
    *,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if wants_json(request):
        body: dict[str, Any] = {"error": {"code": code, "message": message}}
        if details is not None:
            body["error"]["details"] = details
        return JSONResponse(body, status_code=status_code, headers=headers)
    return render(
        request,
        "errors/error.html",
        {"status_code": status_code, "code": code, "message": message, "details": details},
        status_code=status_code,
        headers=headers,
    )


def _default_message(status_code: int) -> str:
    messages = {
        400: _("The request could not be understood."),
        401: _("Please log in to continue."),
        403: _("You do not have permission to do that."),
        404: _("We could not find that page."),
        405: _("That action is not allowed here."),
        409: _("Someone else changed this at the same time. Reload and try again."),
        413: _("That was too much to send."),
        422: _("Some of the information was not valid."),
        429: _("Too many attempts. Please wait a moment and try again."),
        503: _("The site is busy right now. Please try again in a moment."),
    }
    return messages.get(status_code, _("Something went wrong."))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def handle_app_error(request: Request, exc: AppError) -> Response:
        if isinstance(exc, LoginRequired) and not wants_json(request):
            target = safe_next(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        headers = None
        if isinstance(exc, TooManyRequests):
            headers = {"retry-after": str(exc.retry_after_seconds)}
        # Errors that tell the client more (a merged thread's target, a missing second
        # factor) carry it as `details`.
        details: Any = exc.errors if isinstance(exc, FormErrors) else getattr(exc, "details", None)
        if exc.code == "csrf_failed":
            message = _(
                "This form has expired or did not come from this site. "
                "Reload the page and try again."
            )
        else:
            message = exc.message or _default_message(exc.status_code)
        return error_response(
            request, exc.status_code, exc.code, message, details=details, headers=headers
        )

    @app.exception_handler(DataError)
    async def handle_data_error(request: Request, exc: DataError) -> Response:
        # The database refused a value (a NUL character, an out-of-range number): the input
        # was at fault, so say so instead of failing with a 500.
        logger.warning("database refused input on %s: %s", request.url.path, exc.orig)
        return error_response(
            request, 400, "invalid_characters", _("The request contained values we cannot store.")
        )

    @app.exception_handler(OverflowError)
    async def handle_overflow(request: Request, exc: OverflowError) -> Response:
        # A number too large for the database driver (SQLite refuses past 2**63 - 1 before
        # the query runs): the input's fault.
        logger.warning("number out of range on %s: %s", request.url.path, exc)
        return error_response(
            request, 400, "number_out_of_range", _("A number in the request is too large.")
        )

    async def handle_unavailable(request: Request, exc: Exception) -> Response:
        # Busy or unreachable database: the client may retry; nothing was changed.
        logger.warning("database unavailable on %s: %s", request.url.path, exc)
        return error_response(
            request,
            503,
            "unavailable",
            _default_message(503),
            headers={"retry-after": str(RETRY_AFTER_SECONDS)},
        )

    for error_type in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error_type, handle_unavailable)

    @app.exception_handler(StarletteHTTPException)
    async def handle_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return error_response(
            request,
            exc.status_code,
            code,
            _default_message(exc.status_code),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def handle_validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = [
            {
                "field": ".".join(str(part) for part in error.get("loc", ()) if part != "body"),
                "message": error.get("msg", ""),
                "type": error.get("type", ""),
            }
            for error in exc.errors()
        ]
        return error_response(request, 422, "invalid_input", _default_message(422), details=details)
