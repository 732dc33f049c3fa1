"""The agent queue a page at a time (issue 14): a queue longer than a page shows a page in the
queue's order (due time that matters, waiting items with their clock stopped, pauses that
ended), the next and previous links show the rest and keep the filters, the htmx refresh keeps
the page, the counts cover every page, a bad page number never fails, and the stored due time
the order reads follows every change of the clock columns (and the migration that adds it)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core import migrate
from community.core.clock import utcnow
from community.core.db import make_engine, make_session_factory
from community.core.models import Brand, Forum, Role, Thread, User, Visibility
from crowdservice import agent
from crowdservice.agent.clocks import due_that_matters
from crowdservice.models import Escalation, EscalationReason, EscalationStatus, Priority
from tests.conftest import QA, fresh_database_url, log_in
from tests.crowdservice.helpers import escalated

UserFactory = Callable[..., User]
ClientFactory = Callable[[], TestClient]
HTMX = {"HX-Request": "true"}
ROW = re.compile(r'<tr class="[^"]*" id="escalation-(\d+)"')
LINK = re.compile(r'<a class="button secondary" rel="(next|prev)" href="([^"]+)"')
PAGE = agent.PAGE_SIZE


def _rows(page: str) -> list[int]:
    return [int(found) for found in ROW.findall(page)]


def _links(page: str) -> dict[str, str]:
    return {rel: html.unescape(href) for rel, href in LINK.findall(page)}


def _tab(page: str, scope: str) -> int:
    found = re.search(rf'id="tab-{scope}"[^>]*>[^<]*\(<span class="count">(\d+)</span>\)', page)
    assert found, scope
    return int(found.group(1))


def _count(page: str, state: str) -> int:
    found = re.search(rf'id="count-{state}">(\d+)<', page)
    assert found, state
    return int(found.group(1))


@dataclass
class Queue:
    items: list[Escalation]  # in the queue (visible thread, active)
    left_out: list[Escalation]  # a hidden thread's, a resolved one
    now: datetime
    agent: User

    def order(self, keep: Callable[[Escalation], bool] = lambda _item: True) -> list[int]:
        """The queue's order as the Python clocks say it (due time that matters, priority, id):
        what the database's order must give."""
        chosen = [item for item in self.items if keep(item)]
        chosen.sort(key=lambda e: (due_that_matters(e, self.now)[1], e.priority.value, e.id))
        return [item.id for item in chosen]


def _queue(db: Session, qa: QA, make_user: UserFactory, size: int) -> Queue:
    """`size` escalations due ten minutes apart from 100 minutes ago, one in nine waiting on the
    customer (its clock stopped between two others), one in nine answered after a pause that
    ended; one in three in Spanish; plus a hidden thread's and a resolved one."""
    ana = make_user("ana", role=Role.AGENT)
    now = utcnow().replace(microsecond=0)
    made = [
        escalated(db, qa, make_user(f"asker{uuid.uuid4().hex[:6]}"), f"No signal, case {n}")
        for n in range(size + 2)
    ]
    items, (hidden, done) = made[:size], made[size:]
    for number, item in enumerate(items):
        item.priority = list(Priority)[number % 4]
        offset = timedelta(minutes=10 * number - 100)
        item.first_response_due_at = now + offset
        if number % 9 == 4:  # waiting for two hours: due five minutes after the one before
            item.status = EscalationStatus.WAITING
            item.first_response_at = now - timedelta(hours=3)
            item.waiting_since = now - timedelta(hours=2)
            item.resolution_due_at = now + offset - timedelta(minutes=125)
        elif number % 9 == 7:  # answered, after a 20-minute wait: due 3 minutes later
            item.status = EscalationStatus.ANSWERED
            item.first_response_at = now - timedelta(hours=1)
            item.paused_seconds = 20 * 60
            item.resolution_due_at = now + offset - timedelta(minutes=17)
        if number % 3 == 0:
            item.thread.locale = "es"
    hidden.first_response_due_at = done.first_response_due_at = now - timedelta(days=1)
    hidden.thread.visibility = Visibility.HIDDEN
    done.status = EscalationStatus.RESOLVED
    db.commit()
    return Queue(items=items, left_out=[hidden, done], now=now, agent=ana)


