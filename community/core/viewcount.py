"""Thread views, counted at most once per viewer per thread per day, without a write per view.

Page views only touch an in-memory set. A flush (every few seconds from the app's lifespan, at
shutdown, and whenever the buffer is large) inserts the (thread, viewer, day) keys in one batch,
ignoring ones another process already stored, and adds what was new to each thread's counter.

Who is "a viewer": a signed-in member is their account; anyone else is their client address and
user agent on that day. Not the anonymous session cookie: a client that never sends it back (curl,
scripts, privacy modes) would get a fresh one, and so a fresh view, on every request, and a
browser's first visit (before it has the cookie) would count apart from its reload. Keys are
HMACs under the site's secret with the day mixed in, so no address is stored and one visitor's
keys cannot be linked from one day to the next. Bots (crawlers, link previews, curl, wget,
python-requests and other HTTP libraries, headless browsers, an empty user agent) never count:
CrawlerDetect's maintained pattern list decides.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import Counter
from datetime import date, timedelta
from typing import Any

from crawlerdetect import CrawlerDetect
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from community.core import indexing
from community.core.activity_models import ThreadView
from community.core.clock import utcnow
from community.core.db import dialect_insert
from community.core.models import Thread, User
from community.core.write_buffer import WriteBuffer

logger = logging.getLogger(__name__)

MAX_BUFFER = 5_000
# Longer user agents are cut before matching: real ones are a few hundred characters at most,
# and the detector's per-agent cache should not hold megabytes sent to exhaust it.
_AGENT_MAX = 512
_CRAWLERS = CrawlerDetect()


def viewer_key(*, user_id: int | None, session_token: str | None, ip: str | None) -> str:
    """A short, non-reversible key for whoever gives feedback or follows a suggestion (forms
    that need the session cookie anyway, for their CSRF token)."""
    if user_id is not None:
        raw = f"user:{user_id}"
    elif session_token:
        raw = f"session:{session_token}"
    else:
        raw = f"ip:{ip}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def daily_viewer_key(
    secret: str, *, user_id: int | None, ip: str | None, user_agent: str | None, day: date
) -> str:
    """The key a page view counts under (see the module's docstring): a member, or an address
    and user agent, on one day, as a keyed hash."""
    who = f"user:{user_id}" if user_id is not None else f"visitor:{ip}\n{user_agent or ''}"
    message = f"view:{day.isoformat()}:{who}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def is_bot(user_agent: str | None) -> bool:
    """Crawlers, scripts and tools are not readers; nor is a client that names itself not at all."""
    agent = (user_agent or "").strip()[:_AGENT_MAX]
    return not agent or _CRAWLERS.is_crawler(agent)


def store_new_views(
    db: Session, model: type[Any], target: Any, rows: list[dict[str, object]]
) -> list[tuple[int, str]]:
    """Insert (target, viewer_key, day) rows, skipping those already stored (by this or another
    process); returns the new ones as (target id, viewer key)."""
    insert = dialect_insert(db)
    statement = (
        insert(model).values(rows).on_conflict_do_nothing().returning(target, model.viewer_key)
    )
    return [(int(target_id), str(key)) for target_id, key in db.execute(statement)]


class ViewCounter(WriteBuffer[tuple[int, str, date, int | None]]):
    """Views waiting to be stored: (thread, viewer key, day, member id). A member's viewer key
    carries their id, so the key alone still decides what is one view."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        super().__init__(
            session_factory,
            what="thread views",
            limit=MAX_BUFFER,
            unique=True,
            when_full="flush",
            logger=logger,
        )
        self._last_prune: date | None = None

    def record(self, thread_id: int, key: str, *, user_id: int | None = None) -> None:
        self._add((thread_id, key, utcnow().date(), user_id))

    def _store(self, db: Session, batch: list[tuple[int, str, date, int | None]]) -> int:
        # Whose viewer keys belong to signed-in members: new views add to their "threads read",
        # an input of trust levels.
        members = {key: user_id for _thread, key, _day, user_id in batch if user_id is not None}
        views = {(thread_id, key, day) for thread_id, key, day, _user in batch}
        thread_ids = {thread_id for thread_id, _key, _day in views}
        # Views of threads deleted meanwhile would fail the foreign key: drop just those.
        existing = set(db.scalars(select(Thread.id).where(Thread.id.in_(thread_ids))))
        rows = [
            {"thread_id": thread_id, "viewer_key": key, "day": day}
            for thread_id, key, day in sorted(views)
            if thread_id in existing
        ]
        added = 0
        if rows:
            stored = store_new_views(db, ThreadView, ThreadView.thread_id, rows)
            new_per_thread = Counter(thread_id for thread_id, _key in stored)
            reads = Counter(members[key] for _thread, key in stored if key in members)
            for user_id, count in reads.items():
                db.execute(
                    update(User)
                    .where(User.id == user_id)
                    .values(threads_read=User.threads_read + count)
                )
            for thread_id, count in new_per_thread.items():
                db.execute(
                    update(Thread)
                    .where(Thread.id == thread_id)
                    .values(view_count=Thread.view_count + count)
                )
                # Views feed the usefulness score; waiting work for the thread absorbs this.
                indexing.thread_changed(db, thread_id)
            added = sum(new_per_thread.values())
        today = utcnow().date()
        if self._last_prune != today:
            db.execute(delete(ThreadView).where(ThreadView.day < today - timedelta(days=1)))
            self._last_prune = today
        return added
