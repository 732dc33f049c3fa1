"""The admins' view of background work: what failed at least once and is not done, and
retrying one now (the outbox's rule, not the page's)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from community.core import outbox
from community.core.clock import utcnow
from community.core.errors import NotFound
from community.core.models import Role, User
from community.core.outbox import OutboxEvent
from tests.conftest import csrf_token, fresh


def _event(db: Session, key: str, *, attempts: int, done: bool = False) -> OutboxEvent:
    later = utcnow() + timedelta(hours=1)
    event = OutboxEvent(
        kind="test.work", dedupe_key=key, payload={}, attempts=attempts, available_at=later,
        claimed_by="worker-1" if attempts else None, claimed_until=later if attempts else None,
        last_error="boom" if attempts else None, done_at=utcnow() if done else None,
    )  # fmt: skip
    db.add(event)
    db.commit()
    return event


def test_stuck_work_is_what_failed_and_is_not_done_the_most_tried_first(db: Session) -> None:
    _event(db, "fresh", attempts=0)
    once = _event(db, "once", attempts=1)
    often = _event(db, "often", attempts=5)
    also_once = _event(db, "also-once", attempts=1)
    _event(db, "finished", attempts=3, done=True)

    assert [event.id for event in outbox.stuck_events(db)] == [often.id, once.id, also_once.id]
    assert [event.id for event in outbox.stuck_events(db, limit=2)] == [often.id, once.id]


def test_retry_now_makes_it_due_and_drops_the_lease(db: Session) -> None:
    stuck = _event(db, "stuck", attempts=2)
    before = utcnow()
    outbox.retry_now(db, stuck.id)
    db.commit()
    db.refresh(stuck)
    assert before <= stuck.available_at <= utcnow()
    assert stuck.claimed_until is None
    assert (stuck.attempts, stuck.last_error, stuck.done_at) == (2, "boom", None)

    finished = _event(db, "finished", attempts=1, done=True)
    for event_id in (finished.id, finished.id + 1000):
        with pytest.raises(NotFound):
            outbox.retry_now(db, event_id)


def test_the_admins_page_lists_stuck_work_and_retries_it(
    db: Session, as_role: Callable[[Role | None], tuple[TestClient, User | None]]
) -> None:
    stuck = _event(db, "stuck", attempts=2)
    finished = _event(db, "finished", attempts=1, done=True)
    browser, _admin = as_role(Role.ADMIN)
    page = browser.get("/admin/outbox")
    assert page.status_code == 200
    assert f"/admin/outbox/{stuck.id}/retry" in page.text
    assert f"/admin/outbox/{finished.id}/retry" not in page.text

    token = csrf_token(browser, "/admin/outbox")
    retried = browser.post(
        f"/admin/outbox/{stuck.id}/retry", data={"csrf_token": token}, follow_redirects=False
    )
    assert retried.status_code == 303 and retried.headers["location"] == "/admin/outbox"
    fresh(db)
    assert db.get(OutboxEvent, stuck.id).claimed_until is None  # type: ignore[union-attr]
    done = browser.post(
        f"/admin/outbox/{finished.id}/retry", data={"csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 404
    member, _user = as_role(Role.MEMBER)
    assert member.get("/admin/outbox").status_code == 403
