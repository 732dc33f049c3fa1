"""Benchmark of the importer pipeline (`community.importing`): rows per second per part.

1. Real data: the largest Stack Exchange dump in the data directory (by the size of its XML
   files), imported into a fresh SQLite file and a fresh PostgreSQL database: validate, import,
   scores and search index, with the wall time and each part's rows per second.
2. Scale: the synthetic source (`community seed --scale`) sized for `--posts` posts (100,000 by
   default) into PostgreSQL (and SQLite with `--sqlite-scale`), the full pipeline, checked
   against the aim "100,000 posts in under 2 minutes on PostgreSQL", with the process's peak RSS.

Every run gets its own database (migrated with Alembic) and its own Meilisearch index prefix
on one Meilisearch started for the benchmark; all of them are removed at the end, also on an
error, Ctrl-C or SIGTERM.

    .venv/bin/python bench/bench_import.py                 # real dump + 100,000 posts (~3.5-5 min)
    .venv/bin/python bench/bench_import.py --posts 10000   # smoke test (~1 min)
    .venv/bin/python bench/bench_import.py --help

See bench/README.md for what the figures mean. The aim is printed, never asserted.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
from common import (
    DEFAULT_ADMIN_URL,
    REPO_ROOT,
    bench_settings,
    busy_cpus,
    code_version,
    console,
    cpu_counters,
    exit_cleanly_on_signals,
    meili_headers,
    meilisearch_server,
    run_main,
    throwaway_postgres,
    workspace,
)
from rich.table import Table
from sqlalchemy import text

from community.core import meili, migrate
from community.core.db import make_engine, make_session_factory
from community.importing.records import Source
from community.importing.report import ImportReport, PartReport
from community.importing.service import Importer, ensure_forum
from community.importing.stackexchange import FILES, StackExchangeDump
from community.importing.synthetic.source import SyntheticSource
from kb.search import SearchEngine

if str(REPO_ROOT) not in sys.path:  # scripts/ is not an installed package
    sys.path.insert(0, str(REPO_ROOT))
from scripts.relevance import compute_vectors

DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DEFAULT_SERVER_URL = os.environ.get("TEST_DATABASE_URL", DEFAULT_ADMIN_URL)
BRAND, FORUM = "bench", "imported"
# The synthetic source writes about 1.95 answers per thread: posts = threads * 2.95.
POSTS_PER_THREAD = 2.95
AIM_POSTS, AIM_SECONDS = 100_000, 120.0
SOURCE_PARTS = ("users", "tags", "questions", "answers", "comments", "votes", "duplicates")
# The ImportReport attribute that counts what a step after the parts did, and what it is.
STEP_COUNTS = {"scores": "rescored", "triage": "triaged", "search index": "indexed"}
STEP_NOTES = {
    "counters": "SQL recount",
    "scores": "+ KB promotion",
    "search index": "Meilisearch",
}
# Makes a throwaway database and yields its URL; removes it on exit.
DatabaseFactory = Callable[[], AbstractContextManager[str]]


# --- options ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    skip_real: bool
    skip_scale: bool
    posts: int
    sqlite_scale: bool
    data_dir: Path
    server_url: str
    seed: int
    vectors: bool = False


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description=(
            "Time the importer: the largest real Stack Exchange dump into SQLite and "
            "PostgreSQL, and a synthetic community of --posts posts into PostgreSQL."
        )
    )
    parser.add_argument("--skip-real", action="store_true", help="skip the real dump")
    parser.add_argument("--skip-scale", action="store_true", help="skip the synthetic scale run")
    parser.add_argument(
        "--posts",
        type=int,
        default=AIM_POSTS,
        help=f"posts (questions + answers) wanted in the scale run, roughly ({AIM_POSTS})",
    )
    parser.add_argument(
        "--sqlite-scale", action="store_true", help="run the scale test on SQLite too"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"folder of Stack Exchange dumps ({DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_SERVER_URL,
        help=(
            "PostgreSQL admin URL where the throwaway databases are created and dropped "
            "(TEST_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/postgres)"
        ),
    )
    parser.add_argument("--seed", type=int, default=1, help="the synthetic source's seed (1)")
    parser.add_argument(
        "--vectors",
        action="store_true",
        help="after the scale import, time the worker computing every document's vectors "
        "(SEARCH_MODEL, default auto: both models; long: about 12 documents/s per core)",
    )
    args = parser.parse_args(argv)
    if args.posts < 3:
        parser.error("--posts must be at least 3")
    if args.skip_real and args.skip_scale:
        parser.error("--skip-real and --skip-scale together leave nothing to do")
    return Options(
        skip_real=args.skip_real,
        skip_scale=args.skip_scale,
        posts=args.posts,
        sqlite_scale=args.sqlite_scale,
        data_dir=args.data_dir,
        server_url=args.database_url,
        seed=args.seed,
        vectors=args.vectors,
    )


# --- databases -------------------------------------------------------------------------------


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    with throwaway_postgres(server_url, "bench_import", indent="  ") as database:
        yield database.sqlalchemy_url


@contextmanager
def sqlite_database(workdir: Path) -> Iterator[str]:
    path = workdir / f"bench_import_{uuid.uuid4().hex[:8]}.db"
    try:
        yield f"sqlite:///{path}"
    finally:
        for leftover in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-shm"),
        ):
            leftover.unlink(missing_ok=True)


# --- memory and load -------------------------------------------------------------------------


def reset_peak_rss() -> bool:
    """Make the peak RSS start again from the current RSS (Linux: writing 5 to clear_refs
    resets the high-water mark that getrusage's ru_maxrss reports), so each run shows its own
    peak rather than the process's. False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def current_rss_mib() -> float | None:
    with suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**10
    return None


def load_average() -> str:
    """The one-minute load average (CPUs' worth of runnable processes; 2 cores here)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


# --- one run ---------------------------------------------------------------------------------


@dataclass
class RunResult:
    label: str
    backend: str
    report: ImportReport
    wall: float  # validate + Importer.run() (parts, counters, scores, search index)
    validate: float | None
    migrate: float
    cpu: float  # CPU seconds of this process during the wall time
    rss_start_mib: float | None
    peak_rss_mib: float
    peak_is_per_run: bool
    database_bytes: int | None
    load_before: str
    load_after: str
    busy_cpus: float | None  # the whole machine's, on average over the wall time
    xml_bytes: int = 0  # what validate read (the files the importer uses)

    def part(self, position: int) -> tuple[PartReport, float]:
        """The report of the source's part at `position` (in SOURCE_PARTS order: the labels
        depend on the source, "Users.xml" or "users") and its seconds."""
        part = self.report.parts[position]
        return part, self.report.seconds.get(part.label, 0.0)

    @property
    def posts(self) -> int:
        return self.part(2)[0].imported + self.part(3)[0].imported

    @property
    def other_seconds(self) -> float:
        """Wall time outside the validation and the report's parts: finding the forum,
        starting the run, writing its summary. Triage runs during the index build, so its
        seconds overlap the index's and are left out of the sum."""
        serial = sum(seconds for label, seconds in self.report.seconds.items() if label != "triage")
        return max(self.wall - (self.validate or 0.0) - serial, 0.0)


