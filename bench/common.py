"""What the benchmarks share: the console, a throwaway PostgreSQL database, a temporary working
folder, a Meilisearch started for the run, the app's settings, timing and machine-load helpers,
and a clean exit on Ctrl-C or SIGTERM (the databases dropped, Meilisearch stopped).

The scripts import it as `common` (Python puts the script's folder, bench/, on the path).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import httpx
import psycopg
from psycopg import sql
from rich.console import Console
from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, make_url
from starlette.types import ASGIApp, Receive, Scope, Send

from community.core import meili
from community.core.settings import Settings, normalise_database_url

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# Piped output (a log, CI) gets a table wide enough to read instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 150)


# --- the throwaway PostgreSQL database -------------------------------------------------------


@dataclass(frozen=True)
class PostgresDatabase:
    name: str
    admin: URL  # the server's admin URL: where the database is created and dropped

    @property
    def libpq_url(self) -> str:
        url = self.admin.set(drivername="postgresql", database=self.name)
        return url.render_as_string(hide_password=False)

    @property
    def sqlalchemy_url(self) -> str:
        return normalise_database_url(self.libpq_url)

    @property
    def admin_libpq_url(self) -> str:
        return self.admin.set(drivername="postgresql").render_as_string(hide_password=False)

    def create(self) -> None:
        with psycopg.connect(self.admin_libpq_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def drop(self) -> None:
        with psycopg.connect(self.admin_libpq_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )


@contextmanager
def throwaway_postgres(
    admin_url: str, prefix: str, *, keep: bool = False, kept_hint: str = "", indent: str = ""
) -> Iterator[PostgresDatabase]:
    """A new empty database `<prefix>_<random>` on the server of `admin_url`, dropped at the end
    (also on an error, Ctrl-C or SIGTERM) unless `keep`; `kept_hint` is printed when kept, with
    `{name}` standing for the database's name."""
    database = PostgresDatabase(name=f"{prefix}_{uuid.uuid4().hex[:8]}", admin=make_url(admin_url))
    database.create()
    console.print(f"{indent}Created PostgreSQL database [bold]{database.name}[/bold].")
    try:
        yield database
    finally:
        if keep:
            console.print(f"{indent}Kept database {database.name}: {database.libpq_url}")
            if kept_hint:
                console.print(f"{indent}  {kept_hint.format(name=database.name)}")
        else:
            try:
                database.drop()
                console.print(f"{indent}Dropped database {database.name}.")
            except psycopg.Error as exc:
                # Reported, not raised: an error here would hide the run's own error.
                console.print(f"[red]{indent}Could not drop {database.name}: {exc}[/red]")


# --- a working folder and Meilisearch --------------------------------------------------------


@contextmanager
def workspace(prefix: str, *, keep: bool = False, kept_note: str = "") -> Iterator[Path]:
    """A new temporary folder, removed at the end unless `keep` (then its path is printed)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            console.print(f"Kept {path}{f' ({kept_note})' if kept_note else ''}.")
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def meilisearch_server(workdir: Path, *, note: str = "") -> Iterator[meili.MeiliServer]:
    """A Meilisearch of its own (data in `workdir`/meili, a random master key), stopped at the
    end. Its key is `server.master_key`."""
    key = "bench-master-key-" + uuid.uuid4().hex
    server = meili.start_server(meili.find_binary(), workdir / "meili", key)
    try:
        version = httpx.get(f"{server.url}/version", headers=meili_headers(server)).json()
        console.print(
            f"Meilisearch {version.get('pkgVersion', '?')} on {server.url}, "
            f"pid {server.process.pid}{f' ({note})' if note else ''}"
        )
        yield server
    finally:
        server.stop()


def meili_headers(server: meili.MeiliServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.master_key}"}


# --- the app's settings ----------------------------------------------------------------------


def bench_settings(
    database_url: str,
    instance_dir: Path,
    *,
    meili_url: str,
    timing_requests: bool = False,
    **overrides: Any,
) -> Settings:
    """Settings for the app under a benchmark: its own secret, warnings only, no embedded
    worker. With `timing_requests`, also what keeps in-process request timings honest."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "meili_url": meili_url,
        "instance_dir": instance_dir,
        "secret_key": "bench-" + uuid.uuid4().hex,
        "log_level": "WARNING",
        "embedded_worker": False,
        # In-process benchmarks ask as Starlette's TestClient does (Host: testserver); other
        # hosts get 400 (community/core/hosts.py).
        "allowed_hosts": "testserver",
    }
    if timing_requests:
        values |= {
            # Logging in is not what is timed: the cheapest password hashing.
            "argon2_time_cost": 1,
            "argon2_memory_kib": 8192,
            "argon2_parallelism": 1,
            # Keep the view counter's background flush out of the measured requests.
            "view_flush_seconds": 3600.0,
            # One member sends hundreds of requests a minute here, far past the per-member rate
            # limits (which would answer 429); real traffic is spread over many people.
            "rate_limits_enabled": False,
        }
    return Settings(**(values | overrides))


