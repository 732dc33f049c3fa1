"""Changing the address: it applies only when the new address's link is opened; the old
address is told; an address that belongs to someone else gets that owner a note and the same
answer; a password change can revoke the API tokens too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import time_machine
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from community.core import api_tokens
from community.core.account_models import EmailLink, LinkPurpose
from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.meili import free_port
from community.core.models import User
from community.core.settings import Settings
from community.worker import Worker
from tests.community.accounts.helpers import links_to, path_of, post_form, text_of
from tests.conftest import PASSWORD, Inbox, drain, fresh, log_in, mail_settings

MailWorker = Callable[[], Worker]
NEW_PASSWORD = "violet-tundra-mosaic-9"


def _change(client: TestClient, address: str, password: str = PASSWORD) -> object:
    return post_form(
        client,
        "/account/email",
        {"new_email": address, "email_password": password},
        page="/account",
    )


def _reload(db: Session, user: User) -> User:
    fresh(db)
    found = db.get(User, user.id)
    assert found is not None
    return found


def test_the_new_address_applies_when_its_link_is_opened(
    db: Session,
    client: TestClient,
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, _port = smtp
    member = make_user("priya")
    log_in(client, "priya")
    page = client.get("/account")
    assert "E-mail address" in page.text and "priya@example.com" in page.text
    asked = _change(client, "Priya.New@Example.org")
    assert asked.status_code == 303  # type: ignore[attr-defined]
    assert _reload(db, member).email == "priya@example.com"  # not yet

    drain(mail_worker())
    assert inbox.subject(0, "Priya.New@example.org") == "Confirm your new e-mail address"
    notice = inbox.to("priya@example.com")
    assert len(notice) == 1
    assert "P***@example.org" in text_of(notice[0])
    path = path_of(links_to(inbox, "Priya.New@example.org")[0])
    assert path.startswith("/email/change/")
    fresh(db)
    link = db.scalars(select(EmailLink)).one()
    assert (link.expires_at - link.created_at).total_seconds() == 24 * 3600

    # An outstanding reset link stops working when the address changes.
    post_form(client, "/password/forgot", {"email": "priya@example.com"}, page="/account")
    drain(mail_worker())
    reset_path = path_of(links_to(inbox, "priya@example.com")[-1])

    assert client.get(path).status_code == 200  # the page does not apply it
    assert _reload(db, member).email == "priya@example.com"
    applied = post_form(client, path, {}, page="/account")
    assert applied.status_code == 303
    changed = _reload(db, member)
    assert (changed.email, changed.email_key) == ("Priya.New@example.org", "priya.new@example.org")
    assert changed.email_verified_at is not None
    assert client.get(path).status_code == 410  # once
    assert client.get(reset_path).status_code == 410
    assert db.scalars(select(AuditLog).where(AuditLog.action == "user.email_changed")).one()
    # The new address signs in.
    log_in(client, "priya.new@example.org")


def test_an_address_of_another_account_gets_the_same_answer_and_its_owner_a_note(
    db: Session,
    client: TestClient,
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, _port = smtp
    member = make_user("priya")
    make_user("lee")
    log_in(client, "priya")
    free = _change(client, "free@example.com")
    taken = _change(client, "LEE@example.com")
    assert free.status_code == taken.status_code == 303  # type: ignore[attr-defined]
    drain(mail_worker())
    assert inbox.subject(0, "lee@example.com") == "Someone tried to use your address"
    assert links_to(inbox, "lee@example.com") == []
    fresh(db)
    links = db.scalars(select(EmailLink)).all()
    assert [link.email for link in links] == ["free@example.com"]
    assert _reload(db, member).email == "priya@example.com"


def test_an_address_taken_before_the_link_is_opened_is_a_409(
    db: Session,
    client: TestClient,
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    member = make_user("priya")
    log_in(client, "priya")
    _change(client, "wanted@example.com")
    drain(mail_worker())
    path = path_of(links_to(smtp[0], "wanted@example.com")[0])
    rival = make_user("rival")
    rival.email, rival.email_key = "wanted@example.com", "wanted@example.com"
    db.commit()
    conflict = post_form(client, path, {}, page="/account")
    assert conflict.status_code == 409
    assert "belongs to another account" in conflict.text
    assert _reload(db, member).email == "priya@example.com"


@pytest.mark.parametrize(
    ("address", "password", "field", "message"),
    [
        ("new@example.com", "wrong-password-1", "email_password", "not right"),
        ("not an address", PASSWORD, "new_email", "valid e-mail"),
        ("PRIYA@example.com", PASSWORD, "new_email", "already your address"),
    ],
)
def test_bad_change_requests_are_422_and_send_nothing(
    client: TestClient,
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
    address: str,
    password: str,
    field: str,
    message: str,
) -> None:
    make_user("priya")
    log_in(client, "priya")
    response = _change(client, address, password)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert message in response.text  # type: ignore[attr-defined]
    assert f'id="error-{field}"' in response.text  # type: ignore[attr-defined]
    drain(mail_worker())
    assert smtp[0].messages == []


# --- password change and API tokens ----------------------------------------------------------


@pytest.mark.parametrize("revoke", [True, False])
def test_a_password_change_revokes_api_tokens_only_when_asked(
    db: Session, client: TestClient, make_user: Callable[..., User], revoke: bool
) -> None:
    member = make_user("priya")
    _token, bearer = api_tokens.create_token(db, member, "helpdesk sync")
    db.commit()
    log_in(client, "priya")
    fields = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    if revoke:
        fields["revoke_api_tokens"] = "1"
    changed = post_form(client, "/account/password", fields, page="/account")
    assert changed.status_code == 303
    assert client.get("/api/v1/me").status_code == 200  # this device stays signed in
    answer = client.get("/api/v1/me", headers={"authorization": f"Bearer {bearer}"})
    assert answer.status_code == (401 if revoke else 200)
    fresh(db)
    assert (api_tokens.list_tokens(db, member) == []) is revoke
    assert 'name="revoke_api_tokens"' in client.get("/account").text
    assert "checked" not in client.get("/account").text.split('name="revoke_api_tokens"')[1][:20]


def test_a_common_password_is_refused_on_password_change(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("priya")
    log_in(client, "priya")
    refused = post_form(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": "correcthorsebatterystaple"},
        page="/account",
    )
    assert refused.status_code == 422
    assert "most common" in refused.text
    log_in(client, "priya")  # unchanged


def test_the_links_kind_is_checked(
    db: Session,
    client: TestClient,
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    """A change-of-address token does not open the reset or confirmation pages."""
    make_user("priya")
    log_in(client, "priya")
    _change(client, "elsewhere@example.com")
    drain(mail_worker())
    token = path_of(links_to(smtp[0], "elsewhere@example.com")[0]).rsplit("/", 1)[1]
    assert client.get(f"/password/reset/{token}").status_code == 410
    assert client.get(f"/email/confirm/{token}").status_code == 410
    fresh(db)
    assert db.scalars(select(EmailLink.purpose)).all() == [LinkPurpose.CHANGE_EMAIL]


# --- a hijacked session's change of address is cancelled by the owner ------------------------


@pytest.mark.parametrize("how", ["reset", "password change"])
def test_the_owner_taking_the_account_back_cancels_a_pending_change_of_address(
    db: Session,
    client: TestClient,
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
    how: str,
) -> None:
    """Someone with the member's session and password asks to move the account to their own
    address. The notice to the old address says a password reset cancels that; a password
    change by the owner must too. Otherwise the intruder opens the link afterwards, the
    account's address becomes theirs, and a reset of their own takes the account."""
    inbox, _port = smtp
    member = make_user("priya")
    intruder = make_client()
    log_in(intruder, "priya")
    assert _change(intruder, "thief@evil.example").status_code == 303  # type: ignore[attr-defined]
    drain(mail_worker())
    assert "cancels the change" in text_of(inbox.to("priya@example.com")[0])
    stolen = path_of(links_to(inbox, "thief@evil.example")[0])

    if how == "reset":
        post_form(client, "/password/forgot", {"email": "priya@example.com"}, page="/account")
        drain(mail_worker())
        reset = path_of(links_to(inbox, "priya@example.com")[-1])
        done = post_form(client, reset, {"password": NEW_PASSWORD}, page="/password/forgot")
    else:
        log_in(client, "priya")
        fields = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        done = post_form(client, "/account/password", fields, page="/account")
    assert done.status_code == 303

    assert intruder.get(stolen).status_code == 410
    assert post_form(intruder, stolen, {}, page="/login").status_code == 410
    assert _reload(db, member).email == "priya@example.com"


