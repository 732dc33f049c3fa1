"""Notifications speak the recipient's language, never the actor's: in the app (written when
read, in the reader's language) and by e-mail (the recipient's language, else the brand's)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.models import Brand, Post, Role, User
from community.worker import Worker
from moderation.models import Queue, QueueItem
from tests.conftest import QA, Inbox, csrf_token, fresh, log_in

UserFactory = Callable[..., User]


def _person(
    db: Session, make_user: UserFactory, name: str, locale: str | None, **kw: object
) -> User:
    user = make_user(name, **kw)
    user.locale = locale
    db.commit()
    return user


def _moderate(
    db: Session,
    make_client: Callable[[], TestClient],
    moderator: str,
    member: str,
    held: Post,
) -> None:
    """The moderator, browsing in their own language, turns down the member's held answer
    and warns them."""
    browser = make_client()
    log_in(browser, moderator)
    token = csrf_token(browser, "/")
    fresh(db)
    item = db.scalars(
        select(QueueItem).where(QueueItem.post_id == held.id, QueueItem.queue == Queue.PENDING)
    ).one()
    rejected = browser.post(
        f"/mod/items/{item.id}/reject", data={"csrf_token": token, "reason": "«hub» / “hub”"}
    )
    warned = browser.post(
        f"/mod/users/{member}/warn", data={"csrf_token": token, "message": "Stay on topic."}
    )
    assert rejected.status_code == warned.status_code == 200


@pytest.mark.parametrize(
    ("actor_locale", "recipient_locale", "expected"),
    [
        (
            "es",
            "en",
            [
                "Your post was not published: «hub» / “hub”",
                "A moderator warned you: Stay on topic.",
            ],
        ),
        (
            "en",
            "es",
            [
                "Tu publicación no se publicó: «hub» / “hub”",
                "Un moderador te ha advertido: Stay on topic.",
            ],
        ),
    ],
)
def test_moderation_notices_reach_the_member_in_their_language(
    actor_locale: str,
    recipient_locale: str,
    expected: list[str],
    db: Session,
    qa: QA,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
    smtp: tuple[Inbox, int],
    mail_worker: Callable[[], Worker],
) -> None:
    inbox, _port = smtp
    _person(db, make_user, "warden", actor_locale, role=Role.MODERATOR)
    member = _person(db, make_user, "newbie", recipient_locale, trust_level=0)
    host = qa.ask(make_user("asker"), title="Hedgehog hub keeps rebooting overnight")
    held = qa.answer(member, host, "The okapi trick helped me.")
    _moderate(db, make_client, "warden", "newbie", held)

    mail_worker().run_once()
    address = "newbie@example.com"
    subjects = sorted(inbox.subject(index, address) for index in range(len(inbox.to(address))))
    assert subjects == sorted(expected)

    browser = make_client()
    log_in(browser, "newbie")
    page = browser.get("/notifications").text
    for text in expected:
        assert text in page, text
    api = browser.get("/api/v1/notifications").json()["items"]
    assert sorted(item["text"] for item in api) == sorted(expected)


def test_a_member_reading_in_another_language_reads_their_notices_in_it(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
) -> None:
    """Stored notices are data, not sentences: switching language rewrites them."""
    _person(db, make_user, "warden", "es", role=Role.MODERATOR)
    member = _person(db, make_user, "newbie", None, trust_level=0)
    host = qa.ask(make_user("asker"), title="Hedgehog hub keeps rebooting overnight")
    held = qa.answer(member, host, "The okapi trick helped me.")
    _moderate(db, make_client, "warden", "newbie", held)
    browser = make_client()
    log_in(browser, "newbie")
    english = browser.get("/notifications", headers={"Accept-Language": "en"}).text
    spanish = browser.get("/notifications", headers={"Accept-Language": "es"}).text
    assert "A moderator warned you: Stay on topic." in english
    assert "Un moderador te ha advertido: Stay on topic." in spanish


def test_emails_without_a_personal_language_use_the_brands(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    smtp: tuple[Inbox, int],
    mail_worker: Callable[[], Worker],
) -> None:
    inbox, _port = smtp
    brand = db.scalars(select(Brand)).one()
    brand.default_locale = "es"
    db.commit()
    asker = _person(db, make_user, "lucia", None)
    helper = _person(db, make_user, "helper", "en")
    thread = qa.ask(asker, title="¿Cómo activo la eSIM en mi móvil?")
    qa.answer(helper, thread)
    mail_worker().run_once()
    assert inbox.subject(0, "lucia@example.com") == (
        "helper respondió a tu pregunta «¿Cómo activo la eSIM en mi móvil?»"
    )
