"""Confirm-first sign-up: the account waits for its address's link, nobody is signed in, and
the page never says an address already has an account (its owner gets an e-mail instead)."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core import service
from community.core.account_models import EmailLink, LinkPurpose
from community.core.auth import Passwords
from community.core.models import Forum, User
from community.core.schemas import RegistrationIn
from community.worker import Worker
from tests.community.accounts.helpers import links_to, path_of, post_form
from tests.conftest import PASSWORD, Inbox, drain, fresh

MailWorker = Callable[[], Worker]
_VARYING = re.compile(r'[0-9a-f]{32,}|nonce="[^"]+"')


def _sign_up(client: TestClient, **fields: str) -> object:
    data = {
        "username": "jordan_k",
        "email": "jordan@example.com",
        "password": PASSWORD,
        "display_name": "Jordan K",
    } | fields
    return post_form(client, "/register", data, page="/register")


def _users(db: Session) -> int:
    fresh(db)
    return db.scalar(select(func.count()).select_from(User)) or 0


def test_sign_up_waits_for_the_link_which_confirms_and_the_password_signs_in(
    db: Session, client: TestClient, mail_worker: MailWorker, smtp: tuple[Inbox, int]
) -> None:
    inbox, _port = smtp
    response = _sign_up(client)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "We sent a link to jordan@example.com" in response.text  # type: ignore[attr-defined]
    assert client.get("/api/v1/me").status_code == 401
    fresh(db)
    user = db.scalar(select(User).where(User.username_key == "jordan_k"))
    assert user is not None and user.email_verified_at is None

    drain(mail_worker())
    assert inbox.subject(0, "jordan@example.com") == "Confirm your e-mail address"
    path = path_of(links_to(inbox, "jordan@example.com")[0])
    assert path.startswith("/email/confirm/")
    fresh(db)
    link = db.scalars(select(EmailLink)).one()
    assert link.purpose == LinkPurpose.CONFIRM_EMAIL
    assert (link.expires_at - link.created_at).total_seconds() == 48 * 3600

    # The page (fetched by mail scanners too) does not confirm; its button does.
    for _ in range(2):
        page = client.get(path)
        assert page.status_code == 200
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "Confirm my address" in page.text
    fresh(db)
    assert db.get(User, user.id).email_verified_at is None  # type: ignore[union-attr]

    confirmed = post_form(client, path, {})
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == "/login"  # type: ignore[attr-defined]
    # It confirms, and does not sign in: a link handed to someone else must not put them in
    # this account (login CSRF).
    assert client.get("/api/v1/me").status_code == 401
    assert "Your address is confirmed. Sign in to start, Jordan K." in client.get("/login").text
    assert (
        post_form(client, "/login", {"login": "jordan_k", "password": PASSWORD}).status_code == 303
    )
    assert client.get("/api/v1/me").json()["username"] == "jordan_k"
    fresh(db)
    assert db.get(User, user.id).email_verified_at is not None  # type: ignore[union-attr]
    # Once.
    assert client.get(path).status_code == 410
    assert post_form(client, path, {}).status_code == 410


def test_a_taken_address_gets_the_same_page_and_its_owner_an_email(
    db: Session,
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, _port = smtp
    make_user("priya")
    new = _sign_up(make_client(), username="newcomer", email="fresh@example.com")
    taken = _sign_up(make_client(), username="intruder", email="PRIYA@example.com")
    assert new.status_code == taken.status_code == 200  # type: ignore[attr-defined]
    # The same page but for the address typed.
    assert _VARYING.sub("", new.text).replace(  # type: ignore[attr-defined]
        "fresh@example.com", "X"
    ) == _VARYING.sub("", taken.text).replace("PRIYA@example.com", "X")  # type: ignore[attr-defined]
    assert "already" not in taken.text  # type: ignore[attr-defined]
    assert _users(db) == 2  # priya and newcomer: no "intruder"
    assert db.scalar(select(User).where(User.username_key == "intruder")) is None

    drain(mail_worker())
    owner_mail = inbox.to("priya@example.com")
    assert len(owner_mail) == 1
    assert inbox.subject(0, "priya@example.com") == "Someone tried to sign up with your address"
    assert links_to(inbox, "priya@example.com") == []  # no confirmation link for the owner
    assert "/password/forgot" in str(owner_mail[0])
    assert len(inbox.to("fresh@example.com")) == 1


def test_the_username_is_still_said_to_be_taken(
    make_client: Callable[[], TestClient], make_user: Callable[..., User], db: Session
) -> None:
    make_user("priya")
    response = _sign_up(make_client(), username="Priya", email="other@example.com")
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "username is taken" in response.text  # type: ignore[attr-defined]
    assert _users(db) == 1


def test_common_passwords_are_refused_at_sign_up(client: TestClient, db: Session) -> None:
    for password in ("correcthorsebatterystaple", "iloveyou2", "PASSWORD1234"):
        response = _sign_up(client, password=password)
        assert response.status_code == 422  # type: ignore[attr-defined]
        assert "most common" in response.text  # type: ignore[attr-defined]
    assert _users(db) == 0
    assert _sign_up(client, password="violet-tundra-mosaic-9").status_code == 200  # type: ignore[attr-defined]


def test_a_brand_without_password_sign_in_takes_no_sign_ups(
    db: Session, forum: Forum, client: TestClient
) -> None:
    forum.brand.password_sign_in = False
    db.commit()
    page = client.get("/register")
    assert page.status_code == 403
    assert "Sign in with Acme&#39;s account" in page.text
    response = _sign_up(client, email="x@example.com")
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert _users(db) == 0


def test_accounts_the_operator_creates_are_confirmed(db: Session, passwords: Passwords) -> None:
    data = RegistrationIn(username="ops_admin", email="ops@example.com", password=PASSWORD)
    user = service.register(db, passwords, data, confirmed=True)
    db.commit()
    assert user.email_verified_at is not None
    plain = service.register(
        db, passwords, RegistrationIn(username="later", email="l@example.com", password=PASSWORD)
    )
    assert plain.email_verified_at is None


def test_sign_ups_with_one_address_are_limited_alike_whether_or_not_it_has_an_account(
    db: Session,
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    """Three an hour per address: its owner gets at most three "someone tried to sign up with
    your address" e-mails an hour, and the limit answers the same for a free address."""
    inbox, _port = smtp
    make_user("priya")
    taken = [
        _sign_up(make_client(), username=f"try{n}", email="priya@example.com").status_code  # type: ignore[attr-defined]
        for n in range(4)
    ]
    free = [
        _sign_up(make_client(), username=f"new{n}", email="free@example.com").status_code  # type: ignore[attr-defined]
        for n in range(4)
    ]
    assert taken == free == [200, 200, 200, 429]
    drain(mail_worker())
    assert len(inbox.to("priya@example.com")) == 3
    assert db.scalar(select(User).where(User.username_key == "new3")) is None
