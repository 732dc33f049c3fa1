"""`community serve --workers N`: the production web server (docs/serving.md).

N uvicorn processes (httptools, the standard asyncio loop) under uvicorn's own supervisor, which
restarts a process that dies or hangs and stops them all gracefully on SIGTERM or SIGINT. No
embedded worker and no managed Meilisearch: `community worker` processes run beside, and
MEILI_URL names the server.

Each web process listens on a socket of its own on the port (SO_REUSEPORT, TCP_NODELAY:
community.core.listeners), so connections spread over the processes and a kept-alive one does
not wait 40 ms for a delayed ACK per response, as they did under `uvicorn --workers`. The
processes share a table of their open connections, and one holding more than its share closes
one after its response (community.core.balanced_http), so that a few kept-alive clients do not
pile onto one process.

Beside them runs one model server (kb/model_server.py) on a Unix socket in a private directory,
restarted if it dies: the web processes ask it for query vectors and language guesses instead of
each loading ~250 MB of models (MODEL_SERVER names another, or "off" keeps them in-process).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import typer
import uvicorn
from sqlalchemy import text
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from community.cli.terminal import CommandError, console
from community.core import connection_table, listeners
from community.core.db import make_engine
from community.core.logs import configure_logging, uvicorn_log_config
from community.core.settings import Settings

logger = logging.getLogger(__name__)

# prometheus-client's multiprocess mode: every web process writes its counters here and /metrics
# adds them up (community/core/metrics.py).
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A request still running when the server is asked to stop gets this long to finish.
GRACEFUL_SHUTDOWN_SECONDS = 30
# The supervisor restarts a web process that does not answer its ping within this. A process
# answers once it has imported the site (multiprocessing re-imports the `community` script in
# each one first): 1.5 s when idle, 16 s measured on this 2-core machine at a load of 17.
HEALTHCHECK_SECONDS = 60
MODEL_SERVER_ENV = "MODEL_SERVER"
MALLOC_ARENAS_ENV = "MALLOC_ARENA_MAX"
# A model server that died is started again after this long (not in a tight loop if it keeps
# failing: the web processes fall back meanwhile).
MODEL_SERVER_RESTART_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


def server_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """What every web process is configured with, one process or many."""
    return {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        "log_config": uvicorn_log_config(settings),
        "proxy_headers": bool(settings.trusted_proxy_list),
        "forwarded_allow_ips": settings.trusted_proxy_list or None,
        "server_header": False,
    }


def serve_processes(settings: Settings, host: str, port: int, workers: int) -> None:
    """Run `workers` web processes on host:port until SIGTERM or SIGINT."""
    if settings.uses_managed_meili:
        console.print(
            "[bold red]error:[/] --workers needs MEILI_URL (and a key): production web processes "
            "use a Meilisearch server of their own, not a managed one",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=2)
    configure_logging(settings)  # the supervisor's own lines, as the web processes print theirs
    # glibc gives each thread that allocates an arena of its own (up to 8 per core), and a web
    # process's request threads kept ~15 MB more resident that way over a 10-minute soak (198
    # MB against 182, docs/performance.md, "The fifth run"). Python's own allocator serves the
    # small objects under the GIL, so two arenas cost no measurable contention. Read by glibc
    # when each process starts: the web processes (and the model server) inherit it.
    os.environ.setdefault(MALLOC_ARENAS_ENV, "2")
    _check_database(settings)
    # Made once here: N processes starting at once would each try to create it.
    settings.effective_secret_key  # noqa: B018
    config = uvicorn.Config(
        "community.app:create_app",
        factory=True,
        workers=workers,
        # Not uvloop: under wrk at c=8 on the thread page, uvloop 0.23 crashed a web process
        # (SIGSEGV in libpython) within 40 s, while SQLAlchemy ran in the request threads; with
        # asyncio the same load ran 80 s without a crash, at 3x the throughput
        # (docs/performance.md). TCP_NODELAY comes from our own listeners either way.
        loop="asyncio",
        http="community.core.balanced_http:BalancedHttpToolsProtocol",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
        **server_options(settings, host, port),
    )
    with (
        _reserve_port(host, port) as reservation,
        _metrics_directory(),
        _connection_table(),
        _model_server(settings),
    ):
        console.print(
            f"serving on http://{host}:{port} with {workers} web processes; "
            "run `community worker` beside them (SIGTERM or Ctrl-C to stop)"
        )
        supervisor = Multiprocess(config, sockets=[reservation])
        supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        raise CommandError("a web process failed to start (its error is above)")


def _check_database(settings: Settings) -> None:
    """Fail here, once, rather than in every web process in turn."""
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@contextlib.contextmanager
def _reserve_port(host: str, port: int) -> Iterator[socket.socket]:
    family = _family(host)
    # SO_REUSEPORT would let us share the port with anything else of this user that set it
    # too (a second `community serve --workers` by mistake): a plain bind says if it is taken.
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
        reservation = listeners.bind(family, host, port, listeners.PortReservation)
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    try:
        yield reservation
    finally:
        reservation.close()


@contextlib.contextmanager
def _connection_table() -> Iterator[None]:
    """This run's table of open connections per web process, in a directory of its own."""
    directory = tempfile.mkdtemp(prefix="community-connections-")
    path = os.path.join(directory, "connections")
    connection_table.create(path)
    os.environ[connection_table.TABLE_ENV] = path  # the web processes inherit it
    try:
        yield
    finally:
        del os.environ[connection_table.TABLE_ENV]
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _metrics_directory() -> Iterator[None]:
    """A fresh directory for this run's metrics unless the operator chose one: files a previous
    run left would be added into this run's counters."""
    if os.environ.get(METRICS_DIR_ENV):
        yield
        return
    path = tempfile.mkdtemp(prefix="community-metrics-")
    os.environ[METRICS_DIR_ENV] = path  # the web processes inherit it
    try:
        yield
    finally:
        del os.environ[METRICS_DIR_ENV]
        shutil.rmtree(path, ignore_errors=True)


class ModelServerChild:
    """The model server beside the web processes: started again if it dies, stopped with them."""

    def __init__(self, socket_path: str) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "community.cli",
            "model-server",
            "--socket",
            socket_path,
            "--parent-pid",
            str(os.getpid()),
        ]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        # The child dies with the thread that started it (PR_SET_PDEATHSIG): this one lives
        # until stop().
        self._thread = threading.Thread(target=self._keep_running, name="model-server")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._thread.start()

    def _keep_running(self) -> None:
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = subprocess.Popen(self.argv)  # noqa: S603 - our own command
            code = self._process.wait()
            if self._stopping.wait(MODEL_SERVER_RESTART_SECONDS):
                return
            logger.warning("the model server exited with %s; starting it again", code)

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        self._thread.join(timeout=timeout)


@contextlib.contextmanager
def _model_server(settings: Settings) -> Iterator[None]:
    """One model server for this run's web processes, unless MODEL_SERVER names one (or is
    "off"). Its socket is in a directory only this user can enter."""
    if settings.model_server:
        yield
        return
    directory = tempfile.mkdtemp(prefix="community-models-")
    path = os.path.join(directory, "models.sock")
    child = ModelServerChild(path)
    child.start()
    os.environ[MODEL_SERVER_ENV] = path  # the web processes inherit it
    try:
        yield
    finally:
        del os.environ[MODEL_SERVER_ENV]
        child.stop()
        shutil.rmtree(directory, ignore_errors=True)


def die_with_parent(parent_pid: int) -> None:
    """This process gets SIGTERM when the one that started it dies (and exits now if it
    already has): a killed supervisor leaves nothing of its own running."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        sys.exit(1)
