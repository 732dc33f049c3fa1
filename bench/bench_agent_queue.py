"""Benchmark of the agent queue page (`GET /b/{brand}/agent`) with ~1,200 active escalations
on PostgreSQL (issue 14).

Seeds the same forum as bench_qa.py (30,000 threads by default), then escalations as a busy
support team would have them: one visible thread in 25 has an active escalation (about 1,200:
60% open, 15% claimed, 10% answered, 10% waiting on the customer, 5% handed off; due times
from 3 hours ago to 13 hours ahead, so a good share is overdue; some held by the agent who is
signed in) and one thread in 5 a resolved one (the history a queue must not read). Then times
the page in-process (Starlette's TestClient, as bench_qa.py does): the whole page, its htmx
refresh, the "mine" and "overdue" tabs, a filter, and a later page. Prints the server time
(median, p90, max), the CPU time, the statements, the database time and the size of
each response.

    .venv/bin/python bench/bench_agent_queue.py                # about a minute on 2 cores
    .venv/bin/python bench/bench_agent_queue.py --explain      # and EXPLAIN ANALYZE each query
    .venv/bin/python bench/bench_agent_queue.py --keep         # keep the database; then
    .venv/bin/python bench/bench_agent_queue.py --reuse NAME   # time it again (migrated first)

To time another checkout's code (before a change), put it first on the path:
`PYTHONPATH=/path/to/checkout .venv/bin/python bench/bench_agent_queue.py`; the seeding fills
`escalations.queue_due_at` only where the schema has it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import bench_qa
import psycopg
from common import (
    DEFAULT_ADMIN_URL,
    PostgresDatabase,
    ServerTimer,
    calibrate,
    code_version,
    console,
    exit_cleanly_on_signals,
    percentile,
    run_main,
    throwaway_postgres,
    workspace,
)
from fastapi.testclient import TestClient
from rich.table import Table
from sqlalchemy.engine import make_url

from community.app import create_app
from community.core import migrate
from community.core.db import make_engine

# Derived from each thread's id, so a rerun makes the same rows. `:agent` is the id of the agent
# who signs in: one item in three that someone holds is theirs.
ESCALATIONS = """
UPDATE threads SET
  interaction_type = (ARRAY['question','problem','complaint','suggestion','praise'])[1 + id % 5],
  locale = CASE WHEN id % 7 = 0 THEN 'es' ELSE 'en' END
WHERE id % 25 = 3 OR id % 5 = 1;
WITH numbered AS (  -- n: the item's number among those escalated, what the mix follows
  SELECT t.id, t.id / 25 AS n, f.brand_id
  FROM threads t JOIN forums f ON f.id = t.forum_id
  WHERE t.visibility = 'visible' AND t.id % 25 = 3
), picked AS (
  SELECT id, n, brand_id,
         CASE WHEN n % 20 < 12 THEN 'open' WHEN n % 20 < 15 THEN 'claimed'
              WHEN n % 20 < 17 THEN 'answered' WHEN n % 20 < 19 THEN 'waiting'
              ELSE 'handed_off' END AS status,
         now() + make_interval(mins => ((n * 7) % 960 - 180)::int) AS due
  FROM numbered
)
INSERT INTO escalations (thread_id, brand_id, reason, priority, status, assigned_agent_id,
                         first_response_due_at, resolution_due_at, claimed_at,
                         first_response_at, waiting_since, paused_seconds, created_at,
                         updated_at)
SELECT id, brand_id, 'no_response', (ARRAY['P1','P2','P3','P4'])[1 + n % 4], status,
       CASE WHEN status = 'open' THEN NULL WHEN n % 3 = 0 THEN :agent
            ELSE (SELECT min(u.id) FROM users u WHERE u.role = 'agent') END,
       due, due + interval '1 day',
       CASE WHEN status = 'open' THEN NULL ELSE due - interval '1 hour' END,
       CASE WHEN status IN ('open', 'claimed') THEN NULL ELSE due - interval '30 minutes' END,
       CASE WHEN status = 'waiting' THEN now() - make_interval(mins => (n % 600)::int) END,
       CASE WHEN status IN ('answered', 'waiting') THEN (n % 5) * 600 ELSE 0 END,
       due - interval '4 hours', due - interval '4 hours'
FROM picked;
INSERT INTO escalations (thread_id, brand_id, reason, priority, status, first_response_due_at,
                         resolution_due_at, first_response_at, resolved_at, resolution,
                         paused_seconds, created_at, updated_at)
SELECT t.id, f.brand_id, 'no_response', (ARRAY['P1','P2','P3','P4'])[1 + t.id % 4],
       'resolved', t.created_at + interval '4 hours', t.created_at + interval '1 day',
       t.created_at + interval '2 hours', t.created_at + interval '6 hours', 'agent', 0,
       t.created_at, t.created_at + interval '6 hours'
FROM threads t JOIN forums f ON f.id = t.forum_id
WHERE t.id % 5 = 1;
"""
# The stored due time the queue reads in order (migration 0015), as the model computes it. The
# script also seeds code from before it (to time both), whose schema has no such column.
QUEUE_DUE = """
UPDATE escalations SET queue_due_at = CASE WHEN first_response_at IS NULL
  THEN first_response_due_at ELSE resolution_due_at + make_interval(secs => paused_seconds) END;
ALTER TABLE escalations ALTER COLUMN queue_due_at SET NOT NULL;
"""


@dataclass(frozen=True)
class Options:
    threads: int
    requests: int
    warmup: int
    database_url: str
    keep: bool
    reuse: str | None
    explain: bool


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=30_000, help="threads to seed (30000)")
    parser.add_argument("--requests", type=int, default=60, help="timed requests per case (60)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests first (5)")
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL, help="admin URL")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--reuse", metavar="NAME", help="time a database kept with --keep")
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE the statements of each case"
    )
    args = parser.parse_args(argv)
    if args.threads < 1_000 or args.requests < 1 or args.warmup < 0:
        parser.error("--threads must be at least 1000, --requests positive, --warmup >= 0")
    return Options(
        args.threads,
        args.requests,
        args.warmup,
        args.database_url,
        args.keep,
        args.reuse,
        args.explain,
    )


def seed(database: PostgresDatabase, options: Options) -> None:
    qa_options = bench_qa.parse_args(
        ["--threads", str(options.threads), "--database-url", options.database_url]
    )
    bench_qa.report_seed(bench_qa.seed(database, qa_options))
    with psycopg.connect(database.libpq_url, autocommit=True) as conn:
        stored_due = conn.execute(
            "SELECT 1 FROM information_schema.columns"
            " WHERE table_name = 'escalations' AND column_name = 'queue_due_at'"
        ).fetchone()
        if stored_due:
            conn.execute("ALTER TABLE escalations ALTER COLUMN queue_due_at DROP NOT NULL")
        conn.execute(ESCALATIONS.replace(":agent", str(_agent(conn)[0])))
        if stored_due:
            conn.execute(QUEUE_DUE)
        conn.execute("VACUUM (ANALYZE)")


def _agent(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[int, str, str]:
    """The agent who signs in (the last one, so not the one holding most items) and the brand."""
    row = conn.execute(
        "SELECT u.id, u.username, (SELECT slug FROM brands ORDER BY id LIMIT 1) FROM users u"
        " WHERE u.role = 'agent' ORDER BY u.id DESC LIMIT 1"
    ).fetchone()
    assert row is not None, "no agent: seed first"
    return int(str(row[0])), str(row[1]), str(row[2])


@dataclass
class Case:
    name: str
    params: dict[str, str]
    htmx: bool = False
    server_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    db_ms: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    kilobytes: float = 0.0
    rows: int = 0


def cases() -> list[Case]:
    return [
        Case("queue (all)", {}),
        Case("queue (all), htmx refresh", {}, htmx=True),
        Case("queue, mine", {"scope": "mine"}),
        Case("queue, overdue", {"scope": "breached"}),
        Case("queue, P1 in Spanish", {"priority": "P1", "language": "es"}),
        Case("queue (all), page 10", {"page": "10"}),
    ]


def measure(database: PostgresDatabase, options: Options) -> list[Case]:
    with psycopg.connect(database.libpq_url) as conn:
        counts = conn.execute(
            "SELECT count(*) FILTER (WHERE status NOT IN ('resolved', 'returned')), count(*)"
            " FROM escalations"
        ).fetchone()
        _agent_id, username, brand = _agent(conn)
    assert counts is not None
    console.print(f"{counts[0]:,} active escalations ({counts[1]:,} in all).")
    with workspace("bench_agent_queue_") as instance_dir:
        settings = bench_qa._settings(database, instance_dir)
        engine = make_engine(settings.sqlalchemy_url)
        meter = bench_qa.SqlMeter(engine)
        timer = ServerTimer(create_app(settings, engine=engine))
        with TestClient(timer, base_url="http://testserver") as client:
            token = bench_qa._csrf(client.get("/login"))
            signed_in = client.post(
                "/login",
                data={"login": username, "password": bench_qa.BENCH_PASSWORD, "csrf_token": token},
                follow_redirects=False,
            )
            if signed_in.status_code != 303:
                raise RuntimeError(f"login failed ({signed_in.status_code})")
            measured = cases()
            # Round by round, one request of each case, so that a change in the machine's load
            # (2 shared cores) weighs on every case alike.
            for number in range(options.warmup + options.requests):
                for case in measured:
                    headers = {"HX-Request": "true"} if case.htmx else {}
                    statements, seconds = meter.statements, meter.seconds
                    cpu = time.process_time()
                    response = client.get(f"/b/{brand}/agent", params=case.params, headers=headers)
                    cpu = time.process_time() - cpu
                    bench_qa._expect_ok(case.name, response)
                    if number >= options.warmup:
                        case.server_ms.append(timer.last * 1000)
                        case.cpu_ms.append(cpu * 1000)
                        case.db_ms.append((meter.seconds - seconds) * 1000)
                        case.statements.append(meter.statements - statements)
                    case.kilobytes = len(response.content) / 1024
                    case.rows = response.text.count('id="escalation-')
            for case in measured:
                headers = {"HX-Request": "true"} if case.htmx else {}
                if options.explain:
                    meter.captured = []
                    client.get(f"/b/{brand}/agent", params=case.params, headers=headers)
                    captured, meter.captured = meter.captured, None
                    bench_qa.explain(engine, case.name, captured)
        engine.dispose()
    return measured


def report(measured: list[Case], calibration: tuple[float, float]) -> None:
    table = Table(title="GET /b/{brand}/agent, server time in ms (warm-up excluded)")
    headings = ("case", "n", "median", "p90", "max", "CPU median", "DB median", "SQL", "rows", "KB")
    for heading in headings:
        table.add_column(heading, justify="left" if heading == "case" else "right")
    for case in measured:
        table.add_row(
            case.name,
            str(len(case.server_ms)),
            f"{statistics.median(case.server_ms):.1f}",
            f"{percentile(case.server_ms, 90):.1f}",
            f"{max(case.server_ms):.1f}",
            f"{statistics.median(case.cpu_ms):.1f}",
            f"{statistics.median(case.db_ms):.1f}",
            bench_qa._count(case.statements),
            str(case.rows),
            f"{case.kilobytes:.0f}",
        )
    console.print(table)
    console.print(
        "[dim]server = time inside the ASGI app (request in to last byte out); CPU = CPU time of "
        "this process per request (the app and the test client; less swayed than the server time "
        "by other processes on a shared machine); DB = time inside cursor.execute; SQL = "
        "statements per request; rows = queue rows on the page; KB = response size.[/dim]"
    )
    console.print(
        f"Machine speed check (lower is faster): {calibration[0]:.0f} ms before timing, "
        f"{calibration[1]:.0f} ms after; compare runs only when these are similar."
    )


@contextmanager
def database_for(options: Options) -> Iterator[PostgresDatabase]:
    if options.reuse:
        yield PostgresDatabase(name=options.reuse, admin=make_url(options.database_url))
        return
    with throwaway_postgres(
        options.database_url,
        "bench_agentq",
        keep=options.keep,
        kept_hint="time it again: bench/bench_agent_queue.py --reuse {name}",
    ) as database:
        yield database


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    exit_cleanly_on_signals()
    with database_for(options) as database:
        if options.reuse:
            migrate.upgrade(database.sqlalchemy_url)  # a kept database follows the code's schema
        else:
            started = time.perf_counter()
            seed(database, options)
            console.print(f"Seeded in {time.perf_counter() - started:.0f} s.")
        console.print(f"Timing the code at {code_version()}.")
        before = calibrate()
        measured = measure(database, options)
        report(measured, (before, calibrate()))
    return 0


if __name__ == "__main__":
    run_main(main)
