"""Cycle collection at safe points (community.core.gc_control): on Python 3.11 a web process
collects garbage only in its collector thread, never inside an allocation of a request thread,
where collection corrupted the heap under load (docs/performance.md, "The segfault")."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from jinja2.runtime import Context
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core import gc_control
from community.core.auth import Passwords
from community.core.models import Base, Role, Thread, User
from community.demo import seed_demo
from tests.conftest import SECRET_KEY
from tests.test_lazy_imports import _demo_pages, _python


def _switched() -> bool:
    """Switch this process; on Python 3.12 and later, check that nothing changed instead."""
    if gc_control.SAFE_POINT_COLLECTION_NEEDED:
        assert gc_control.collect_at_safe_points() is True
        assert not gc.isenabled()
        return True
    assert gc_control.collect_at_safe_points() is False
    assert gc.isenabled()
    return False


class _Cycle:
    """Garbage only the cycle collector can free, noting the thread that finalizes it."""

    def __init__(self, finalized_in: list[int]) -> None:
        self.itself = self
        self.finalized_in = finalized_in

    def __del__(self) -> None:
        self.finalized_in.append(threading.get_ident())


def test_allocating_never_collects_in_the_allocating_thread() -> None:
    if not _switched():
        return
    finalized_in: list[int] = []
    for _ in range(50):
        _Cycle(finalized_in)
    # Ten generation-0 thresholds of new containers: automatic collection would have run here
    # and finalized the cycles in this thread.
    kept = [[] for _ in range(gc.get_threshold()[0] * 10)]
    assert threading.get_ident() not in finalized_in
    deadline = time.monotonic() + 5
    while len(finalized_in) < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    collector = next(t for t in threading.enumerate() if t.name == gc_control.COLLECTOR_THREAD_NAME)
    assert finalized_in == [collector.ident] * 50  # collected all the same, in its thread
    assert len(kept) > 0


# A fresh process with automatic collection off and no collector thread: the schedule's
# decisions are then the only collections, and each step allocates exactly what it says.
FOLLOW_THE_SCHEDULE = """
import gc, json
from community.core import gc_control

gc.disable()
kept = []

def step(survivors=2):
    kept.append([[] for _ in range(survivors)])
    return gc_control.collect_if_due()

gc.set_threshold(1_000_000, 10, 10)
gc.collect()
nothing_due = gc_control.collect_if_due()
gc.set_threshold(1, 10, 10)
young = step()
gc.set_threshold(1, 1, 10)
middle = [step(), step()]
gc.set_threshold(1, 1, 1)
first_full = [step() for _ in range(4)]
long_lived = len(gc.get_objects(generation=2))
few_new = [step() for _ in range(40)]
many_new = [step(long_lived // 4 + 100)] + [step() for _ in range(4)]
print(json.dumps({"nothing_due": nothing_due, "young": young, "middle": middle,
                  "first_full": first_full, "few_new": few_new, "many_new": many_new,
                  "long_lived": long_lived}))
"""


def test_the_schedule_follows_cpythons_thresholds_and_its_long_lived_rule() -> None:
    answer: dict[str, Any] = _python(FOLLOW_THE_SCHEDULE)
    assert answer["nothing_due"] is None  # nothing allocated since the last collection
    assert answer["young"] == 0
    assert answer["middle"] == [0, 1]  # generation 1 once generation 0 ran more than once
    assert 2 in answer["first_full"]  # nothing counted yet: the first full collection runs
    assert answer["long_lived"] > 10_000  # the interpreter and community.core's modules
    # Generation 2 is due by its count every other generation-1 collection, but a few new
    # objects are not worth scanning the whole heap for...
    assert 1 in answer["few_new"]
    assert 2 not in answer["few_new"]
    # ...a quarter of the long-lived objects moved up since the last full collection are.
    assert 2 in answer["many_new"]


# A fresh process: this one may have switched already. The web app serves thread pages from
# several threads; every collection after start-up must come from the collector thread.
SERVE_AND_WATCH_COLLECTIONS = """
import gc, json, sys, threading
from concurrent.futures import ThreadPoolExecutor
from fastapi.testclient import TestClient
from community.app import create_app

path = sys.argv[1]
collections = []
gc.callbacks.append(
    lambda phase, info: phase == "start" and collections.append(threading.current_thread().name)
)
with TestClient(create_app()) as client:
    started = list(collections)
    enabled = gc.isenabled()
    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(set(pool.map(lambda _: client.get(path).status_code, range(60))))
    for _ in range(100):  # until the collector has looked at the garbage those pages left
        if len(collections) > len(started):
            break
        threading.Event().wait(0.05)
serving = collections[len(started):]
print(json.dumps({"enabled": enabled, "statuses": statuses, "threads": sorted(set(serving))}))
"""


def test_a_web_process_collects_only_in_its_collector_thread(tmp_path: Path) -> None:
    url, paths = _demo_pages(tmp_path)
    thread_page = next(path for path in paths if path.startswith("/t/"))
    answer = _python(
        SERVE_AND_WATCH_COLLECTIONS,
        thread_page,
        env={
            "DATABASE_URL": url,
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "SECRET_KEY": SECRET_KEY,
            "SEARCH_MODEL": "off",
            "MEILI_URL": "http://127.0.0.1:1",
            "LOG_LEVEL": "ERROR",
            "PAGE_CACHE_SECONDS": "0",
            "ALLOWED_HOSTS": "testserver",  # the test client's Host
        },
    )
    assert answer["statuses"] == [200]
    if gc_control.SAFE_POINT_COLLECTION_NEEDED:
        assert answer["enabled"] is False
        assert answer["threads"] == [gc_control.COLLECTOR_THREAD_NAME]
    else:
        assert answer["enabled"] is True


def test_a_thread_page_leaves_its_rows_to_reference_counting(
    db: Session,
    passwords: Passwords,
    as_role: Callable[[Role | None], tuple[TestClient, User | None]],
) -> None:
    """The page's rows, template context and macros are freed as the page is sent, not left in
    reference cycles for the collector (an `import ... with context` made every render build a
    template module that held the whole context: 291 cyclic objects a signed-in thread page on
    the peers' data, 71 without, the rest the test client's)."""
    seed_demo(db, passwords)
    db.commit()
    thread = db.scalars(select(Thread).order_by(Thread.id)).first()
    assert thread is not None
    member, _ = as_role(Role.MEMBER)
    assert member.get(f"/t/{thread.id}").status_code == 200  # templates compiled, caches warm
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            page = member.get(f"/t/{thread.id}")
            assert page.status_code == 200
            assert 'name="csrf_token"' in page.text  # the answer form keeps its token
        gc.collect()
        left = sorted({type(o).__name__ for o in gc.garbage if isinstance(o, (Base, Context))})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
