"""Who hears of a published post is worked out by the worker (community.visibility.announce),
as Discourse's post alerts are: the answer's own transaction writes one outbox row, however many
watch the thread, and the worker tells the mentioned, the asker and the watchers right after.
What changed in between counts: a post hidden before then tells nobody, and nobody hears of a
post twice."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community import thread_editing, threads, visibility
from community.core.db import make_session_factory
from community.core.models import Notification, NotificationKind, Post, User, Visibility
from community.core.outbox import OutboxEvent
from community.core.schemas import AnswerIn, EditIn
from community.core.settings import Settings
from community.worker import Worker
from tests.conftest import QA, drain, fresh

UserFactory = Callable[..., User]


def _told(db: Session, post: Post) -> dict[int, list[NotificationKind]]:
    fresh(db)
    told: dict[int, list[NotificationKind]] = {}
    for notification in db.scalars(
        select(Notification).where(Notification.post_id == post.id).order_by(Notification.id)
    ):
        told.setdefault(notification.user_id, []).append(notification.kind)
    return told


def _answer(db: Session, author: User, thread_id: int, body: str) -> Post:
    thread = threads.access_thread(db, author, thread_id)
    post = threads.answer(db, author, thread, AnswerIn(body=body))
    db.commit()
    return post


def test_an_answer_tells_nobody_until_the_worker_announces_it(
    db: Session, qa: QA, make_user: UserFactory, settings: Settings, engine: Engine
) -> None:
    asker, watcher, helper, named = (make_user(n) for n in ("asker", "watcher", "helper", "named"))
    thread = qa.ask(asker)
    threads.watch(db, watcher, thread)
    db.commit()

    post = _answer(db, helper, thread.id, "Ask @named, who moved theirs last week.")

    assert _told(db, post) == {}
    waiting = db.scalars(
        select(OutboxEvent.payload).where(
            OutboxEvent.kind == visibility.ANNOUNCE_EVENT, OutboxEvent.done_at.is_(None)
        )
    ).all()
    assert waiting == [{"post_id": post.id, "actor_id": helper.id}]

    drain(Worker(settings, make_session_factory(engine)))

    assert _told(db, post) == {
        asker.id: [NotificationKind.ANSWER],
        watcher.id: [NotificationKind.NEW_POST],
        named.id: [NotificationKind.MENTION],
    }


def test_a_post_hidden_before_it_is_announced_tells_nobody(
    db: Session, qa: QA, make_user: UserFactory, settings: Settings, engine: Engine
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker)
    post = _answer(db, helper, thread.id, "Buy my miracle unlocker at the usual place.")
    visibility.set_visibility(db, post, Visibility.HIDDEN)
    db.commit()

    drain(Worker(settings, make_session_factory(engine)))

    assert _told(db, post) == {}


def test_nobody_hears_of_a_post_twice(
    db: Session, qa: QA, make_user: UserFactory, settings: Settings, engine: Engine
) -> None:
    asker, helper, named, later = (make_user(n) for n in ("asker", "helper", "named", "later"))
    thread = qa.ask(asker)
    post = _answer(db, helper, thread.id, "Ask @named about it.")
    # An edit tells a newly mentioned person at once, before the worker announces the post.
    thread_editing.edit_post(
        db, helper, post, EditIn(body="Ask @named about it, or @later, who had the same phone.")
    )
    db.commit()
    assert _told(db, post) == {later.id: [NotificationKind.MENTION]}
    # Hidden and shown again before the worker ran: published twice.
    visibility.set_visibility(db, post, Visibility.HIDDEN)
    visibility.publish(db, post, author=helper)
    db.commit()

    drain(Worker(settings, make_session_factory(engine)))

    assert _told(db, post) == {
        later.id: [NotificationKind.MENTION],
        named.id: [NotificationKind.MENTION],
        asker.id: [NotificationKind.ANSWER],
    }
