"""Listening sockets for the production web processes (community.cli.serving): one per process
on the same port with SO_REUSEPORT, so the kernel spreads connections over the processes, and
TCP_NODELAY, so a response written in pieces is not held back by Nagle (docs/serving.md).

Kept to the standard library: each web process unpickles its listener before anything else,
ahead of the supervisor's first health check, so importing this module must cost nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable

from community.core import connection_table

# uvicorn's exit code for "failed before serving": its supervisor then stops instead of
# restarting the process forever (uvicorn.config.STARTUP_FAILURE, not imported: see above).
STARTUP_FAILURE = 3
_PR_SET_PDEATHSIG = 1

logger = logging.getLogger("uvicorn.error")


def bind(
    family: int, host: str, port: int, kind: type[socket.socket] = socket.socket
) -> socket.socket:
    # proto IPPROTO_TCP, not 0: asyncio switches Nagle off only on sockets created with it.
    sock = kind(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # Linux copies it onto every socket accepted from this one, whichever event loop accepts.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class PortReservation(socket.socket):
    """The supervisor's hold on the port: bound with SO_REUSEPORT but never listening, so the
    kernel hands it no connection. Sent to a web process (multiprocessing pickles the sockets it
    passes to every process the supervisor starts or restarts), it arrives as a listening socket
    of that process's own on the same port (see __reduce__)."""

    def __reduce__(self) -> tuple[Callable[..., socket.socket], tuple[int, str, int, int]]:
        host, port = self.getsockname()[:2]
        return listen_in_web_process, (self.family, host, port, os.getpid())


def listen_in_web_process(family: int, host: str, port: int, supervisor_pid: int) -> socket.socket:
    """Runs in each web process as it starts: the process ends with its supervisor (a killed
    supervisor must not leave processes serving old code on the port beside its successor's),
    gets its own socket on the port and its slot in the run's connection table."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor_pid:  # it died before prctl took effect
        sys.exit(STARTUP_FAILURE)
    try:
        listener = bind(family, host, port)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", host, port, exc.strerror)
        sys.exit(STARTUP_FAILURE)
    # Counted among the run's processes before its first connection, so that the others
    # know their share.
    connection_table.join_from_environment()
    return listener
