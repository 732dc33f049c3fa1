"""Logging for every process: text or one JSON object per line (settings.log_format), each
record carrying the id of the request that caused it.

The request id lives in a context variable: the web middleware (community.core.metrics) sets it
for each request, the outbox stores it on the rows a request writes (community.core.outbox), and
the worker sets it again while it handles such a row (community.core.jobs), so grepping one id
finds the request and every job it caused.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from community.core.settings import Settings

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_MAX_LENGTH = 64
# What a proxy or a client may hand us: ids, UUIDs, trace ids. Nothing that could break a log
# line, a header or a query (no spaces, quotes, newlines).
_WELL_FORMED = re.compile(rf"[A-Za-z0-9._:=+/-]{{8,{REQUEST_ID_MAX_LENGTH}}}")
# A batch job handles the rows of many requests: its lines name at most this many of them.
_BATCH_IDS = 10

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return request_id.get()


def origin_request_id() -> str | None:
    """The one id to store on work recorded now: a batch job's first request, else the current
    one."""
    value = request_id.get()
    return value.split(",", 1)[0] if value else None


def accept_request_id(incoming: str | None) -> str:
    """The incoming id when it is well formed (so a proxy's id joins its logs to ours), else a
    new one."""
    if incoming is not None and _WELL_FORMED.fullmatch(incoming):
        return incoming
    # Unique, not secret: 128 random bits from the seeded generator cost a tenth of uuid4's
    # read from the kernel (random reseeds in a forked worker process).
    return f"{random.getrandbits(128):032x}"


@contextmanager
def request_id_bound(value: str | None) -> Iterator[None]:
    token = request_id.set(value)
    try:
        yield
    finally:
        request_id.reset(token)


def batch_request_id(ids: list[str | None]) -> str | None:
    """The ids of the requests behind a batch, in order, each once (a few at most)."""
    distinct = list(dict.fromkeys(value for value in ids if value))
    return ",".join(distinct[:_BATCH_IDS]) or None


class _RequestIdFilter(logging.Filter):
    """Puts the current request id on each record (JSON: only when there is one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        value = request_id.get()
        if value is not None:
            record.request_id = value
        return True


# The addresses of e-mailed links carry their secret (community.accounts.email_links): an access
# log line, or a warning naming the path, would hand a live reset or sign-in link to whoever
# reads the logs. The token is replaced; "resend" is a page, not a token.
_LINK_TOKEN = re.compile(
    r"(/(?:password/reset|email/confirm|email/change)/)(?!resend\b)[^/?#\s\"']+"
)
HIDDEN_MARK = "[hidden]"


def hide_link_tokens(text: str) -> str:
    return _LINK_TOKEN.sub(rf"\g<1>{HIDDEN_MARK}", text)


class _LinkTokenFilter(logging.Filter):
    """Hides e-mailed links' tokens in a record's message and arguments (uvicorn's access log
    passes the path as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = hide_link_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                hide_link_tokens(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


class _CommunityHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so configuring again replaces it."""


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        timestamp="time",
        rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
        # uvicorn repeats its message with terminal colours; one copy is enough.
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
    )


def formatter_for(settings: Settings) -> logging.Formatter:
    if settings.log_format == "json":
        return json_formatter()
    return logging.Formatter(TEXT_FORMAT, defaults={"request_id": "-"})


def make_handler(settings: Settings, stream: Any = None) -> logging.Handler:
    """A handler with this site's format and the request id on each record."""
    handler = _CommunityHandler(stream)
    handler.setFormatter(formatter_for(settings))
    handler.addFilter(_RequestIdFilter())
    handler.addFilter(_LinkTokenFilter())
    return handler


def configure_logging(settings: Settings) -> None:
    """The root logger writes to stderr in the configured format and level.

    Replaces the handler an earlier call installed and the plain one logging.basicConfig makes
    (the CLI's default), and leaves any other handler alone (a test runner's capture)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) in (logging.StreamHandler, _CommunityHandler):
            root.removeHandler(handler)
    root.addHandler(make_handler(settings))
    root.setLevel(settings.log_level)
    # uvicorn's access lines go to uvicorn's own handler with the text format: filtered at
    # their logger (a logger's filters survive uvicorn's dictConfig).
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(each, _LinkTokenFilter) for each in access.filters):
        access.addFilter(_LinkTokenFilter())


def uvicorn_log_config(settings: Settings) -> dict[str, Any] | None:
    """uvicorn's own logging set-up: its default for text; none for JSON, so its loggers
    propagate to the root handler and print JSON like everything else."""
    if settings.log_format == "json":
        return None
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG
