"""In-process cost of the two writes of issue 14: a vote (htmx) and a new answer.

Seeds bench_serving's forum on a throwaway PostgreSQL database (or reuses one), signs in the
member bench_serving votes and answers as, then sends a few hundred votes (a different post
each time, not voted on by the member before) and new answers (random open threads) through the
app in-process (Starlette's TestClient, no web server). Per write it prints the server time
(p50/p90/p99/max), this process's CPU time (the app and the test client), the database time
(the statements' round trips as the app sees them), the SQL statements and round trips (BEGIN,
COMMIT and pool pings included), and with --statements each statement of one write with its
time. On a busy machine the times move with the load; the CPU time and the counts move less.

    .venv/bin/python bench/bench_writes.py                       # 20,000 threads, 300 of each
    .venv/bin/python bench/bench_writes.py --reuse NAME --writes 500
    .venv/bin/python bench/bench_writes.py --calls                # Python calls instead of times
    PYTHONPATH=../other-checkout .venv/bin/python bench/bench_writes.py ...  # another version

One request at a time: what one write costs, not how writes queue behind each other (that is
bench_serving's wrk run). The worker is not running, so outbox rows wait as they would behind
a busy worker.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bench_qa
import serving_setup
from common import (
    DEFAULT_ADMIN_URL,
    PostgresDatabase,
    ServerTimer,
    bench_settings,
    calibrate,
    console,
    exit_cleanly_on_signals,
    percentile,
    run_main,
    throwaway_postgres,
    workspace,
)
from fastapi.testclient import TestClient
from rich.table import Table
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import community
from community.app import create_app
from community.core import migrate
from community.core.db import make_engine

if TYPE_CHECKING:
    from httpx2 import Response

CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')
ANSWER = (
    "Benchmark answer {n}-{salt}: restart the phone after changing the APN, then check the "
    "signal bars again."
)


@dataclass(frozen=True)
class Options:
    threads: int
    writes: int
    warmup: int
    database_url: str
    reuse: str | None
    keep: bool
    statements: bool
    calls: bool


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=20_000, help="threads to seed (20000)")
    parser.add_argument("--writes", type=int, default=300, help="measured writes of each (300)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured writes first (20)")
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--reuse", metavar="NAME", help="an existing seeded database (kept)")
    parser.add_argument("--keep", action="store_true", help="keep the seeded database")
    parser.add_argument(
        "--statements", action="store_true", help="list the statements of one vote and one answer"
    )
    parser.add_argument(
        "--calls",
        action="store_true",
        help="count the Python function calls of each write (deterministic, unlike times on a "
        "shared machine; the count slows the writes, so their times are not shown)",
    )
    args = parser.parse_args(argv)
    return Options(
        threads=args.threads,
        writes=args.writes,
        warmup=args.warmup,
        database_url=args.database_url,
        reuse=args.reuse,
        keep=args.keep,
        statements=args.statements,
        calls=args.calls,
    )


class Meter(bench_qa.SqlMeter):
    """bench_qa's meter (statements, database time, round trips), also keeping the statements
    of the current write with their times when asked."""

    def __init__(self, engine: Engine) -> None:
        self.log: list[tuple[float, str]] | None = None
        super().__init__(engine)
        event.listen(engine, "after_cursor_execute", self._logged)

    def _logged(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.log is not None:
            self.log.append((time.perf_counter(), " ".join(statement.split())))


@dataclass
class Result:
    name: str
    server_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    db_ms: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    round_trips: list[int] = field(default_factory=list)
    listing: list[tuple[float, str]] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)


class CallCounter:
    """Python and C function calls made by the app's threads (the server side: the event loop's
    thread and the worker threads, which start after `install`; the client runs in the main
    thread, which is not counted)."""

    def __init__(self) -> None:
        self.count = 0

    def _profile(self, _frame: Any, event: str, _arg: Any) -> None:
        if event in ("call", "c_call"):
            self.count += 1

    def install(self) -> None:
        threading.setprofile(self._profile)

    def remove(self) -> None:
        threading.setprofile(None)


@dataclass(frozen=True)
class Fixture:
    member: str
    vote_posts: list[int]
    answer_threads: list[int]


def load_fixture(engine: Engine, wanted: int) -> Fixture:
    """bench_serving's choices: its member, posts they never voted on, random open threads."""
    with Session(engine) as db:
        member = db.execute(
            text(
                "SELECT id, username FROM users WHERE role = 'member' AND deactivated_at IS NULL "
                "ORDER BY trust_level DESC, reputation DESC, id LIMIT 1"
            )
        ).one()
        vote_posts = db.scalars(
            text(
                "SELECT p.id FROM posts p JOIN threads t ON t.id = p.thread_id "
                "WHERE t.visibility = 'visible' AND t.locked_at IS NULL "
                "AND p.visibility = 'visible' AND p.author_id <> :member "
                "AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.post_id = p.id "
                "AND v.user_id = :member) ORDER BY random() LIMIT :wanted"
            ),
            {"member": member.id, "wanted": wanted},
        )
        threads = db.scalars(
            text(
                "SELECT id FROM threads t WHERE t.visibility = 'visible' AND t.locked_at IS NULL "
                "ORDER BY random() LIMIT :wanted"
            ),
            {"wanted": wanted},
        )
        return Fixture(member.username, list(vote_posts), list(threads))