# --- the worker: the link does not depend on the notice to the old address -------------------


@dataclass
class PickyInbox(Inbox):
    """A real SMTP server that refuses some recipients for good (550), as one refuses an
    address that no longer exists: often the very reason a member changes it."""

    refused: set[str] = field(default_factory=set)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's handler protocol
        self,
        server: SMTP,
        session: SmtpSession,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def picky_smtp() -> Iterator[tuple[PickyInbox, int]]:
    inbox, port = PickyInbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_a_dead_old_address_neither_blocks_the_change_nor_repeats_dead_links(
    db: Session,
    client: TestClient,
    settings: Settings,
    engine: Engine,
    make_user: Callable[..., User],
    picky_smtp: tuple[PickyInbox, int],
) -> None:
    """The notice to the old address failing (its mailbox is gone) used to roll back the whole
    job after the new address's e-mail had gone out: its link was never stored (a dead link),
    and every retry, for ever, sent the new address another dead one."""
    inbox, port = picky_smtp
    member = make_user("priya")
    inbox.refused.add("priya@example.com")
    worker = Worker(mail_settings(settings, port), make_session_factory(engine))
    log_in(client, "priya")
    assert _change(client, "priya@new.example").status_code == 303  # type: ignore[attr-defined]
    drain(worker)
    with time_machine.travel(utcnow() + timedelta(hours=7), tick=False):
        drain(worker)  # the notice's retries
    links = links_to(inbox, "priya@new.example")
    assert len(links) == 1
    applied = post_form(client, path_of(links[0]), {}, page="/account")
    assert applied.status_code == 303
    assert _reload(db, member).email == "priya@new.example"
