"""Admission control: at most N requests inside the app at once, the rest wait in line.

Why: every request holds a database connection from its first query until its session closes,
and closing it (the end of a `yield` dependency) needs a thread from the shared pool. Without a
bound, a burst fills the thread pool with requests waiting for a connection while the requests
holding the connections wait for a thread: the site stalls until the pool times out, then
answers 500. Admitting no more requests than the connection pool can serve (see
`community.core.db.pool_sizes`) makes that wait impossible. Requests beyond the bound queue in
arrival order; one that waits longer than `request_queue_seconds`, or arrives when the line is
already `request_queue_limit` long, gets a quick 503 with Retry-After instead of hanging.

Static files and the liveness probe do not touch the database and are never queued.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

_UNQUEUED_PREFIXES = ("/static/", "/healthz")

# Sends a 503 for the given scope with a Retry-After in seconds.
Refuse = Callable[[Scope, Send, int], Awaitable[None]]


class AdmissionControl:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        queue_limit: int,
        queue_seconds: float,
        refuse: Refuse,
    ) -> None:
        self.app = app
        self.limit = limit
        self.queue_limit = queue_limit
        self.queue_seconds = queue_seconds
        self.refuse = refuse
        self.retry_after = max(1, math.ceil(queue_seconds / 2))
        # Created on first use: an anyio semaphore belongs to the running event loop.
        self._slots: anyio.Semaphore | None = None
        self.waiting = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_UNQUEUED_PREFIXES):
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = anyio.Semaphore(self.limit, fast_acquire=True)
        slots = self._slots
        if not await self._wait_for_slot(slots):
            self.refused += 1
            await self.refuse(scope, send, self.retry_after)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            slots.release()

    async def _wait_for_slot(self, slots: anyio.Semaphore) -> bool:
        if slots.value > 0:
            await slots.acquire()
            return True
        if self.waiting >= self.queue_limit:
            return False
        self.waiting += 1
        try:
            with anyio.move_on_after(self.queue_seconds):
                await slots.acquire()
                return True
            return False
        finally:
            self.waiting -= 1