def measure(database: PostgresDatabase, options: Options) -> list[Result]:
    with workspace("bench_writes_") as instance_dir:
        settings = bench_settings(
            database.sqlalchemy_url,
            instance_dir,
            # Writes only record search work in the outbox; nothing here talks to Meilisearch.
            meili_url="http://127.0.0.1:9",
            timing_requests=True,
        )
        engine = make_engine(settings.sqlalchemy_url)
        fixture = load_fixture(engine, options.warmup + options.writes + 1)
        meter = Meter(engine)
        timer = ServerTimer(create_app(settings, engine=engine))
        counter = CallCounter() if options.calls else None
        if counter is not None:
            counter.install()  # before the client starts the app's threads
        with TestClient(timer, base_url="http://testserver") as client:
            token = bench_qa._csrf(client.get("/login"))
            signed_in = client.post(
                "/login",
                data={"login": fixture.member, "password": bench_qa.BENCH_PASSWORD,
                      "csrf_token": token},
                follow_redirects=False,
            )  # fmt: skip
            if signed_in.status_code != 303:
                raise RuntimeError(f"login as {fixture.member} answered {signed_in.status_code}")
            token = bench_qa._csrf(client.get(f"/t/{fixture.answer_threads[0]}"))
            salt = random.Random().getrandbits(32)

            def vote(number: int) -> Response:
                post_id = fixture.vote_posts[number]
                return client.post(
                    f"/posts/{post_id}/vote",
                    data={"value": "1"},
                    headers={"HX-Request": "true", "X-CSRF-Token": token},
                )

            def answer(number: int) -> Response:
                return client.post(
                    f"/t/{fixture.answer_threads[number]}/answers",
                    data={"body": ANSWER.format(n=number, salt=salt)},
                    headers={"X-CSRF-Token": token},
                    follow_redirects=False,
                )

            results = [
                _run("vote (htmx)", vote, 200, timer, meter, options, counter),
                _run("new answer", answer, 303, timer, meter, options, counter),
            ]
        if counter is not None:
            counter.remove()
        engine.dispose()
    return results


def _run(
    name: str,
    request: Callable[[int], Response],
    status: int,
    timer: ServerTimer,
    meter: Meter,
    options: Options,
    counter: CallCounter | None = None,
) -> Result:
    result = Result(name)
    for number in range(options.warmup + options.writes + 1):
        last = number == options.warmup + options.writes
        statements, seconds, trips = meter.statements, meter.seconds, meter.round_trips
        meter.log = [] if last else None
        calls = counter.count if counter is not None else 0
        started, cpu = time.perf_counter(), time.process_time()
        response = request(number)
        cpu = time.process_time() - cpu
        if response.status_code != status:
            raise RuntimeError(f"{name}: answered {response.status_code}: {response.text[:300]}")
        if last:  # one more, for the listing only
            times = [started] + [at for at, _ in meter.log or []]
            result.listing = [
                ((at - before) * 1000, sql)
                for (at, sql), before in zip(meter.log or [], times, strict=False)
            ]
            meter.log = None
        elif number >= options.warmup:
            result.server_ms.append(timer.last * 1000)
            result.cpu_ms.append(cpu * 1000)
            result.db_ms.append((meter.seconds - seconds) * 1000)
            result.statements.append(meter.statements - statements)
            result.round_trips.append(meter.round_trips - trips)
            if counter is not None:
                result.calls.append(counter.count - calls)
    return result


def report(results: list[Result], options: Options) -> None:
    if options.calls:
        calls = Table(title=f"Python function calls per write, server side ({options.writes} each)")
        for heading in ("write", "p50", "min", "max", "SQL"):
            calls.add_column(heading, justify="left" if heading == "write" else "right")
        for result in results:
            calls.add_row(
                result.name,
                *(f"{value:,}" for value in (int(statistics.median(result.calls)),
                                             min(result.calls), max(result.calls))),
                bench_qa._count(result.statements),
            )  # fmt: skip
        console.print(calls)
        return
    table = Table(title=f"In-process server time per write, ms ({options.writes} each)")
    table.add_column("write")
    for heading in ("p50", "p90", "p99", "max", "CPU p50", "DB p50", "SQL", "round trips"):
        table.add_column(heading, justify="right")
    for result in results:
        server = result.server_ms
        table.add_row(
            result.name,
            *(f"{value:.1f}" for value in (statistics.median(server), percentile(server, 90),
                                           percentile(server, 99), max(server),
                                           statistics.median(result.cpu_ms),
                                           statistics.median(result.db_ms))),
            bench_qa._count(result.statements),
            bench_qa._count(result.round_trips),
        )  # fmt: skip
    console.print(table)
    if options.statements:
        for result in results:
            console.rule(f"{result.name}: one write, {len(result.listing)} statements")
            console.print("  (ms since the previous statement ended or the request began)")
            for number, (ms, sql) in enumerate(result.listing, 1):
                console.print(
                    f"{number:>3}. {ms:6.2f}  {sql[:100]}",
                    highlight=False,
                    markup=False,
                    soft_wrap=True,
                )


def measured_code() -> str:
    """Which checkout's `community` is measured (PYTHONPATH may name another) and its commit."""
    folder = Path(community.__file__).resolve().parent.parent
    commit = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        ["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{folder} at {commit or 'unknown'}"


@contextmanager
def database_for(options: Options) -> Iterator[PostgresDatabase]:
    if options.reuse:
        yield PostgresDatabase(name=options.reuse, admin=make_url(options.database_url))
        return
    with throwaway_postgres(
        options.database_url,
        "bench_writes",
        keep=options.keep,
        kept_hint="time it again: bench/bench_writes.py --reuse {name}",
    ) as database:
        console.print(f"Seeding {options.threads:,} threads (bench_serving's forum)...")
        serving_setup.seed(database, options.threads, options.database_url)
        yield database


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    exit_cleanly_on_signals()
    with database_for(options) as database:
        if options.reuse:
            migrate.upgrade(database.sqlalchemy_url)
        console.print(f"Timing {measured_code()}; Python speed {calibrate():.1f} ms (calibrate)")
        report(measure(database, options), options)
    return 0


if __name__ == "__main__":
    run_main(main)
