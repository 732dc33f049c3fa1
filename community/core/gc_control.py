"""Cyclic garbage collection at safe points only, for threaded processes on Python 3.11.

On Python 3.11 the cycle collector runs inside whichever object allocation crosses its
threshold, in whichever thread makes it, in the middle of whatever C code is allocating; the
finalizers and weakref callbacks of the garbage it finds (SQLAlchemy's identity maps and
pooled connections, psycopg's results) run right there. Python 3.12 moved collection to safe
points between bytecodes ("the garbage collector now runs only on the eval breaker", What's
New in 3.12).

A web process on 3.11 died under concurrent load with heap corruption (a segfault within
seconds at 8 concurrent thread pages on the peers' data; docs/performance.md, "The segfault").
It never died with automatic collection off and the collection done by one thread of its own,
nor on Python 3.12 with the same packages. That is what `collect_at_safe_points` sets up:
automatic collection off, and a daemon thread that runs the generational schedule from a
bytecode boundary of its own.
"""

from __future__ import annotations

import gc
import sys
import threading
import time

COLLECTOR_THREAD_NAME = "gc-safe-points"
# How often the collector looks at the allocation counts: a request makes a few hundred
# cyclic objects, so even 300 requests a second leave well under one generation-0 threshold
# (700) of garbage per look, as automatic collection would.
CHECK_INTERVAL_SECONDS = 0.05
SAFE_POINT_COLLECTION_NEEDED = sys.version_info < (3, 12)

_lock = threading.Lock()
_collector: threading.Thread | None = None


def collect_at_safe_points(*, interval: float = CHECK_INTERVAL_SECONDS) -> bool:
    """Switch this process to safe-point collection (once; later calls change nothing).
    Returns whether the collector thread runs: never on Python 3.12 and later, which
    collects at safe points already."""
    global _collector
    if not SAFE_POINT_COLLECTION_NEEDED:
        return False
    with _lock:
        if _collector is None or not _collector.is_alive():
            gc.disable()
            _collector = threading.Thread(
                target=_collect_forever, args=(interval,), name=COLLECTOR_THREAD_NAME, daemon=True
            )
            _collector.start()
    return True


def collector_running() -> bool:
    return _collector is not None and _collector.is_alive()


def _collect_forever(interval: float) -> None:
    while True:
        time.sleep(interval)
        collect_if_due()


def collect_if_due() -> int | None:
    """CPython's own schedule, read from the counts it keeps: generation 0 after threshold0
    net allocations, an older generation once the younger one was collected threshold1 or
    threshold2 times. Returns the generation collected, or None."""
    threshold0, threshold1, threshold2 = gc.get_threshold()
    count0, count1, count2 = gc.get_count()
    if threshold0 == 0 or count0 < threshold0:
        return None
    generation = 0
    if count1 >= threshold1:
        generation = 2 if count2 >= threshold2 else 1
    gc.collect(generation)
    return generation
