"""Confirmed addresses: an unconfirmed account's right password is answered like a wrong one
(with a fresh link, at most one per 10 minutes); links expire; brands that want confirmed
addresses keep unconfirmed members from asking and answering."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.account_models import EmailLink
from community.core.auth import Passwords
from community.core.clock import utcnow
from community.core.models import Forum, Thread, User
from community.worker import Worker
from tests.community.accounts.helpers import links_to, path_of, post_form, sign_in_directly
from tests.conftest import PASSWORD, QA, Inbox, add_user, drain, fresh

MailWorker = Callable[[], Worker]


def _unconfirmed(db: Session, passwords: Passwords, name: str = "newbie") -> User:
    return add_user(db, passwords, name, email_verified_at=None)


def _log_in(client: TestClient, login: str, password: str = PASSWORD) -> object:
    return post_form(client, "/login", {"login": login, "password": password})


def test_an_unconfirmed_account_is_answered_like_a_wrong_password_and_gets_a_new_link(
    db: Session,
    passwords: Passwords,
    client: TestClient,
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, _port = smtp
    _unconfirmed(db, passwords)
    make_user("priya")
    right = _log_in(client, "newbie")
    wrong = _log_in(client, "priya", "wrong-password-1")
    assert right.status_code == wrong.status_code == 401  # type: ignore[attr-defined]
    message = "That username or password is not right. If you have just signed up"
    assert message in right.text and message in wrong.text  # type: ignore[attr-defined]
    assert client.get("/api/v1/me").status_code == 401
    drain(mail_worker())
    assert len(links_to(inbox, "newbie@example.com")) == 1

    # Within 10 minutes: no second link; a wrong password never sends one.
    _log_in(client, "newbie")
    _log_in(client, "newbie", "wrong-password-1")
    drain(mail_worker())
    assert len(links_to(inbox, "newbie@example.com")) == 1
    with time_machine.travel(utcnow() + timedelta(minutes=11)):
        _log_in(client, "newbie")
        drain(mail_worker())
        assert len(links_to(inbox, "newbie@example.com")) == 2
        # The link works, then the password does.
        path = path_of(links_to(inbox, "newbie@example.com")[-1])
        assert post_form(client, path, {}).status_code == 303
        client.cookies.clear()
        assert _log_in(client, "newbie").status_code == 303  # type: ignore[attr-defined]


def test_the_right_password_of_an_unconfirmed_account_is_throttled_like_a_wrong_one(
    db: Session, passwords: Passwords, client: TestClient, make_user: Callable[..., User]
) -> None:
    """Someone who signed up with another person's address knows the password they chose. If
    signing in with it were never throttled while a wrong password is, the missing 429 would
    tell them the address was free (their pending account exists) rather than taken."""
    _unconfirmed(db, passwords)
    make_user("priya")
    pending = [_log_in(client, "newbie").status_code for _ in range(6)]  # type: ignore[attr-defined]
    wrong = [
        _log_in(client, "priya", "wrong-password-1").status_code  # type: ignore[attr-defined]
        for _ in range(6)
    ]
    assert pending == wrong == [401] * 5 + [429]


def test_a_confirmation_link_expires_after_48_hours(
    db: Session,
    passwords: Passwords,
    client: TestClient,
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    _unconfirmed(db, passwords)
    _log_in(client, "newbie")
    drain(mail_worker())
    path = path_of(links_to(smtp[0], "newbie@example.com")[0])
    with time_machine.travel(utcnow() + timedelta(hours=49)):
        page = client.get(path)
        assert page.status_code == 410
        assert "sign in" in page.text.lower()  # the way to a new link
        assert post_form(client, path, {}).status_code == 410
    fresh(db)
    assert db.scalar(select(User.email_verified_at).where(User.username == "newbie")) is None


def test_a_made_up_link_is_gone_and_never_a_500(client: TestClient) -> None:
    for token in ("nope", "x" * 500, "%00", "../../etc"):
        assert client.get(f"/email/confirm/{token}").status_code in (404, 410)
        assert client.get(f"/password/reset/{token}").status_code in (404, 410)
        assert client.get(f"/email/change/{token}").status_code in (404, 410)


def test_a_signed_in_member_asks_for_the_link_again(
    db: Session,
    passwords: Passwords,
    client: TestClient,
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    member = _unconfirmed(db, passwords)
    sign_in_directly(client, db, member)
    account = client.get("/account")
    assert "not confirmed" in account.text
    sent = post_form(client, "/email/confirm/resend", {}, page="/account")
    assert sent.status_code == 303
    drain(mail_worker())
    path = path_of(links_to(smtp[0], "newbie@example.com")[0])
    assert post_form(client, path, {}, page="/account").status_code == 303
    fresh(db)
    assert db.get(User, member.id).email_verified_at is not None  # type: ignore[union-attr]
    assert "not confirmed" not in client.get("/account").text
    # Asking again once confirmed sends nothing.
    post_form(client, "/email/confirm/resend", {}, page="/account")
    drain(mail_worker())
    assert len(smtp[0].to("newbie@example.com")) == 1


# --- the posting gate ------------------------------------------------------------------------


def _ask(client: TestClient, forum: Forum) -> object:
    return post_form(
        client,
        f"/b/{forum.brand.slug}/ask/new",
        {
            "forum": forum.slug,
            "title": "How do I reset the router to factory settings?",
            "body": "I held the button for ten seconds and nothing happened at all.",
            "kind": "question",
        },
        page="/",
    )


def _answer(client: TestClient, thread: Thread) -> object:
    return post_form(
        client,
        f"/t/{thread.id}/answers",
        {"body": "Hold it for thirty seconds while the router is plugged in."},
        page="/",
    )


@pytest.mark.parametrize("required", [True, False])
def test_unconfirmed_members_post_only_where_the_brand_allows_it(
    db: Session,
    passwords: Passwords,
    forum: Forum,
    qa: QA,
    client: TestClient,
    make_user: Callable[..., User],
    required: bool,
) -> None:
    forum.brand.require_verified_email = required
    db.commit()
    thread = qa.ask(make_user("asker"))
    member = _unconfirmed(db, passwords)
    sign_in_directly(client, db, member)
    assert ('id="confirm-address-notice"' in client.get("/b/acme/ask/new").text) is required
    thread_page = client.get(f"/t/{thread.id}")
    assert thread_page.status_code == 200
    assert ('id="confirm-address-notice"' in thread_page.text) is required
    assert ('id="answer-body"' in thread_page.text) is not required

    asked, answered = _ask(client, forum), _answer(client, thread)
    if required:
        for response in (asked, answered):
            assert response.status_code == 403  # type: ignore[attr-defined]
            assert "Confirm your e-mail address to post here" in response.text  # type: ignore[attr-defined]
            assert "Send the link again" in response.text  # type: ignore[attr-defined]
        fresh(db)
        assert db.scalars(select(Thread).where(Thread.author_id == member.id)).all() == []
        assert db.scalars(select(EmailLink)).all() == []  # nothing sent without asking
    else:
        assert asked.status_code == answered.status_code == 303  # type: ignore[attr-defined]


def test_confirmed_members_post_in_brands_that_require_it(
    db: Session, forum: Forum, qa: QA, client: TestClient, make_user: Callable[..., User]
) -> None:
    assert forum.brand.require_verified_email
    thread = qa.ask(make_user("asker"))
    sign_in_directly(client, db, make_user("confirmed"))
    assert 'id="answer-body"' in client.get(f"/t/{thread.id}").text
    assert _answer(client, thread).status_code == 303  # type: ignore[attr-defined]


def test_a_confirmation_link_opened_by_someone_else_never_switches_their_account(
    db: Session,
    passwords: Passwords,
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    mail_worker: MailWorker,
    smtp: tuple[Inbox, int],
) -> None:
    """Login CSRF: someone signs up with an address of theirs, then hands its link to a
    victim. Confirming must not put the victim in the sender's account, signed in or not."""
    inbox, _port = smtp
    _unconfirmed(db, passwords, "sender")
    victim = make_user("victim")
    sender_browser = make_client()
    _log_in(sender_browser, "sender")  # answered like a wrong password; a fresh link goes out
    drain(mail_worker())
    path = path_of(links_to(inbox, "sender@example.com")[-1])

    victim_browser = make_client()
    sign_in_directly(victim_browser, db, victim)
    confirmed = post_form(victim_browser, path, {})
    assert confirmed.status_code == 303  # type: ignore[attr-defined]
    assert victim_browser.get("/api/v1/me").json()["username"] == "victim"
    anonymous = make_client()
    assert post_form(anonymous, path, {}).status_code == 410  # used once, by the victim
    assert anonymous.get("/api/v1/me").status_code == 401
    fresh(db)
    sender = db.scalar(select(User).where(User.username_key == "sender"))
    assert sender is not None and sender.email_verified_at is not None
