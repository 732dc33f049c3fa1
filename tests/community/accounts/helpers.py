"""Shared steps of the account tests: posting forms with the CSRF token, reading links from the
real SMTP server's inbox."""

from __future__ import annotations

import re
from email.message import Message

from fastapi.testclient import TestClient
from httpx import Response

from tests.conftest import Inbox, csrf_token

LINK = re.compile(r"https://[^\s\"<>]+/(?:password/reset|email/confirm|email/change)/[\w-]+")


def post_form(
    client: TestClient, path: str, data: dict[str, str], *, page: str = "/login"
) -> Response:
    return client.post(
        path, data=data | {"csrf_token": csrf_token(client, page)}, follow_redirects=False
    )


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            return payload.decode() if isinstance(payload, bytes) else ""
    return ""


def links_to(inbox: Inbox, address: str) -> list[str]:
    """Every account link e-mailed to `address`, oldest first."""
    return [match for message in inbox.to(address) for match in LINK.findall(text_of(message))]


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]
