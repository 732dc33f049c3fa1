"""The account page's "Where you are signed in": a readable device and place per session, and
signing one out (one's own only); API tokens with their creation and last use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.accounts import devices
from community.core import service
from community.core.account_models import UserSession
from community.core.clock import utcnow
from community.core.i18n import override
from community.core.models import User
from community.core.service import ClientInfo
from tests.conftest import csrf_token, fresh, log_in

UserFactory = Callable[..., User]

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "label"),
    [
        (FIREFOX_WINDOWS, "Firefox 128 on Windows"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        (CHROME_MAC, "Chrome 126 on macOS"),
        (CHROME_ANDROID, "Chrome 126 on Android"),
        ("curl/8.5.0", "curl 8"),
        ("python-httpx/0.27.0", "Unknown device"),
        ("", "Unknown device"),
        (None, "Unknown device"),
        ("\x00" * 300, "Unknown device"),
    ],
)
def test_devices_are_named_from_the_user_agent(user_agent: str | None, label: str) -> None:
    assert devices.device_label(user_agent) == label


@pytest.mark.parametrize(
    ("ip", "locale", "place"),
    [
        ("8.8.8.8", "en", "United States"),
        ("81.2.69.142", "en", "United Kingdom"),
        ("81.2.69.142", "es", "Reino Unido"),
        ("2001:4860:4860::8888", "en", "United States"),
        ("127.0.0.1", "en", "This computer"),
        ("::1", "en", "This computer"),
        ("10.1.2.3", "en", "Private network"),
        ("192.168.0.7", "en", "Private network"),
        ("fd00::1", "en", "Private network"),
        ("unknown", "en", "Unknown place"),
        (None, "en", "Unknown place"),
        ("testclient", "en", "Unknown place"),
    ],
)
def test_places_are_countries_in_the_readers_language(
    ip: str | None, locale: str, place: str
) -> None:
    with override(locale):
        assert devices.place_label(ip, locale) == place


def _session(db: Session, user: User, *, user_agent: str, ip: str) -> int:
    client = ClientInfo(
        previous_token=None, max_age=timedelta(days=30), ip=ip, user_agent=user_agent
    )
    token = service.log_in(db, user, client).token
    db.commit()
    found = db.scalar(select(UserSession.id).where(UserSession.user_agent == user_agent))
    assert found is not None and token
    return found


def test_the_account_page_lists_devices_and_places_and_signs_one_out(
    client: TestClient, db: Session, make_user: UserFactory
) -> None:
    member = make_user("mira")
    phone = _session(db, member, user_agent=SAFARI_IPHONE, ip="81.2.69.142")
    _session(db, member, user_agent=FIREFOX_WINDOWS, ip="8.8.8.8")
    old = _session(db, member, user_agent=CHROME_MAC, ip="10.0.0.5")
    row = db.get(UserSession, old)
    assert row is not None
    row.expires_at = utcnow() - timedelta(minutes=1)  # expired: not listed
    db.commit()
    log_in(client, member.username)
    page = client.get("/account").text
    table = page.split('id="sessions"', 1)[1].split("</table>", 1)[0]
    assert "Safari on iPhone" in table and "United Kingdom" in table
    assert "Firefox 128 on Windows" in table and "United States" in table
    assert "Chrome 126 on macOS" not in table
    assert table.count("this device") == 1
    assert table.count('action="/account/sessions/') == 2  # not on this device's row

    token = csrf_token(client, "/account")
    response = client.post(
        f"/account/sessions/{phone}/revoke", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    fresh(db)
    assert db.get(UserSession, phone).revoked_at is not None  # type: ignore[union-attr]
    assert "Safari on iPhone" not in client.get("/account").text
    # Again: already signed out, 404.
    again = client.post(f"/account/sessions/{phone}/revoke", data={"csrf_token": token})
    assert again.status_code == 404


def test_another_members_session_cannot_be_signed_out(
    client: TestClient, db: Session, make_user: UserFactory
) -> None:
    member, other = make_user("nina"), make_user("otto")
    theirs = _session(db, other, user_agent=FIREFOX_WINDOWS, ip="8.8.8.8")
    log_in(client, member.username)
    token = csrf_token(client, "/account")
    response = client.post(f"/account/sessions/{theirs}/revoke", data={"csrf_token": token})
    assert response.status_code == 404
    for bad in ("abc", "99999999999999999999999", "-1"):
        assert client.post(
            f"/account/sessions/{bad}/revoke", data={"csrf_token": token}
        ).status_code in (404, 422)
    # Without the CSRF token nothing happens either.
    fresh(db)
    mine = db.scalar(select(UserSession.id).where(UserSession.user_id == member.id))
    assert client.post(f"/account/sessions/{mine}/revoke").status_code == 403
    fresh(db)
    assert db.get(UserSession, theirs).revoked_at is None  # type: ignore[union-attr]
    assert db.get(UserSession, mine).revoked_at is None  # type: ignore[union-attr]


def test_api_tokens_show_when_they_were_made_and_last_used(
    client: TestClient, db: Session, make_user: UserFactory
) -> None:
    member = make_user("pia")
    log_in(client, member.username)
    made = client.post(
        "/account/tokens", data={"name": "sync", "csrf_token": csrf_token(client, "/account")}
    )
    raw = made.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    section = client.get("/account").text.split('id="tokens-heading"', 1)[1]
    assert "Created" in section and "never" in section
    assert (
        client.get("/api/v1/me/flags", headers={"authorization": f"Bearer {raw}"}).status_code
        == 200
    )
    section = client.get("/account").text.split('id="tokens-heading"', 1)[1]
    assert "never" not in section.split("</table>", 1)[0]
