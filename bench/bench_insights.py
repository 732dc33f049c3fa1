"""Benchmark of the insights panels on PostgreSQL at real volume.

Seeds the same big forum as bench_qa.py (50,000 threads / 250,000 posts over three years by
default), adds what triage and the agents would have left (priorities, types, sentiments and
languages, first-response due times, escalations for one thread in twenty, most resolved,
SLA breaches for the late ones), then times each panel's service call
(crowdservice.insights.panels, as the page, the JSON API and the CSV export make it) for the
default period (the last 28 days) and for a year.
The self-service, content-gaps and deflection panels read searches, suggestion sessions and
article ratings, which this seed does not make: their figures time the queries on empty tables.
Prints the median, p90 and max of each.

    .venv/bin/python bench/bench_insights.py                  # full size (about a minute)
    .venv/bin/python bench/bench_insights.py --threads 2000   # smoke test
    .venv/bin/python bench/bench_insights.py --reuse NAME     # a database kept with --keep

See bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import bench_qa
import psycopg
from common import (
    DEFAULT_ADMIN_URL,
    PostgresDatabase,
    console,
    exit_cleanly_on_signals,
    percentile,
    run_main,
    throwaway_postgres,
)
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.engine import make_url

from community.core.clock import utcnow
from community.core.db import make_engine, make_session_factory
from community.core.models import Brand
from crowdservice.insights.panels import PANELS
from crowdservice.insights.period import insights_filter

# The target: each panel under this on PostgreSQL at 250,000 posts (issue 15).
TARGET_MS = 200

# Triage and escalations, derived from each thread's id so a rerun gives the same rows:
# priorities about 5% P1, 15% P2, 50% P3, 30% P4 with the default targets in minutes.
ENRICH = """
UPDATE threads SET
  priority = CASE WHEN id % 20 = 0 THEN 'P1' WHEN id % 20 < 4 THEN 'P2'
                  WHEN id % 20 < 14 THEN 'P3' ELSE 'P4' END,
  interaction_type = (ARRAY['question','problem','complaint','suggestion','praise',
                            'incorrect_info'])[1 + id % 6],
  sentiment = (ARRAY['negative','neutral','positive'])[1 + id % 3],
  locale = CASE WHEN id % 7 = 0 THEN 'es' ELSE 'en' END;
UPDATE threads SET first_response_due_at = created_at + make_interval(mins =>
  CASE priority WHEN 'P1' THEN 10 WHEN 'P2' THEN 15 WHEN 'P3' THEN 240 ELSE 1440 END);
INSERT INTO escalations (thread_id, brand_id, reason, priority, status, first_response_due_at,
                         resolution_due_at, queue_due_at, created_at, updated_at,
                         paused_seconds, resolved_at, resolution)
SELECT t.id, f.brand_id, 'no_response', t.priority,
       CASE WHEN t.id % 100 = 0 THEN 'open' ELSE 'resolved' END,
       t.first_response_due_at, t.first_response_due_at + interval '1 day',
       t.first_response_due_at, t.first_response_due_at, t.first_response_due_at,
       (t.id % 5) * 60,
       CASE WHEN t.id % 100 = 0 THEN NULL
            ELSE t.first_response_due_at + make_interval(mins => (30 + t.id % 600)::int) END,
       CASE WHEN t.id % 100 = 0 THEN NULL WHEN t.id % 3 = 0 THEN 'community' ELSE 'agent' END
FROM threads t JOIN forums f ON f.id = t.forum_id
WHERE t.id % 20 = 5;
INSERT INTO sla_breaches (escalation_id, kind, priority, due_at, recorded_at, met_at,
                          seconds_over)
SELECT e.id, 'first_response', e.priority, e.first_response_due_at,
       e.first_response_due_at + interval '1 minute', t.first_response_at,
       extract(epoch FROM t.first_response_at - e.first_response_due_at)::int
FROM escalations e JOIN threads t ON t.id = e.thread_id
WHERE t.first_response_at > e.first_response_due_at;
"""


@dataclass(frozen=True)
class Options:
    threads: int
    runs: int
    database_url: str
    keep: bool
    reuse: str | None


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=50_000, help="threads to seed (50000)")
    parser.add_argument("--runs", type=int, default=20, help="timed calls per panel (20)")
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL, help="admin URL")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--reuse", metavar="NAME", help="time an existing seeded database")
    args = parser.parse_args(argv)
    return Options(args.threads, max(1, args.runs), args.database_url, args.keep, args.reuse)


def seed(database: PostgresDatabase, options: Options) -> None:
    qa_options = bench_qa.parse_args(
        ["--threads", str(options.threads), "--database-url", options.database_url]
    )
    summary = bench_qa.seed(database, qa_options)
    started = time.perf_counter()
    with psycopg.connect(database.libpq_url, autocommit=True) as conn:
        conn.execute(ENRICH)
        conn.execute("VACUUM (ANALYZE)")
    console.print(
        f"seeded {summary.counts['threads']:,} threads, {summary.counts['posts']:,} posts in "
        f"{summary.seconds['total']:.0f} s; triage and escalations in "
        f"{time.perf_counter() - started:.1f} s"
    )


def measure(database: PostgresDatabase, options: Options) -> int:
    engine = make_engine(database.sqlalchemy_url)
    sessions = make_session_factory(engine)
    now = utcnow()
    with sessions() as db:
        brand = db.scalars(select(Brand)).first()
        assert brand is not None, "no brand: seed first"
        periods = {
            "last 28 days": insights_filter(now.date()),
            "last 365 days": insights_filter(now.date(), start=now.date() - timedelta(days=364)),
        }
        panels: dict[str, Callable[..., object]] = {
            name: functools.partial(
                lambda period, compute: compute(db, brand, period, now), compute=panel.compute
            )
            for name, panel in PANELS.items()
        }
        table = Table(title=f"insights panels, {options.runs} calls each (ms)")
        for column in ("panel", "period", "median", "p90", "max", f"under {TARGET_MS} ms"):
            table.add_column(column, justify="left" if column in ("panel", "period") else "right")
        slow = 0
        for name, panel in panels.items():
            for label, period in periods.items():
                panel(period)  # warm-up: plans and caches
                samples = []
                for _ in range(options.runs):
                    began = time.perf_counter()
                    panel(period)
                    samples.append((time.perf_counter() - began) * 1000)
                    db.rollback()
                p90 = percentile(samples, 90)
                slow += p90 > TARGET_MS
                median, worst = statistics.median(samples), max(samples)
                table.add_row(name, label, f"{median:.1f}", f"{p90:.1f}", f"{worst:.1f}",
                              "yes" if p90 <= TARGET_MS else "NO")  # fmt: skip
        console.print(table)
    engine.dispose()
    return 1 if slow else 0


def main() -> int:
    exit_cleanly_on_signals()
    options = parse_args(None)
    if options.reuse:
        database = PostgresDatabase(name=options.reuse, admin=make_url(options.database_url))
        return measure(database, options)
    with throwaway_postgres(options.database_url, "bench_insights", keep=options.keep) as database:
        seed(database, options)
        return measure(database, options)


if __name__ == "__main__":
    run_main(main)