# --- timing ----------------------------------------------------------------------------------


class ServerTimer:
    """Outermost ASGI wrapper: the time from the request entering the app until the app has
    sent the last byte of the response (no HTTP client, no test-client thread hop)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last = 0.0
        self.window = (0.0, 0.0)  # perf_counter() at the start and end of the last request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            ended = time.perf_counter()
            self.last, self.window = ended - started, (started, ended)


class SqlMeter:
    """Counts statements and their database time on the app's engine (requests run one at a
    time, so the difference around a request is that request's). The benchmarks extend it."""

    def __init__(self, engine: Engine) -> None:
        self.statements = 0
        self.seconds = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(
        self, conn: Any, _cursor: Any, _statement: str, _parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        self.statements += 1
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, *_args: Any) -> None:
        started = conn.info.pop("bench_started", None)
        if started is not None:
            self.seconds += time.perf_counter() - started


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 500 samples is the 495th fastest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def calibrate() -> float:
    """Milliseconds for a fixed pure-Python loop (best of 5): how fast this machine runs Python
    right now. Virtual machines vary by up to 2x from minute to minute; compare runs only when
    this figure is similar."""
    best = math.inf
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for number in range(300_000):
            total += number % 7
        best = min(best, time.perf_counter() - started)
    return best * 1000


# --- the machine -----------------------------------------------------------------------------


def cpu_counters() -> tuple[int, int] | None:
    """(total, idle) jiffies of the whole machine from /proc/stat (None off Linux)."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split()[1:9]]
    except (OSError, ValueError):
        return None
    return sum(fields), fields[3] + fields[4]


def busy_cpus(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """CPUs the whole machine kept busy on average between two cpu_counters() readings."""
    if before is None or after is None or after[0] == before[0]:
        return None
    total, idle = after[0] - before[0], after[1] - before[1]
    return (total - idle) / total * (os.cpu_count() or 1)


def code_version() -> str:
    """The commit being measured, and whether the working tree differs from it."""
    git = shutil.which("git")
    if git is None:
        return "unknown"

    def run(*args: str) -> str:
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [git, "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    commit = run("rev-parse", "--short", "HEAD") or "unknown"
    changed = [
        line
        for line in run("status", "--porcelain", "--untracked-files=no").splitlines()
        if line.strip()
    ]
    return f"{commit} + {len(changed)} uncommitted file(s)" if changed else commit


# --- starting and stopping -------------------------------------------------------------------


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    # SystemExit unwinds through the finally blocks: databases dropped, Meilisearch stopped.
    raise SystemExit(128 + signum)


def exit_cleanly_on_signals() -> None:
    signal.signal(signal.SIGTERM, _raise_exit)
    # Ctrl-C raises KeyboardInterrupt even when started in the background (where it is ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_main(main: Callable[[], int]) -> NoReturn:
    """Exit with what `main` returns; Ctrl-C says so and exits with 130."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        console.print("[red]Interrupted.[/red]")
        sys.exit(130)