def _signed_in(make_client: ClientFactory, user: User) -> TestClient:
    browser = make_client()
    log_in(browser, user.username)
    return browser


def test_a_queue_longer_than_a_page_shows_a_page_in_order_and_links_to_the_rest(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    queue = _queue(db, qa, make_user, PAGE + 7)
    expected = queue.order()
    assert len(expected) == PAGE + 7
    browser = _signed_in(make_client, queue.agent)
    with time_machine.travel(queue.now, tick=False):
        first = browser.get("/b/acme/agent")
        assert first.status_code == 200
        assert _rows(first.text) == expected[:PAGE]
        assert f"Showing 1–{PAGE} of {PAGE + 7}" in first.text
        assert "Page 1 of 2" in first.text
        links = _links(first.text)
        assert set(links) == {"next"} and links["next"] == "/b/acme/agent?page=2"

        second = browser.get(links["next"])
        assert _rows(second.text) == expected[PAGE:]
        assert f"Showing {PAGE + 1}–{PAGE + 7} of {PAGE + 7}" in second.text
        assert _links(second.text) == {"prev": "/b/acme/agent"}
        assert _rows(browser.get(_links(second.text)["prev"]).text) == expected[:PAGE]

        # The counts cover the whole queue, not the page; the hidden and resolved are left out.
        overdue = sum(1 for item in queue.items if due_that_matters(item, queue.now)[1] < queue.now)
        for page in (first.text, second.text):
            assert _tab(page, "all") == PAGE + 7 and _tab(page, "unclaimed") == PAGE + 7
            assert _tab(page, "breached") == overdue == 10
            assert _tab(page, "mine") == 0
            waiting = sum(1 for item in queue.items if item.status == EscalationStatus.WAITING)
            assert _count(page, "waiting") == waiting
            assert _count(page, "breached") == overdue
        shown = set(_rows(first.text) + _rows(second.text))
        assert not shown & {item.id for item in queue.left_out}

        # The htmx refresh of page 2 re-renders page 2, and asks for page 2 again.
        fragment = browser.get("/b/acme/agent", params={"page": "2"}, headers=HTMX)
        assert fragment.text.lstrip().startswith('<div id="queue-region"')
        assert _rows(fragment.text) == expected[PAGE:]
        assert 'hx-get="/b/acme/agent?page=2"' in fragment.text


def test_filters_survive_paging_and_the_tabs_count_under_them(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    queue = _queue(db, qa, make_user, 3 * PAGE // 2 + 8)
    mine = queue.items[10:13]
    for item in mine:
        agent.claim(db, queue.agent, item)
    db.commit()
    browser = _signed_in(make_client, queue.agent)

    def spanish(item: Escalation) -> bool:
        return item.thread.locale == "es"

    with time_machine.travel(queue.now, tick=False):
        unclaimed = queue.order(lambda item: item not in mine)
        assert len(unclaimed) > PAGE
        first = browser.get("/b/acme/agent", params={"scope": "unclaimed"})
        assert _rows(first.text) == unclaimed[:PAGE]
        following = _links(first.text)["next"]
        assert following == "/b/acme/agent?scope=unclaimed&page=2"
        assert _rows(browser.get(following).text) == unclaimed[PAGE:]

        # Two filters at once, fewer than a page: page 2 shows the only page.
        wanted = queue.order(lambda item: spanish(item) and item not in mine)
        assert 0 < len(wanted) < PAGE
        params = {"scope": "unclaimed", "language": "es", "page": "2"}
        page = browser.get("/b/acme/agent", params=params).text
        assert _rows(page) == wanted
        assert _links(page) == {} and "Page 1 of" not in page
        assert 'hx-get="/b/acme/agent?scope=unclaimed&amp;language=es"' in page
        assert _tab(page, "unclaimed") == len(wanted)
        assert _tab(page, "all") == sum(1 for item in queue.items if spanish(item))
        assert _tab(page, "mine") == sum(1 for item in mine if spanish(item))
        # The tabs keep the language and start at page 1; the heading counts the whole queue.
        assert 'href="/b/acme/agent?scope=mine&amp;language=es"' in page
        assert 'href="/b/acme/agent?language=es"' in page
        assert _count(page, "claimed") == len(mine)
        assert _count(page, "mine") == len(mine)
        every = queue.order(lambda item: spanish(item))
        listed = browser.get("/b/acme/agent", params={"language": "es"}).text
        assert _rows(listed) == every[:PAGE]


def test_a_bad_page_number_shows_the_first_or_the_last_page(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    queue = _queue(db, qa, make_user, PAGE + 3)
    expected = queue.order()
    browser = _signed_in(make_client, queue.agent)
    with time_machine.travel(queue.now, tick=False):
        for value in ("0", "-1", "abc", "1.5", "", "²", "1e3", " 2"):
            response = browser.get("/b/acme/agent", params={"page": value})
            assert response.status_code == 200, value
            assert _rows(response.text) == expected[:PAGE], value
        for value in ("3", "99", "9" * 40, "9" * 5000):
            response = browser.get("/b/acme/agent", params={"page": value})
            assert response.status_code == 200, value
            assert _rows(response.text) == expected[PAGE:], value
            assert "Page 2 of 2" in response.text
            # The refresh asks for the page shown, not the one asked for.
            assert 'hx-get="/b/acme/agent?page=2"' in response.text
        # A filter that leaves nothing: no page at all, and no failure.
        empty = browser.get("/b/acme/agent", params={"priority": "P1", "forum": "x", "page": "4"})
        assert empty.status_code == 200 and _rows(empty.text) == []
        assert "Nothing waits here" in empty.text and "Page " not in empty.text


def test_the_stored_due_time_follows_the_clock_columns(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    assert item.queue_due_at == item.first_response_due_at
    now = utcnow().replace(microsecond=0)
    item.first_response_at = now
    item.resolution_due_at = now + timedelta(hours=4)
    db.commit()
    assert item.queue_due_at == now + timedelta(hours=4)
    item.paused_seconds = 90
    db.commit()
    db.expire_all()
    stored = db.get(Escalation, item.id)
    assert stored is not None
    assert stored.queue_due_at == now + timedelta(hours=4, seconds=90)


def test_the_migration_fills_the_due_time_of_existing_escalations(
    backend: str, tmp_path: Path
) -> None:
    url, remove = fresh_database_url(backend, tmp_path)
    engine = make_engine(url)
    try:
        migrate.upgrade(url)
        now = utcnow().replace(microsecond=0)
        with make_session_factory(engine)() as db:
            brand = Brand(slug="acme", name="Acme", description="", theme={}, default_locale="en")
            db.add(brand)
            db.flush()
            forum = Forum(brand_id=brand.id, slug="mobile", name="Mobile", description="")
            db.add(forum)
            db.flush()
            clocks = [
                {},  # no first response yet
                {"first_response_at": now, "paused_seconds": 600},
                # Waiting: the running pause is not stored, the one that ended is.
                {"first_response_at": now, "paused_seconds": 60, "waiting_since": now},
            ]
            for number, values in enumerate(clocks):
                thread = Thread(forum_id=forum.id, title=f"Help {number}", locale="en")
                db.add(thread)
                db.flush()
                db.add(
                    Escalation(
                        thread_id=thread.id,
                        brand_id=brand.id,
                        reason=EscalationReason.NO_RESPONSE,
                        priority=Priority.P2,
                        first_response_due_at=now + timedelta(hours=1),
                        resolution_due_at=now + timedelta(hours=8),
                        **values,
                    )
                )
            db.commit()
        migrate.downgrade(url, "0014")
        migrate.upgrade(url)
        with make_session_factory(engine)() as db:
            stored = db.scalars(select(Escalation).order_by(Escalation.id)).all()
            assert [item.queue_due_at for item in stored] == [
                now + timedelta(hours=1),
                now + timedelta(hours=8, minutes=10),
                now + timedelta(hours=8, minutes=1),
            ]
    finally:
        engine.dispose()
        remove()
