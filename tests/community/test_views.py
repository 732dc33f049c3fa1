"""Thread views: once per viewer per thread per day, buffered in memory, stored in batches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core.activity_models import ThreadView
from community.core.clock import utcnow
from community.core.models import Thread, User
from community.core.viewcount import ViewCounter, daily_viewer_key, is_bot, viewer_key
from tests.conftest import QA, fresh, log_in

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
NOT_PEOPLE = [
    "curl/8.11.1",
    "Wget/1.25.0",
    "python-requests/2.32.3",
    "python-httpx/0.28.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/131.0.0.0 Safari/537.36",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "",
    "   ",
]


def _cookieless_get(app: FastAPI, path: str, *, ip: str, agent: str) -> None:
    """One request from a client that never keeps cookies (curl, a script, a strict browser):
    a new client each time, from the given address."""
    response = TestClient(app, base_url="http://testserver", client=(ip, 40123)).get(
        path, headers={"User-Agent": agent}
    )
    assert response.status_code == 200
    assert "set-cookie" in response.headers  # offered a cookie, which it will never send back


def _views(db: Session, thread: Thread) -> int:
    fresh(db)
    stored = db.get(Thread, thread.id)
    assert stored is not None
    return stored.view_count


def test_page_views_are_buffered_then_counted_once_per_viewer_and_day(
    app: FastAPI,
    make_client: Callable[[], TestClient],
    db: Session,
    qa: QA,
    make_user: Callable[..., User],
) -> None:
    thread = qa.ask(make_user("asker"))
    counter: ViewCounter = app.state.view_counter
    reader, anonymous = make_client(), make_client()
    make_user("reader")
    log_in(reader, "reader")
    for _ in range(5):
        assert reader.get(f"/t/{thread.id}", headers=BROWSER).status_code == 200
        assert anonymous.get(f"/t/{thread.id}", headers=BROWSER).status_code == 200
    assert _views(db, thread) == 0  # nothing written while people read
    assert counter.pending() == 2
    assert counter.flush() == 2
    assert _views(db, thread) == 2

    reader.get(f"/t/{thread.id}", headers=BROWSER)
    assert counter.flush() == 0  # the same viewer, the same day: already counted
    assert _views(db, thread) == 2

    with time_machine.travel(utcnow() + timedelta(days=1)):
        reader.get(f"/t/{thread.id}", headers=BROWSER)
        assert counter.flush() == 1
    assert _views(db, thread) == 3


def test_bots_are_not_counted(
    app: FastAPI, client: TestClient, qa: QA, make_user: Callable[..., User]
) -> None:
    thread = qa.ask(make_user("asker"))
    client.get(f"/t/{thread.id}", headers={"User-Agent": "Googlebot/2.1"})
    client.get(f"/t/{thread.id}", headers={"User-Agent": ""})
    assert app.state.view_counter.pending() == 0
    assert is_bot("Mozilla/5.0 (compatible; bingbot/2.0)")
    assert not is_bot(BROWSER["User-Agent"])


def test_cookieless_clients_count_once_per_address_agent_and_day(
    app: FastAPI, db: Session, qa: QA, make_user: Callable[..., User]
) -> None:
    thread = qa.ask(make_user("asker"))
    counter: ViewCounter = app.state.view_counter
    path = f"/t/{thread.id}"
    for _ in range(6):
        _cookieless_get(app, path, ip="203.0.113.7", agent=CHROME)
    assert counter.flush() == 1
    assert _views(db, thread) == 1

    _cookieless_get(app, path, ip="203.0.113.8", agent=CHROME)  # someone else
    _cookieless_get(app, path, ip="203.0.113.7", agent=IPHONE)  # another device behind one NAT
    _cookieless_get(app, path, ip="203.0.113.7", agent=CHROME)  # the first again
    assert counter.flush() == 2
    assert _views(db, thread) == 3

    with time_machine.travel(utcnow() + timedelta(days=1)):
        _cookieless_get(app, path, ip="203.0.113.7", agent=CHROME)
        assert counter.flush() == 1
    assert _views(db, thread) == 4
    fresh(db)
    keys = list(db.scalars(select(ThreadView.viewer_key)))
    assert len(keys) == 4 and all(len(key) == 32 for key in keys)
    assert not any("203.0.113" in key for key in keys)


def test_browsers_keep_one_view_across_their_first_visit_and_reloads(
    app: FastAPI,
    make_client: Callable[[], TestClient],
    db: Session,
    qa: QA,
    make_user: Callable[..., User],
) -> None:
    """The first request has no cookie yet; the reload has one. Still one reader."""
    thread = qa.ask(make_user("asker"))
    browser = make_client()
    for _ in range(3):
        assert browser.get(f"/t/{thread.id}", headers=BROWSER).status_code == 200
    assert app.state.view_counter.flush() == 1
    assert _views(db, thread) == 1


def test_scripts_crawlers_and_previews_are_not_readers(
    app: FastAPI, qa: QA, make_user: Callable[..., User]
) -> None:
    thread = qa.ask(make_user("asker"))
    for agent in NOT_PEOPLE:
        assert is_bot(agent), agent
        _cookieless_get(app, f"/t/{thread.id}", ip="198.51.100.4", agent=agent)
    assert app.state.view_counter.pending() == 0
    for agent in (BROWSER["User-Agent"], CHROME, IPHONE):
        assert not is_bot(agent), agent
    assert is_bot("curl/8.0 " + "x" * 100_000)  # a huge agent is cut, not matched in full


def test_view_keys_are_keyed_hashes_that_change_every_day() -> None:
    today = utcnow().date()

    def key(
        site: str = "one",
        *,
        user_id: int | None = None,
        ip: str = "203.0.113.7",
        agent: str = CHROME,
        day: date = today,
    ) -> str:
        return daily_viewer_key(f"secret-{site}", user_id=user_id, ip=ip, user_agent=agent, day=day)

    visitor = key()
    assert visitor == key()
    assert len(visitor) == 32 and set(visitor) <= set("0123456789abcdef")
    # Without the site's secret nobody can test a guessed address against a stored key.
    assert visitor != key("two")
    assert visitor != key(day=today + timedelta(days=1))  # days cannot be linked
    assert key(user_id=7) == key(user_id=7, ip="10.0.0.1", agent="")  # a member is the account
    assert key(user_id=7) != visitor


def test_two_processes_never_count_one_viewer_twice(
    app: FastAPI, db: Session, qa: QA, make_user: Callable[..., User]
) -> None:
    """Two web processes each buffer the same view; the database keeps one."""
    thread = qa.ask(make_user("asker"))
    factory = app.state.session_factory
    first, second = ViewCounter(factory), ViewCounter(factory)
    key = viewer_key(user_id=None, session_token="same-browser", ip=None)
    first.record(thread.id, key)
    second.record(thread.id, key)
    assert first.flush() + second.flush() == 1
    assert _views(db, thread) == 1


def test_views_of_deleted_threads_are_dropped_and_old_keys_pruned(
    app: FastAPI, db: Session, qa: QA, make_user: Callable[..., User]
) -> None:
    author = make_user("asker")
    kept, gone = qa.ask(author), qa.ask(author, title="This one will be deleted soon")
    counter = ViewCounter(app.state.session_factory)
    with time_machine.travel(utcnow() - timedelta(days=3)):
        counter.record(kept.id, "old-viewer")
        counter.flush()
    counter.record(kept.id, "a")
    counter.record(gone.id, "b")
    gone_id = gone.id
    db.delete(gone)
    db.commit()
    assert counter.flush() == 1
    fresh(db)
    keys = {(view.thread_id, view.viewer_key) for view in db.scalars(select(ThreadView))}
    assert keys == {(kept.id, "a")}  # the 3-day-old key was pruned, the deleted thread dropped
    assert gone_id not in {view.thread_id for view in db.scalars(select(ThreadView))}
    assert db.scalar(select(func.count()).select_from(ThreadView)) == 1


def test_viewer_keys_do_not_reveal_who_viewed() -> None:
    key = viewer_key(user_id=42, session_token=None, ip=None)
    assert key == viewer_key(user_id=42, session_token=None, ip=None)  # stable within a day
    assert len(key) == 32
    assert set(key) <= set("0123456789abcdef")  # a hash, not the id
    assert key != viewer_key(user_id=None, session_token="42", ip=None)
    assert key != viewer_key(user_id=43, session_token=None, ip=None)