def _database_bytes(database_url: str) -> int | None:
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        return path.stat().st_size if path.exists() else None
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            size = conn.scalar(text("SELECT pg_database_size(current_database())"))
            return int(size) if size is not None else None
    finally:
        engine.dispose()


def drop_indexes(server: meili.MeiliServer, search: SearchEngine, prefix: str) -> None:
    """Delete the run's indexes, the live ones and any half-built `_rebuild_` ones."""
    listed = httpx.get(
        f"{server.url}/indexes",
        params={"limit": 1000},
        headers=meili_headers(server),
    ).json()
    for index in listed.get("results", []):
        if index["uid"].startswith(prefix):
            search.drop(index["uid"])


class StatusLine:
    """Importer progress as a one-line status (on a terminal; rich draws nothing in a log)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.status = console.status(f"{label}: starting")
        self.shown_at = 0.0

    def __enter__(self) -> StatusLine:
        self.status.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.status.stop()

    def __call__(self, part: str, position: int, size: int | None, rows: int) -> None:
        now = time.monotonic()
        if now - self.shown_at < 0.2:  # the importer reports every batch
            return
        self.shown_at = now
        share = f" {position / size:.0%}" if size else ""
        self.status.update(f"{self.label}: {part}{share}, {rows:,} rows")


def run_pipeline(
    label: str,
    backend: str,
    database_url: str,
    source: Source,
    meili_server: meili.MeiliServer,
    workdir: Path,
    *,
    validate: Callable[[], None] | None = None,
    vectors: bool = False,
) -> RunResult:
    """Migrate an empty database, then time validate + import + scores + search index."""
    started = time.perf_counter()
    migrate.upgrade(database_url)
    migrate_seconds = time.perf_counter() - started
    prefix = f"bi{uuid.uuid4().hex[:8]}_"
    settings = bench_settings(
        database_url,
        workdir / "instance",
        meili_url=meili_server.url,
        meili_master_key=meili_server.master_key,
        # Every run its own indexes on the shared server.
        meili_index_prefix=prefix,
    )
    search = SearchEngine(settings)
    engine = make_engine(settings.sqlalchemy_url)
    session_factory = make_session_factory(engine)
    try:
        per_run = reset_peak_rss()
        rss_start = current_rss_mib()
        load_before = load_average()
        counters_before = cpu_counters()
        cpu_before = time.process_time()
        started = time.perf_counter()
        validate_seconds = None
        if validate is not None:
            validate()
            validate_seconds = time.perf_counter() - started
        with session_factory() as db:
            forum_id = ensure_forum(db, BRAND, FORUM, forum_name=source.site_label).id
            db.commit()
        with StatusLine(label) as progress:
            report = Importer(
                session_factory, source, forum_id=forum_id, search=search, progress=progress
            ).run()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        peak = peak_rss_mib()
        load_after = load_average()
        busy = busy_cpus(counters_before, cpu_counters())
        if vectors:
            catch_up = compute_vectors(session_factory, settings)
            console.print(
                f"  vectors ({settings.search_model}): {catch_up.documents:,} documents in "
                f"{catch_up.seconds:.0f} s ({catch_up.documents / max(catch_up.seconds, 1e-9):.1f}"
                " documents/s) after the import; lexical search worked meanwhile"
            )
    finally:
        engine.dispose()
        # Keeps the shared server small for the next run; never hides the run's own error.
        with suppress(Exception):
            drop_indexes(meili_server, search, prefix)
    return RunResult(
        label=label,
        backend=backend,
        report=report,
        wall=wall,
        validate=validate_seconds,
        migrate=migrate_seconds,
        cpu=cpu,
        rss_start_mib=rss_start,
        peak_rss_mib=peak,
        peak_is_per_run=per_run,
        database_bytes=_database_bytes(database_url),
        load_before=load_before,
        load_after=load_after,
        busy_cpus=busy,
    )


# --- the two benchmarks ----------------------------------------------------------------------


def largest_dump(data_dir: Path) -> tuple[Path, int]:
    """The dump folder whose XML files are largest in total, and that total in bytes."""
    if not data_dir.is_dir():
        raise SystemExit(f"no data directory {data_dir} (use --data-dir, or --skip-real)")
    sizes = {
        folder: sum(path.stat().st_size for path in folder.glob("*.xml"))
        for folder in sorted(data_dir.iterdir())
        if (folder / "Posts.xml").is_file()
    }
    if not sizes:
        raise SystemExit(f"no Stack Exchange dump (a folder with Posts.xml) in {data_dir}")
    folder = max(sizes, key=lambda name: sizes[name])
    return folder, sizes[folder]


def real_runs(options: Options, meili_server: meili.MeiliServer, workdir: Path) -> list[RunResult]:
    folder, total = largest_dump(options.data_dir)
    read_bytes = sum((folder / name).stat().st_size for name in FILES if (folder / name).is_file())
    console.rule(f"[bold]Real dump: {folder.name}")
    console.print(
        f"{folder} ({total / 2**20:.1f} MiB of XML; the importer reads {read_bytes / 2**20:.1f} "
        f"MiB of it: {', '.join(FILES)})"
    )
    results: list[RunResult] = []
    backends: list[tuple[str, DatabaseFactory]] = [
        ("SQLite", lambda: sqlite_database(workdir)),
        ("PostgreSQL", lambda: postgres_database(options.server_url)),
    ]
    for backend, database in backends:
        dump = StackExchangeDump(folder)
        with database() as url:
            result = run_pipeline(
                f"{folder.name} -> {backend}",
                backend,
                url,
                dump,
                meili_server,
                workdir,
                validate=dump.validate,
            )
        result.xml_bytes = read_bytes
        console.print(f"  {backend}: {result.wall:.1f} s")
        results.append(result)
    return results


def scale_runs(options: Options, meili_server: meili.MeiliServer, workdir: Path) -> list[RunResult]:
    threads = max(1, round(options.posts / POSTS_PER_THREAD))
    console.rule(f"[bold]Scale: synthetic source, {threads:,} threads (~{options.posts:,} posts)")
    backends: list[tuple[str, DatabaseFactory]] = [
        ("PostgreSQL", lambda: postgres_database(options.server_url))
    ]
    if options.sqlite_scale:
        backends.append(("SQLite", lambda: sqlite_database(workdir)))
    results: list[RunResult] = []
    for backend, database in backends:
        with database() as url:
            result = run_pipeline(
                f"synthetic -> {backend}",
                backend,
                url,
                SyntheticSource(threads, seed=options.seed),
                meili_server,
                workdir,
                vectors=options.vectors,
            )
        console.print(f"  {backend}: {result.posts:,} posts in {result.wall:.1f} s")
        results.append(result)
    return results


# --- reporting -------------------------------------------------------------------------------


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}" if seconds > 0 and rows else "-"


def parts_table(title: str, results: list[RunResult]) -> Table:
    """One row per part; for each run its seconds and rows read per second."""
    table = Table(title=title)
    table.add_column("part")
    for result in results:
        table.add_column(f"{result.backend}\nread", justify="right")
        table.add_column(f"{result.backend}\ns", justify="right")
        table.add_column(f"{result.backend}\nrows/s", justify="right")

    def add(label: str, cells: Callable[[RunResult], tuple[str, str, str]]) -> None:
        table.add_row(label, *(cell for result in results for cell in cells(result)))

    if any(result.validate is not None for result in results):

        def validate_cells(result: RunResult) -> tuple[str, str, str]:
            seconds = result.validate or 0.0
            speed = f"{result.xml_bytes / 2**20 / seconds:.1f} MiB/s" if seconds else "-"
            return (f"{result.xml_bytes / 2**20:.1f} MiB", f"{seconds:.2f}", speed)

        add("validate (read every file)", validate_cells)
    for position, name in enumerate(SOURCE_PARTS):

        def part_cells(result: RunResult, position: int = position) -> tuple[str, str, str]:
            part, seconds = result.part(position)
            return (f"{part.read:,}", f"{seconds:.2f}", _rate(part.read, seconds))

        label = results[0].report.parts[position].label
        add(name if label == name else f"{name} ({label})", part_cells)
    # The steps after the parts, in the order the importer ran them (whatever it reports:
    # counters, scores, search index, and any step added later).
    steps: list[str] = []
    for result in results:
        parts = {part.label for part in result.report.parts}
        steps += [key for key in result.report.seconds if key not in parts and key not in steps]
    for step in steps:

        def step_cells(result: RunResult, step: str = step) -> tuple[str, str, str]:
            seconds = result.report.seconds.get(step, 0.0)
            counted = STEP_COUNTS.get(step)
            threads = getattr(result.report, counted, None) if counted else None
            if not isinstance(threads, int):
                return ("", f"{seconds:.2f}", "")
            return (f"{threads:,} threads", f"{seconds:.2f}", _rate(threads, seconds))

        add(f"{step} ({STEP_NOTES[step]})" if step in STEP_NOTES else step, step_cells)
    add("other (forum, run record)", lambda r: ("", f"{r.other_seconds:.2f}", ""))
    add(
        "[bold]total wall",
        lambda r: (
            f"{r.posts:,} posts",
            f"[bold]{r.wall:.1f}",
            f"{_rate(r.posts, r.wall)} posts/s",
        ),
    )
    return table


def summary_table(results: list[RunResult]) -> Table:
    table = Table(title="Runs")
    for heading in (
        "run",
        "posts",
        "wall s",
        "posts/s",
        "CPU s",
        "machine busy",
        "RSS at start",
        "peak RSS",
        "database",
        "migrations",
        "load 1 min",
    ):
        table.add_column(heading, justify="left" if heading == "run" else "right")
    for result in results:
        table.add_row(
            result.label,
            f"{result.posts:,}",
            f"{result.wall:.1f}",
            _rate(result.posts, result.wall),
            f"{result.cpu:.1f}",
            f"{result.busy_cpus:.2f} of {os.cpu_count()}" if result.busy_cpus is not None else "?",
            f"{result.rss_start_mib:.0f} MiB" if result.rss_start_mib is not None else "?",
            f"{result.peak_rss_mib:.0f} MiB" + ("" if result.peak_is_per_run else " (process)"),
            f"{result.database_bytes / 2**20:.0f} MiB" if result.database_bytes else "?",
            f"{result.migrate:.1f} s",
            f"{result.load_before} -> {result.load_after}",
        )
    return table


def report_aim(results: list[RunResult], wanted_posts: int) -> None:
    for result in results:
        if result.backend != "PostgreSQL":
            continue
        head = (
            f'Aim "{AIM_POSTS:,} posts in under {AIM_SECONDS / 60:.0f} minutes on PostgreSQL": '
            f"{result.posts:,} posts in {result.wall:.1f} s"
        )
        if wanted_posts >= AIM_POSTS:
            verdict = "[green]met[/green]" if result.wall < AIM_SECONDS else "[red]NOT met[/red]"
            console.print(f"{head}: {verdict}")
        else:
            projected = result.wall * AIM_POSTS / max(1, result.posts)
            console.print(
                f"{head}; not measured at this size (a straight-line projection to "
                f"{AIM_POSTS:,} posts gives {projected:.0f} s; run with --posts {AIM_POSTS})"
            )


# --- main ------------------------------------------------------------------------------------


def run(options: Options) -> None:
    console.print(
        f"Importer benchmark at {code_version()}; {os.cpu_count()} CPUs, "
        f"load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}"
    )
    real: list[RunResult] = []
    scale: list[RunResult] = []
    with ExitStack() as stack:
        workdir = stack.enter_context(workspace("bench_import_"))
        server = stack.enter_context(
            meilisearch_server(workdir, note="not counted in the RSS figures")
        )
        if not options.skip_real:
            real = real_runs(options, server, workdir)
        if not options.skip_scale:
            scale = scale_runs(options, server, workdir)
    if real:
        console.print(parts_table(f"Real dump: {real[0].report.source}", real))
    if scale:
        console.print(parts_table("Scale: synthetic source", scale))
    console.print(summary_table(real + scale))
    console.print(
        "[dim]rows/s = rows the part read / the part's seconds (votes count single votes, "
        "the dump's totals; the steps after the parts count threads). wall = validate + all "
        "of Importer.run(): parts, counters, scores, search index (not the migrations). "
        "CPU s = this process's CPU time during the wall time. machine busy = CPUs the whole "
        "machine kept busy on average meanwhile: this process, PostgreSQL and Meilisearch "
        "working for the run, and anything else; close to all of them means the run competed "
        "for the CPU. Peak RSS is this Python process only (ru_maxrss), reset to the current "
        "RSS before each run, so peak minus RSS at start is what the run added; Meilisearch "
        "and PostgreSQL run as separate processes and are not counted.[/dim]"
    )
    if scale:
        report_aim(scale, options.posts)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    exit_cleanly_on_signals()
    run(options)
    return 0


if __name__ == "__main__":
    run_main(main)
