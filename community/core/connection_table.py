"""How many connections each web process of `community serve --workers N` holds, in a small
table every process of the run shares, so that one holding more than its share can hand one
back (community.core.balanced_http; docs/serving.md, "Connections shared out").

Each web process listens on a socket of its own (SO_REUSEPORT) and the kernel picks the process
for a new connection by a hash of its addresses. A kept-alive connection then stays where it
landed: a few long-lived clients (a proxy's pool of upstream connections, a load generator, a
browser's six connections) can pile onto one process while another idles. With 8 connections
over 2 processes the split was an even 4/4 in 27% of runs, and the busier process's queue set
the p99 (docs/performance.md, "The seventh run").

The table is a file of `MAX_PROCESSES` slots of (pid, open connections), mapped into each
process. A process claims a slot as it starts with a lock on that slot's first byte, so the
kernel frees the slot of a process that dies however it dies; the next process to start takes it
over. Kept to the standard library: it is claimed while a web process starts, before its app.
"""

from __future__ import annotations

import atexit
import fcntl
import math
import mmap
import os
import struct

TABLE_ENV = "COMMUNITY_CONNECTION_TABLE"
# `community serve --workers` takes at most this many.
MAX_PROCESSES = 64
_SLOT = struct.Struct("=qq")  # pid (0: free), open connections
_TABLE = struct.Struct(f"={2 * MAX_PROCESSES}q")


def create(path: str) -> None:
    """An empty table (the supervisor makes it before it starts any web process)."""
    with open(path, "wb") as table:
        table.write(bytes(_TABLE.size))


class ConnectionTable:
    """This process's slot in the run's table, and what it reads of the others'."""

    def __init__(self, path: str) -> None:
        # Kept open for the process's life: closing any descriptor of the file would drop
        # every lock this process holds on it (POSIX record locks).
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, _TABLE.size)
        self.slot = self._claim()
        self.held = 0

    def _claim(self) -> int:
        for slot in range(MAX_PROCESSES):
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, slot * _SLOT.size)
            except OSError:
                continue  # a live process holds it
            _SLOT.pack_into(self._map, slot * _SLOT.size, os.getpid(), 0)
            return slot
        raise RuntimeError(f"more than {MAX_PROCESSES} web processes share a connection table")

    def opened(self) -> None:
        self.held += 1
        self._publish()

    def closed(self) -> None:
        self.held -= 1
        self._publish()

    def _publish(self) -> None:
        _SLOT.pack_into(self._map, self.slot * _SLOT.size, os.getpid(), self.held)

    def over_share(self) -> bool:
        """Whether this process holds more than ceil(all open connections / processes)."""
        if not self._over_share():
            return False
        # Before acting on it (rarely: it closes a connection), count live processes only: one
        # killed outright left its slot behind, and its connections died with it.
        return self._over_share() if self._clear_dead_slots() else True

    def _over_share(self) -> bool:
        values = _TABLE.unpack_from(self._map)
        processes = total = 0
        for pid, held in zip(values[0::2], values[1::2], strict=True):
            if pid:
                processes += 1
                total += held
        return processes > 1 and self.held > math.ceil(total / processes)

    def _clear_dead_slots(self) -> bool:
        cleared = False
        for slot in range(MAX_PROCESSES):
            if slot == self.slot or not _SLOT.unpack_from(self._map, slot * _SLOT.size)[0]:
                continue
            offset = slot * _SLOT.size
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
            except OSError:
                continue  # its process lives
            _SLOT.pack_into(self._map, offset, 0, 0)
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, offset)
            cleared = True
        return cleared

    def leave(self) -> None:
        _SLOT.pack_into(self._map, self.slot * _SLOT.size, 0, 0)


_joined: ConnectionTable | None = None


def join_from_environment() -> None:
    """Claim this web process's slot when its supervisor made a table (TABLE_ENV)."""
    global _joined
    path = os.environ.get(TABLE_ENV)
    if path and _joined is None:
        _joined = ConnectionTable(path)
        atexit.register(_joined.leave)


def joined() -> ConnectionTable | None:
    return _joined
