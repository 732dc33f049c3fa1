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
from dataclasses import dataclass

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


@dataclass
class _LongLived:
    """CPython's count of the objects in the oldest generation: how many survived the last
    full collection, and how many the generation-1 collections have moved there since."""

    total: int = 0
    pending: int = 0


_long_lived = _LongLived()
_schedule_lock = threading.Lock()


def collect_if_due() -> int | None:
    """CPython's own schedule (gc_collect_generations in Modules/gcmodule.c), read from the
    counts it keeps: generation 0 once more than threshold0 net allocations were made, an
    older generation once the younger one was collected more than its threshold times. A full
    collection also waits until the objects moved into the oldest generation since the last
    one are a quarter of those that survived it, as CPython's does: scanning the whole heap
    every ten generation-1 collections costs a big process (the loaded models, the mapped
    classes, the compiled templates) time in proportion to its size. Returns the generation
    collected, or None."""
    threshold0, threshold1, threshold2 = gc.get_threshold()
    with _schedule_lock:
        count0, count1, count2 = gc.get_count()
        if threshold0 == 0 or count0 <= threshold0:
            return None
        if count2 > threshold2 and _long_lived.pending >= _long_lived.total // 4:
            generation = 2
        elif count1 > threshold1:
            generation = 1
        else:
            generation = 0
        _collect(generation)
        return generation


def _collect(generation: int) -> None:
    """gc.collect(generation), keeping the count of long-lived objects the schedule reads."""
    if generation == 2:
        gc.collect(2)
        _long_lived.total = len(gc.get_objects(generation=2))
        _long_lived.pending = 0
    elif generation == 1:
        young = len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))
        unreachable = gc.collect(1)
        _long_lived.pending += max(young - unreachable, 0)
    else:
        gc.collect(0)
