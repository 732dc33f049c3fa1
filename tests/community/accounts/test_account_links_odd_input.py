"""Odd input on the e-mailed-link pages, sign-up, "Forgot password?" and the change of address:
huge, unicode, NUL and percent-encoded tokens and fields, missing and repeated fields, wrong
methods, htmx requests. Never a 500, nothing changes, and nothing is e-mailed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core.account_models import EmailLink
from community.core.models import User
from community.core.outbox import OutboxEvent
from tests.conftest import PASSWORD, csrf_token, fresh, log_in

TOKENS = [
    "x" * 5000,
    "%00",
    "a%00b",
    "%ED%A0%80",  # an encoded lone surrogate
    "ünïcødé-🔑",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "resend",
    "' OR 1=1 --",
]
LINK_PAGES = ["/password/reset/{}", "/email/confirm/{}", "/email/change/{}"]
FIELDS = ["", "\x00", "a" * 100_000, "ünï\u202ecødé", "x@y\r\nBcc: victim@example.com", "%00"]


@pytest.mark.parametrize("page", LINK_PAGES)
def test_odd_tokens_are_a_410_never_a_500(
    client: TestClient, db: Session, make_user: Callable[..., User], page: str
) -> None:
    make_user("priya")
    for token in TOKENS:
        path = page.format(token)
        for headers in ({}, {"hx-request": "true"}):
            shown = client.get(path, headers=headers)
            assert shown.status_code in (404, 410), (path, shown.status_code)
            if shown.status_code == 410:
                assert shown.headers["referrer-policy"] == "no-referrer"
                assert "no-store" in shown.headers["cache-control"]
        sent = client.post(
            path,
            data={"password": "violet-tundra-mosaic-9", "csrf_token": csrf_token(client)},
            follow_redirects=False,
        )
        # 303: /email/confirm/resend is the send-again button, for signed-in members only.
        assert sent.status_code in (303, 404, 405, 410), (path, sent.status_code)
        assert client.put(path).status_code in (403, 404, 405)
    fresh(db)
    assert db.scalar(select(func.count()).select_from(EmailLink)) == 0


def test_odd_fields_never_500_and_send_nothing(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    make_user("priya")
    for value in FIELDS:
        forgot = client.post(
            "/password/forgot", data={"email": value, "csrf_token": csrf_token(client)}
        )
        assert forgot.status_code in (400, 422), (repr(value[:20]), forgot.status_code)
        signed_up = client.post(
            "/register",
            data={
                "username": value,
                "email": value,
                "password": value,
                "display_name": value,
                "csrf_token": csrf_token(client, "/register"),
            },
        )
        assert signed_up.status_code in (400, 422), (repr(value[:20]), signed_up.status_code)
    # Repeated and missing fields.
    repeated = client.post(
        "/password/forgot",
        content=f"email=a%40b.example&email=c%40d.example&csrf_token={csrf_token(client)}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert repeated.status_code in (200, 422)
    missing = client.post("/register", data={"csrf_token": csrf_token(client, "/register")})
    assert missing.status_code == 422
    log_in(client, "priya")
    for value in FIELDS:
        changed = client.post(
            "/account/email",
            data={
                "new_email": value,
                "email_password": PASSWORD,
                "csrf_token": csrf_token(client, "/account"),
            },
        )
        assert changed.status_code in (400, 422, 429), (repr(value[:20]), changed.status_code)
    fresh(db)
    kinds = db.scalars(select(OutboxEvent.kind)).all()
    assert all(kind == "accounts.reset_password" for kind in kinds), kinds
    assert db.scalar(select(func.count()).select_from(User)) == 1
