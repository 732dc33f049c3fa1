"""Notifications: who hears about what, the in-app list, and e-mail through a real SMTP server
(aiosmtpd on loopback), immediately or as a daily digest, with retries when SMTP fails."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community import voting
from community.core import notifications
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.errors import NotFound
from community.core.models import EmailPreference, Notification, NotificationKind, User
from community.core.notifications import EMAIL_EVENT
from community.core.outbox import OutboxEvent
from community.core.settings import Settings
from community.worker import Worker
from tests.conftest import QA, Inbox, fresh

UserFactory = Callable[..., User]


def _kinds(db: Session, user: User) -> list[str]:
    fresh(db)
    return [
        n.kind.value
        for n in db.scalars(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
        )
    ]


def test_answers_mentions_watchers_and_acceptance(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, helper, watcher, named = (make_user(n) for n in ("asker", "helper", "watcher", "named"))
    thread = qa.ask(asker)
    from community import threads

    threads.watch(db, watcher, thread)
    db.commit()
    reply = qa.answer(helper, thread, "Try the app, @Named and @asker: Account > SIM. @nobody_here")
    assert _kinds(db, asker) == ["mention"]  # a mention beats "new answer": one notice
    assert _kinds(db, named) == ["mention"]
    assert _kinds(db, watcher) == ["new_post"]
    assert _kinds(db, helper) == []  # never about one's own action
    fresh(db)
    body = db.get(type(reply), reply.id).body_html  # type: ignore[union-attr]
    assert '<a href="/u/named" rel="nofollow ugc noopener noreferrer">@named</a>' in body
    assert "@nobody_here" in body and "/u/nobody_here" not in body

    qa.answer(make_user("second"), thread, "Another idea.")
    assert _kinds(db, asker) == ["mention", "answer"]
    assert _kinds(db, helper) == ["new_post"]  # answering a thread watches it

    voting.accept(db, asker, reply.id)
    db.commit()
    assert _kinds(db, helper) == ["new_post", "accepted"]


def test_mentions_in_code_do_not_notify(db: Session, qa: QA, make_user: UserFactory) -> None:
    asker, named = make_user("asker"), make_user("named")
    thread = qa.ask(asker)
    qa.answer(make_user("helper"), thread, "Run `ping @named` or\n\n```\n@named\n```")
    assert _kinds(db, named) == []


def test_editing_in_a_new_mention_notifies_only_the_new_name(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    from community import thread_editing
    from community.core.schemas import EditIn

    asker, first, second = make_user("asker"), make_user("first"), make_user("second")
    thread = qa.ask(asker, body="Hello @first")
    question = thread.posts[0] if thread.posts else None
    fresh(db)
    from community.core.models import Post

    question = db.scalars(select(Post).where(Post.thread_id == thread.id)).one()
    thread_editing.edit_post(db, asker, question, EditIn(body="Hello @first and @second"))
    db.commit()
    assert _kinds(db, first) == ["mention"]
    assert _kinds(db, second) == ["mention"]


def test_list_unread_count_and_mark_read(db: Session, qa: QA, make_user: UserFactory) -> None:
    asker = make_user("asker")
    thread = qa.ask(asker)
    for index in range(3):
        qa.answer(make_user(f"helper{index}"), thread, f"Answer {index}")
    assert notifications.unread_count(db, asker.id) == 3
    page = notifications.list_for(db, asker.id, limit=2)
    assert len(page.items) == 2 and page.next_before is not None
    older = notifications.list_for(db, asker.id, before=page.next_before, limit=2)
    assert len(older.items) == 1 and older.next_before is None
    notifications.mark_read(db, asker, page.items[0].id)
    db.commit()
    assert notifications.unread_count(db, asker.id) == 2
    with pytest.raises(NotFound):
        notifications.mark_read(db, make_user("other"), page.items[1].id)
    notifications.mark_all_read(db, asker.id)
    db.commit()
    assert notifications.unread_count(db, asker.id) == 0


# --- e-mail ----------------------------------------------------------------------------------


def test_immediate_email_in_the_recipients_language(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    smtp: tuple[Inbox, int],
    mail_worker: Callable[[], Worker],
) -> None:
    inbox, _port = smtp
    asker = make_user("lucia")
    asker.locale = "es"
    db.commit()
    thread = qa.ask(asker, title="¿Cómo activo la eSIM en mi móvil?")
    reply = qa.answer(make_user("helper"), thread)
    worker = mail_worker()
    worker.run_once()
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "lucia@example.com"
    assert inbox.subject(0) == "helper respondió a tu pregunta «¿Cómo activo la eSIM en mi móvil?»"
    assert f"https://support.example/t/{thread.id}#post-{reply.id}" in inbox.bodies()[0]
    worker.run_once()  # done: nothing is sent twice
    assert len(inbox.messages) == 1
    fresh(db)
    assert db.scalars(select(Notification)).one().emailed_at is not None


def test_smtp_failure_is_retried_with_backoff(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    smtp: tuple[Inbox, int],
    mail_worker: Callable[[], Worker],
) -> None:
    inbox, _port = smtp
    thread = qa.ask(make_user("asker"))
    qa.answer(make_user("helper"), thread)
    inbox.refuse = True
    worker = mail_worker()
    worker.run_once()
    fresh(db)
    event = db.scalars(select(OutboxEvent).where(OutboxEvent.kind == EMAIL_EVENT)).one()
    assert (event.attempts, event.done_at) == (1, None)
    assert "451" in (event.last_error or "")
    assert event.available_at > utcnow()
    inbox.refuse = False
    worker.run_once()  # not due yet: back-off
    assert inbox.messages == []
    with time_machine.travel(utcnow() + timedelta(minutes=2)):
        worker.run_once()
    assert len(inbox.messages) == 1
    fresh(db)
    emails = db.scalars(select(OutboxEvent).where(OutboxEvent.kind == EMAIL_EVENT)).one()
    assert emails.done_at is not None


def test_daily_digest_collects_unread_notifications_once_a_day(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    smtp: tuple[Inbox, int],
    mail_worker: Callable[[], Worker],
) -> None:
    inbox, _port = smtp
    asker = make_user("asker")
    asker.email_notifications = EmailPreference.DAILY
    db.commit()
    address = "asker@example.com"
    thread = qa.ask(asker)
    qa.answer(make_user("helper1"), thread)
    qa.answer(make_user("helper2"), thread)
    worker = mail_worker()
    worker.run_once()
    assert inbox.to(address) == []  # no immediate mail, and the first day is not over
    assert len(inbox.to("helper1@example.com")) == 1  # immediate readers are not held back

    with time_machine.travel(utcnow() + timedelta(days=1, minutes=1)):
        worker.run_once()
    assert len(inbox.to(address)) == 1
    assert inbox.subject(0, address) == "Your daily summary: 2 new notifications"
    digest = [body for body in inbox.bodies() if "daily summary" in body]
    assert digest[0].count("answered your question") == 2

    qa.answer(make_user("helper3"), thread)
    with time_machine.travel(utcnow() + timedelta(days=1, hours=2)):
        mail_worker().run_once()  # a fresh worker runs its sweeps at once
    assert len(inbox.to(address)) == 1  # less than a day since the last digest
    with time_machine.travel(utcnow() + timedelta(days=2, hours=2)):
        mail_worker().run_once()
    assert len(inbox.to(address)) == 2
    assert inbox.subject(1, address) == "Your daily summary: 1 new notification"


def test_no_email_without_smtp_or_when_switched_off(
    db: Session, qa: QA, make_user: UserFactory, settings: Settings, engine: Engine
) -> None:
    quiet = make_user("quiet")
    quiet.email_notifications = EmailPreference.OFF
    db.commit()
    thread = qa.ask(quiet)
    qa.answer(make_user("helper"), thread)
    assert (
        db.scalars(select(OutboxEvent).where(OutboxEvent.kind == EMAIL_EVENT)).first() is None
    )  # nothing queued for "off"

    loud = make_user("loud")
    other = qa.ask(loud, title="Another question about roaming")
    qa.answer(make_user("helper2"), other)
    worker = Worker(settings, make_session_factory(engine))  # no SMTP_URL configured
    worker.run_once()
    fresh(db)
    emails = db.scalars(select(OutboxEvent).where(OutboxEvent.kind == EMAIL_EVENT)).one()
    assert emails.done_at is not None
    assert all(n.emailed_at is None for n in db.scalars(select(Notification)))
    assert [n.kind for n in db.scalars(select(Notification))] == [NotificationKind.ANSWER] * 2
