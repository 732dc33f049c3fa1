"""Password reset by an e-mailed link: single use, 30 minutes, stored hashed; using it ends every
session and API token; asking for it tells nothing about whether the address has an account
(same page, same SQL statements, about the same time)."""

from __future__ import annotations

import hashlib
import logging
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from community.core import api_tokens
from community.core.account_models import EmailLink, LinkPurpose
from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.models import Forum, Role, User
from community.core.outbox import OutboxEvent
from community.core.settings import Settings
from community.worker import Worker
from tests.community.accounts.helpers import links_to, path_of, post_form, text_of
from tests.community.test_brand_look import second_brand
from tests.conftest import PASSWORD, Inbox, add_user, csrf_token, drain, fresh, log_in

NEW_PASSWORD = "violet-tundra-mosaic-9"
_CSRF = re.compile(r"[0-9a-f]{32,}")
# What differs between two answers to anyone: the CSRF token and the scripts' CSP nonce.
_VARYING = re.compile(r'[0-9a-f]{32,}|nonce="[^"]+"')

MailWorker = Callable[[], Worker]


def _ask_reset(client: TestClient, address: str) -> Any:
    return post_form(client, "/password/forgot", {"email": address}, page="/password/forgot")


def _reset_link(client: TestClient, mail_worker: MailWorker, inbox: Inbox, user: User) -> str:
    assert user.email is not None
    response = _ask_reset(client, user.email)
    assert response.status_code == 200
    drain(mail_worker())
    return path_of(links_to(inbox, user.email)[-1])


def _set_password(client: TestClient, path: str, password: str = NEW_PASSWORD) -> Any:
    return post_form(client, path, {"password": password}, page="/password/forgot")


