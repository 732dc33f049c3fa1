"""Shared steps of the account tests: posting forms with the CSRF token, reading links from the
real SMTP server's inbox."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import Message

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from community.core import service
from community.core.models import User
from tests.conftest import Inbox, csrf_token

SESSION_COOKIE = "community_session"  # the test settings' (no __Host- prefix over http)

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


def sign_in_directly(client: TestClient, db: Session, user: User) -> None:
    """A session for `user` as a single sign-on or another non-password sign-in would start
    (password sign-in refuses unconfirmed addresses)."""
    started = service.log_in(
        db,
        user,
        service.ClientInfo(
            previous_token=None, max_age=timedelta(days=1), ip="192.0.2.9", user_agent="test"
        ),
    )
    db.commit()
    client.cookies.set(SESSION_COOKIE, started.token)
