"""E-mail is delivered at least once: when the database cannot record a sent e-mail (the commit
after the SMTP send fails), the worker sends it again later, with the same Message-ID, so mail
clients and servers drop the repeat. A real SMTP server on loopback receives both."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.models import EmailPreference, User
from community.core.settings import Settings
from community.worker import Worker
from tests.conftest import QA, Inbox, mail_settings


class CommitFailures:
    """The database refuses the next `count` commits that follow an SMTP send, as if the
    connection dropped right after the e-mail went out."""

    def __init__(self, factory: sessionmaker[Session], inbox: Inbox) -> None:
        self.inbox = inbox
        self.count = 0
        self.sent_before = 0
        event.listen(factory, "before_commit", self._before_commit)

    def _before_commit(self, _session: Session) -> None:
        if self.count and len(self.inbox.messages) > self.sent_before:
            self.count -= 1
            self.sent_before = len(self.inbox.messages)
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    def arm(self, count: int = 1) -> None:
        self.count = count
        self.sent_before = len(self.inbox.messages)


@pytest.fixture
def worker_with_failures(
    settings: Settings, engine: Engine, smtp: tuple[Inbox, int]
) -> tuple[Callable[[], Worker], CommitFailures]:
    inbox, port = smtp
    configured = mail_settings(settings, port)
    factory = make_session_factory(engine)
    failures = CommitFailures(factory, inbox)
    return (lambda: Worker(configured, factory)), failures


def test_a_notification_email_sent_again_after_a_failed_commit_keeps_its_message_id(
    db: Session,
    qa: QA,
    make_user: Callable[..., User],
    smtp: tuple[Inbox, int],
    worker_with_failures: tuple[Callable[[], Worker], CommitFailures],
) -> None:
    inbox, _port = smtp
    make_worker, failures = worker_with_failures
    thread = qa.ask(make_user("asker"))
    qa.answer(make_user("helper"), thread)
    worker = make_worker()

    failures.arm()
    worker.run_once()
    assert len(inbox.to("asker@example.com")) == 1, "sent, but the database did not record it"
    with time_machine.travel(utcnow() + timedelta(minutes=5)):
        worker.run_once()
    sent = inbox.to("asker@example.com")
    assert len(sent) == 2, "at least once: the unrecorded e-mail is sent again"
    first, again = (message["Message-ID"] for message in sent)
    assert first == again
    assert first.endswith("@support.example>")

    with time_machine.travel(utcnow() + timedelta(minutes=30)):
        worker.run_once()
    assert len(inbox.to("asker@example.com")) == 2, "recorded now: never sent a third time"


def test_message_ids_differ_between_notifications(
    db: Session,
    qa: QA,
    make_user: Callable[..., User],
    smtp: tuple[Inbox, int],
    worker_with_failures: tuple[Callable[[], Worker], CommitFailures],
) -> None:
    inbox, _port = smtp
    make_worker, _failures = worker_with_failures
    thread = qa.ask(make_user("asker"))
    qa.answer(make_user("helper1"), thread)
    qa.answer(make_user("helper2"), thread)
    make_worker().run_once()
    ids = [message["Message-ID"] for message in inbox.messages]
    assert len(ids) >= 3 and len(set(ids)) == len(ids), ids


def test_a_digest_sent_again_after_a_failed_commit_keeps_its_message_id(
    db: Session,
    qa: QA,
    make_user: Callable[..., User],
    smtp: tuple[Inbox, int],
    worker_with_failures: tuple[Callable[[], Worker], CommitFailures],
) -> None:
    inbox, _port = smtp
    make_worker, failures = worker_with_failures
    asker = make_user("asker")
    asker.email_notifications = EmailPreference.DAILY
    db.commit()
    thread = qa.ask(asker)
    qa.answer(make_user("helper1"), thread)
    qa.answer(make_user("helper2"), thread)
    make_worker().run_once()

    failures.arm()
    with time_machine.travel(utcnow() + timedelta(days=1, minutes=1)):
        make_worker().run_once()
    with time_machine.travel(utcnow() + timedelta(days=1, minutes=10)):
        make_worker().run_once()
    digests = inbox.to("asker@example.com")
    assert len(digests) == 2
    assert digests[0]["Message-ID"] == digests[1]["Message-ID"]