def test_a_reset_link_sets_the_password_once_and_ends_every_session_and_token(
    db: Session,
    client: TestClient,
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, _port = smtp
    member = make_user("priya")
    signed_in = make_client()
    log_in(signed_in, "priya")
    _token, bearer = api_tokens.create_token(db, member, "helpdesk sync")
    db.commit()
    assert signed_in.get("/api/v1/me").status_code == 200
    assert client.get("/api/v1/me", headers={"authorization": f"Bearer {bearer}"}).is_success

    path = _reset_link(client, mail_worker, inbox, member)
    assert inbox.subject(-1, "priya@example.com") == "Reset your password"

    # Opening the page (a mail scanner does) does not use the link up.
    for _ in range(2):
        page = client.get(path)
        assert page.status_code == 200
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "no-store" in page.headers["cache-control"]
        assert "Choose a new password" in page.text

    # A common password is refused and the link still works.
    refused = _set_password(client, path, "correcthorsebatterystaple")
    assert refused.status_code == 422
    assert "most common" in refused.text
    assert refused.headers["referrer-policy"] == "no-referrer"

    done = _set_password(client, path)
    assert done.status_code == 303
    assert done.headers["location"] == "/login"
    assert client.get("/api/v1/me").status_code == 401  # not signed in by the link

    # Every session and API token of the account ended.
    assert signed_in.get("/api/v1/me").status_code == 401
    gone = client.get("/api/v1/me", headers={"authorization": f"Bearer {bearer}"})
    assert gone.status_code == 401

    # The link works once.
    assert client.get(path).status_code == 410
    again = _set_password(client, path, "another-fresh-passphrase-7")
    assert again.status_code == 410
    assert "expired or was already used" in again.text

    fresh(db)
    audit = db.scalars(select(AuditLog).where(AuditLog.action == "user.password_reset")).all()
    assert [row.target_id for row in audit] == [str(member.id)]
    # Only the new password signs in.
    old = post_form(make_client(), "/login", {"login": "priya", "password": PASSWORD})
    assert old.status_code == 401
    log_in(make_client(), "priya", NEW_PASSWORD)


def test_the_token_is_stored_hashed_only(
    db: Session,
    client: TestClient,
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    member = make_user("priya")
    path = _reset_link(client, mail_worker, smtp[0], member)
    raw = path.rsplit("/", 1)[1]
    assert len(raw) >= 43  # 256 bits, URL-safe base64
    fresh(db)
    link = db.scalars(select(EmailLink)).one()
    assert link.purpose == LinkPurpose.RESET_PASSWORD
    assert link.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in repr([getattr(link, column.key) for column in EmailLink.__table__.columns])
    # Nor in the outbox: the request recorded the address, the job made the token.
    for outbox_event in db.scalars(select(OutboxEvent)):
        assert raw not in repr(outbox_event.payload)
    assert link.expires_at - link.created_at == timedelta(minutes=30)


def test_a_reset_link_expires_after_30_minutes(
    client: TestClient,
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    member = make_user("priya")
    path = _reset_link(client, mail_worker, smtp[0], member)
    with time_machine.travel(utcnow() + timedelta(minutes=29)):
        assert client.get(path).status_code == 200
    with time_machine.travel(utcnow() + timedelta(minutes=31)):
        assert client.get(path).status_code == 410
        assert _set_password(client, path).status_code == 410
    log_in(client, "priya")  # the password did not change


def test_a_newer_link_does_not_revive_an_old_one_and_using_one_ends_the_others(
    client: TestClient,
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, _port = smtp
    member = make_user("priya")
    first = _reset_link(client, mail_worker, inbox, member)
    second = _reset_link(client, mail_worker, inbox, member)
    assert first != second
    assert _set_password(client, first).status_code == 303
    # Using one reset link ends the account's other ones...
    assert client.get(second).status_code == 410
    # ...and a link asked for afterwards works without reviving the used one.
    third = _reset_link(client, mail_worker, inbox, member)
    assert client.get(first).status_code == 410
    assert _set_password(client, third, "another-fresh-passphrase-7").status_code == 303
    assert client.get(first).status_code == 410


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])  # (conn, cursor, statement, parameters, context, executemany)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_known_and_unknown_addresses_get_the_same_answer_from_the_same_statements(
    db: Session,
    engine: Engine,
    client: TestClient,
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, _port = smtp
    make_user("priya")
    token = csrf_token(client, "/password/forgot")  # the browser's cookie and CSRF token
    answers, statements = [], []
    for address in ("priya@example.com", "nobody@example.com"):
        with _statements(engine) as seen:
            answers.append(
                client.post("/password/forgot", data={"email": address, "csrf_token": token})
            )
        statements.append(seen)
    known, unknown = answers
    assert known.status_code == unknown.status_code == 200
    assert _VARYING.sub("", known.text) == _VARYING.sub("", unknown.text)
    assert "If an account uses that address" in known.text
    assert statements[0] == statements[1]
    assert not any("FROM users" in statement for statement in statements[0])

    drain(mail_worker())
    assert len(inbox.to("priya@example.com")) == 1
    assert inbox.to("nobody@example.com") == []


def test_known_and_unknown_addresses_take_about_the_same_time(
    app: FastAPI, client: TestClient, make_user: Callable[..., User]
) -> None:
    """A synchronous look-up and an Argon2 hash for known addresses would show here."""
    app.state.rate_limiter.enabled = False  # 40 requests from one address: not the point here
    make_user("priya")
    client.get("/password/forgot")
    token = _CSRF.search(client.get("/password/forgot").text)
    assert token is not None

    def timed(address: str) -> float:
        started = time.perf_counter()
        response = client.post(
            "/password/forgot",
            data={"email": address, "csrf_token": token.group(0)},
            follow_redirects=False,
        )
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        return elapsed

    known: list[float] = []
    unknown: list[float] = []
    for _ in range(20):  # interleaved, so a slow moment hits both
        known.append(timed("priya@example.com"))
        unknown.append(timed("nobody@example.com"))
    assert abs(statistics.median(known) - statistics.median(unknown)) < 0.025


def test_asking_too_often_is_refused(client: TestClient, make_user: Callable[..., User]) -> None:
    make_user("priya")
    # Per address: five an hour.
    codes = [_ask_reset(client, "Priya@Example.com").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    # Per visitor: ten an hour, whatever the addresses.
    codes = [_ask_reset(client, f"someone{n}@example.com").status_code for n in range(5)]
    assert codes == [200] * 4 + [429]


def test_an_invalid_address_is_a_form_error(client: TestClient) -> None:
    response = _ask_reset(client, "not an address")
    assert response.status_code == 422
    assert "valid e-mail address" in response.text


@pytest.mark.parametrize("standing", ["deactivated", "suspended"])
def test_deactivated_and_suspended_accounts_get_nothing(
    db: Session,
    client: TestClient,
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
    standing: str,
) -> None:
    member = make_user("priya")
    if standing == "deactivated":
        member.deactivated_at = utcnow()
    else:
        member.suspended_until = utcnow() + timedelta(days=3)
    db.commit()
    assert _ask_reset(client, "priya@example.com").status_code == 200
    drain(mail_worker())
    assert smtp[0].messages == []
    fresh(db)
    assert db.scalars(select(EmailLink)).all() == []


def test_an_account_without_a_password_can_set_one(
    db: Session,
    passwords: Any,
    client: TestClient,
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    imported = add_user(db, passwords, "imported", email_verified_at=None)
    imported.password_hash = None  # as an import makes it
    db.commit()
    path = _reset_link(client, mail_worker, smtp[0], imported)
    assert _set_password(client, path).status_code == 303
    fresh(db)
    reloaded = db.get(User, imported.id)
    assert reloaded is not None and reloaded.email_verified_at is not None  # they read it
    log_in(client, "imported", NEW_PASSWORD)


def test_links_go_to_the_sites_own_address_never_a_brands_host(
    app: FastAPI,
    db: Session,
    forum: Forum,
    client: TestClient,
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    """A brand's host is whatever its admins typed (or a name whose DNS lapsed). Account links
    carry a secret for an account the requester may not own: a brand admin asking, on their
    brand's host, for a reset of the site admin's password, or confirming an address they do
    not own, used to get the e-mail's link pointed at that host (reset poisoning). Links go to
    BASE_URL, whichever brand's host the request came on."""
    inbox, _port = smtp
    forum.brand.host = "help.acme.test"
    db.commit()
    second_brand(db, host="help.bravo.example")
    make_user("marta", role=Role.ADMIN)  # the victim: the site's admin
    on_bravo = TestClient(app, base_url="http://help.bravo.example")
    asked = post_form(on_bravo, "/password/forgot", {"email": "marta@example.com"}, page="/login")
    assert asked.status_code == 200
    sign_up = {
        "username": "squatter",
        "email": "someone@victim.example",
        "password": NEW_PASSWORD,
        "csrf_token": csrf_token(on_bravo, "/register"),
    }
    assert on_bravo.post("/register", data=sign_up).status_code == 200
    # And on the default brand's own host.
    on_acme = TestClient(app, base_url="http://help.acme.test")
    post_form(on_acme, "/password/forgot", {"email": "marta@example.com"}, page="/login")
    drain(mail_worker())
    links = links_to(inbox, "marta@example.com") + links_to(inbox, "someone@victim.example")
    assert len(links) == 3
    assert all(link.startswith("https://support.example/") for link in links), links
    for message in inbox.messages:
        assert "bravo.example" not in text_of(message) and "acme.test" not in text_of(message)


def test_without_smtp_account_emails_are_written_to_the_instance_folder(
    settings: Settings,
    engine: Engine,
    client: TestClient,
    make_user: Callable[..., User],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert settings.smtp_url is None
    make_user("priya")
    assert _ask_reset(client, "priya@example.com").status_code == 200
    with caplog.at_level(logging.INFO, logger="community.accounts.tasks"):
        drain(Worker(settings, make_session_factory(engine)))
    files = list((settings.instance_path / "mail").glob("*.eml"))
    assert len(files) == 1
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["To"] == "priya@example.com"
    body = message.get_body(("plain",))
    assert body is not None
    link = re.search(r"/password/reset/([\w-]+)", body.get_content())
    assert link is not None
    logged = [record.getMessage() for record in caplog.records]
    assert any(str(files[0]) in line for line in logged)
    assert not any(link.group(1) in line for line in logged)


def test_expired_links_are_deleted_a_day_after_they_expire(
    client: TestClient,
    db: Session,
    smtp: tuple[Inbox, int],
    mail_worker: MailWorker,
    make_user: Callable[..., User],
) -> None:
    """The worker's hourly sweep deletes dead links (each held a hash of a secret); a link that
    expired less than a day ago is kept, so a late click still reads "expired"."""
    from community.accounts.tasks import forget_expired

    inbox, _port = smtp
    member = make_user("sweepme")
    _reset_link(client, mail_worker, inbox, member)
    with time_machine.travel(utcnow() + timedelta(hours=2)):
        forget_expired(db)
        db.commit()
    fresh(db)
    assert len(db.scalars(select(EmailLink)).all()) == 1
    with time_machine.travel(utcnow() + timedelta(days=1, hours=1)):
        forget_expired(db)
        db.commit()
    fresh(db)
    assert db.scalars(select(EmailLink)).all() == []
