"""HTTP details every route gets without knowing: HEAD is answered like GET without the body,
and form bodies must be UTF-8 (what our pages send), so text is never stored misread.

Plain ASGI middlewares, like the others in community/core/security.py.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from community.core.security import SAFE_METHODS, send_fixed_error

FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")


class HeadAsGet:
    """HEAD on any page or API resource: the GET's status and headers, no body (RFC 9110
    9.3.2). Routes are declared for GET only; without this they answered 405."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # drop the chunks; the last (empty) message ends the response
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        as_get = {**scope, "method": "GET"}
        try:
            await self.app(as_get, receive, send_without_body)
        finally:
            # The route that answered, for the metrics' per-route latency (community.core.metrics).
            if "route" in as_get:
                scope["route"] = as_get["route"]


class RequireUtf8Forms:
    """A form body that is not UTF-8 is refused with a 400 before any route reads it.

    Without this a form field's bytes that are not UTF-8 were read as Latin-1 and stored
    garbled. Browsers send our forms as UTF-8 (every page declares it). The body is read here,
    within the size limit of the middleware outside, and handed on unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = _header(scope, b"content-type")
        if (
            scope["type"] != "http"
            or scope["method"] in SAFE_METHODS
            or not content_type.lower().startswith(FORM_TYPES)
        ):
            await self.app(scope, receive, send)
            return
        body, last = await _read_body(receive)
        if not last:  # the client went away mid-body: nothing to answer
            return
        if not _is_utf8_form(content_type, body):
            await send_fixed_error(
                scope,
                send,
                400,
                "invalid_encoding",
                "The form was not sent as UTF-8 text.",
                "Send the form again from the page, or encode it as UTF-8.",
            )
            return
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return b""


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _is_utf8_form(content_type: bytes, body: bytes) -> bool:
    kind, options = parse_options_header(content_type)
    if kind == b"application/x-www-form-urlencoded":
        try:
            # Raw bytes and percent-escapes alike must make UTF-8.
            parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            return False
        return True
    boundary = options.get(b"boundary")
    if not boundary:
        return True  # not a form the framework can read; it answers that itself
    return _multipart_text_is_utf8(boundary, body)


def _multipart_text_is_utf8(boundary: bytes, body: bytes) -> bool:
    """Every part that is not a file (no filename) must be UTF-8; files are bytes."""
    parts: list[tuple[bool, bytearray]] = []
    header_name = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        parts.append((False, bytearray()))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        if bytes(header_name).lower() == b"content-disposition":
            _kind, disposition = parse_options_header(bytes(header_value))
            if b"filename" in disposition:
                parts[-1] = (True, parts[-1][1])
        header_name.clear()
        header_value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(data[start:end])

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except Exception:  # a malformed body: the framework's own parser answers it
        return True
    try:
        for is_file, data in parts:
            if not is_file:
                bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
