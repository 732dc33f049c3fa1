"""Whether someone asked after all: the new threads a person started in the brand's forums,
so a search or an opened suggestion can be linked to the question that followed it.

Only a signed-in person can be linked: a search records its user (nobody for a visitor), the
ask form needs an account, and a visitor's key (a hash of their session or address) never
appears on a thread. A thread counts whatever has become of it since (held, hidden, deleted):
the person asked all the same. The forum and language filters do not apply here: a search is
not made in a forum, and the question may go to any of the brand's forums.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from community.core.models import Brand, Forum, Thread

# How long after a search (or a session's last opened suggestion) a new thread still counts as
# the question that search did not answer.
FOLLOW_UP = timedelta(minutes=30)

ThreadTimes = Mapping[int, list[datetime]]


def thread_authors(brand: Brand, since: datetime, until: datetime) -> Select[Any]:
    """Who started a thread in the brand's forums from `since` to before `until` (a subquery):
    only their searches can have been followed by one."""
    return (
        select(Thread.author_id)
        .join(Forum, Forum.id == Thread.forum_id)
        .where(Forum.brand_id == brand.id, Thread.created_at >= since, Thread.created_at < until)
    )


def thread_times(
    db: Session,
    brand: Brand,
    authors: Select[Any],
    since: datetime,
    until: datetime,
) -> dict[int, list[datetime]]:
    """When each of `authors` (a subquery of user ids) started a thread in the brand's
    forums, from `since` to before `until`, in order."""
    rows = db.execute(
        select(Thread.author_id, Thread.created_at)
        .join(Forum, Forum.id == Thread.forum_id)
        .where(
            Forum.brand_id == brand.id,
            Thread.author_id.in_(authors),
            Thread.created_at >= since,
            Thread.created_at < until,
        )
        .order_by(Thread.created_at)
    ).all()
    times: dict[int, list[datetime]] = {}
    for author, created in rows:
        if author is not None:  # the IN leaves no NULL out; this tells the type checker
            times.setdefault(author, []).append(created)
    return times


def asked_between(
    times: ThreadTimes, user_id: int | None, after: datetime, until: datetime
) -> bool:
    """Did the person start a thread after `after` and no later than `until`? (Nobody, for
    no one.)"""
    started = times.get(user_id, []) if user_id is not None else []
    first_after = bisect_right(started, after)
    return first_after < len(started) and started[first_after] <= until
