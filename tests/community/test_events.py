"""The domain-event registry: handlers run in the order they were connected, in the publisher's
session and transaction; an event nobody listens to does nothing."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core import events
from community.core.events import Event
from community.core.models import Brand
from community.members import badges
from community.wiring import subscribe_all
from crowdservice import service as crowd_service
from crowdservice.known_issues import linking as known_issue_linking
from moderation import queue


def test_handlers_run_in_the_order_they_were_connected() -> None:
    event: Event[str] = Event("test_happened")
    seen: list[str] = []
    event.connect(lambda _db, payload: seen.append(f"first {payload}"))
    event.connect(lambda _db, payload: seen.append(f"second {payload}"))

    event.send(Session(), "now")

    assert seen == ["first now", "second now"]


def test_connecting_a_handler_twice_runs_it_once() -> None:
    event: Event[int] = Event("test_counted")
    calls: list[int] = []

    def handler(_db: Session, payload: int) -> None:
        calls.append(payload)

    event.connect(handler)
    event.connect(handler)
    event.send(Session(), 7)

    assert calls == [7]
    assert event.handlers == (handler,)


def test_an_event_nobody_listens_to_does_nothing(db: Session) -> None:
    event: Event[object] = Event("test_unheard")
    event.send(db, object())
    event.disconnect(lambda _db, _payload: None)  # never connected: no error either

    assert event.handlers == ()
    assert not db.new and not db.dirty


def _brand(slug: str) -> Brand:
    return Brand(slug=slug, name=slug.title(), description="", theme={}, default_locale="en")


def test_handlers_share_the_publishers_session_and_transaction(db: Session) -> None:
    event: Event[Brand] = Event("test_brand_added")
    sessions: list[Session] = []

    def add_a_sister_brand(handler_db: Session, brand: Brand) -> None:
        sessions.append(handler_db)
        # The publisher's flushed row is visible: same transaction, nothing committed yet.
        assert handler_db.scalar(select(Brand.id).where(Brand.slug == brand.slug)) == brand.id
        handler_db.add(_brand(f"{brand.slug}-sister"))
        handler_db.flush()

    event.connect(add_a_sister_brand)
    published = _brand("events")
    db.add(published)
    db.flush()

    event.send(db, published)

    assert sessions == [db]
    assert db.scalar(select(Brand.id).where(Brand.slug == "events-sister")) is not None
    db.rollback()  # the publisher's rollback takes the handler's work with it
    assert db.scalars(select(Brand).where(Brand.slug.like("events%"))).all() == []


def test_start_up_wiring_connects_each_domain_once() -> None:
    subscribe_all()
    subscribe_all()

    handlers: dict[str, tuple[Callable[..., None], ...]] = {
        "post_submitted": events.post_submitted.handlers,
        "post_published": events.post_published.handlers,
        "answer_accepted": events.answer_accepted.handlers,
    }
    assert handlers == {
        "post_submitted": (queue.screen_submission,),
        "post_published": (crowd_service.on_published, known_issue_linking.on_published),
        "answer_accepted": (crowd_service.on_accepted, badges.on_accepted),
    }
