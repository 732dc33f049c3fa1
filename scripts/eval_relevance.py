"""`make eval-relevance`: how often the product finds the existing answer, on real data.

Imports every Stack Exchange dump in the data folder (default ../shared/data) as its own brand
into a throwaway database (PostgreSQL on TEST_DATABASE_URL's server, or SQLite with --sqlite)
and a Meilisearch of its own, with the project's importer. Then, for every duplicate pair of
the dumps (scripts/relevance.py says how they are built), types the duplicate's title into
each registered system and looks for the original among the first 10 results: recall@1/5/10
and MRR per site and overall, for the English titles and for the Spanish set
(scripts/eval_relevance_es.tsv). Also the suggestion endpoint's latency (p50/p95 over every
call) and the import's indexing throughput. It prints figures; it is not a test.

    .venv/bin/python scripts/eval_relevance.py                  # PostgreSQL, every system
    .venv/bin/python scripts/eval_relevance.py --sqlite --systems suggest,search-community
    .venv/bin/python scripts/eval_relevance.py --json /tmp/relevance.json --details
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from fastapi.testclient import TestClient
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a file: make the project's packages importable
    sys.path.insert(0, str(REPO_ROOT))

from bench.common import (  # noqa: E402
    DEFAULT_ADMIN_URL,
    bench_settings,
    busy_cpus,
    calibrate,
    code_version,
    console,
    cpu_counters,
    exit_cleanly_on_signals,
    meilisearch_server,
    percentile,
    throwaway_postgres,
    workspace,
)
from community.app import create_app  # noqa: E402
from community.core import migrate  # noqa: E402
from community.core.db import make_engine, make_session_factory  # noqa: E402
from community.core.models import Thread, ThreadStatus  # noqa: E402
from kb.search import SearchEngine  # noqa: E402
from scripts.relevance import (  # noqa: E402
    CUTOFFS,
    DEFAULT_DATA_DIR,
    DEPTH,
    OVERALL,
    SPANISH_SET,
    SYSTEMS,
    Case,
    EvaluationError,
    ImportedSite,
    Outcome,
    SiteContext,
    System,
    by_site,
    cases_for,
    compute_vectors,
    dump_folders,
    english_queries,
    evaluate,
    import_dump,
    read_pairs,
    spanish_queries,
)

SUGGEST = "suggest"
WARM_UP_QUERY = "warm up the caches"
# This process, Meilisearch and the database share the machine's CPUs while measuring; much more
# than one busy CPU means others were running too.
BUSY_WARNING = 1.5


@contextmanager
def database_url(sqlite: bool, admin_url: str, workdir: Path) -> Iterator[str]:
    if sqlite:
        yield f"sqlite:///{workdir / 'eval.db'}"
        return
    with throwaway_postgres(admin_url, "eval_relevance") as database:
        yield database.sqlalchemy_url


def chosen_systems(names: str) -> list[System]:
    if names.strip().lower() == "all":
        return list(SYSTEMS.values())
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in SYSTEMS]
    if unknown or not wanted:
        raise typer.BadParameter(
            f"unknown system(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(SYSTEMS)}"
        )
    return [SYSTEMS[name] for name in wanted]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


# --- printing ------------------------------------------------------------------------------------


def print_systems(systems: Sequence[System]) -> None:
    table = Table(title="systems measured", title_justify="left")
    table.add_column("name")
    table.add_column("what it is")
    for item in systems:
        table.add_row(item.name, item.description)
    console.print(table)


def print_imports(imported: Sequence[ImportedSite]) -> None:
    table = Table(title="imports (each dump its own brand)", title_justify="left")
    for name in ("site", "brand", "threads", "import", "index step", "documents", "docs/s"):
        table.add_column(name, justify="left" if name in ("site", "brand") else "right")
    for site in imported:
        table.add_row(
            site.folder.name,
            site.brand,
            f"{len(site.threads):,}",
            f"{site.seconds:.1f} s",
            f"{site.index_seconds:.1f} s",
            f"{site.documents:,}",
            f"{site.documents / site.index_seconds:.0f}" if site.index_seconds else "-",
        )
    documents = sum(site.documents for site in imported)
    seconds = sum(site.index_seconds for site in imported)
    table.add_row(
        "all",
        "",
        f"{sum(len(site.threads) for site in imported):,}",
        f"{sum(site.seconds for site in imported):.1f} s",
        f"{seconds:.1f} s",
        f"{documents:,}",
        f"{documents / seconds:.0f}" if seconds else "-",
        style="bold",
    )
    console.print(table)
    console.print(
        "[dim]index step: the import's search-index step (new indexes and their settings, the "
        "thread and KB documents, waiting for Meilisearch, the swap); documents: threads + KB "
        "entries.[/dim]"
    )


def print_originals(session_factory: sessionmaker[Session], cases: Sequence[Case]) -> None:
    """What state the originals are in: the ask form only suggests solved threads and KB
    entries, so an original that is merely answered cannot be among its suggestions."""
    originals: dict[str, set[int]] = {}
    for case in cases:
        originals.setdefault(case.query.pair.site, set()).add(case.original_thread)
    table = Table(title="the originals' state", title_justify="left")
    table.add_column("site")
    statuses = [status.value for status in ThreadStatus]
    for name in ("originals", *statuses):
        table.add_column(name, justify="right")
    with session_factory() as db:
        for site, ids in sorted(originals.items()):
            counts = Counter(
                status.value
                for status in db.scalars(select(Thread.status).where(Thread.id.in_(ids)))
            )
            table.add_row(site, str(len(ids)), *(str(counts.get(name, 0)) for name in statuses))
    console.print(table)


def print_figures(title: str, systems: Sequence[System], outcomes: Sequence[Outcome]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("system")
    table.add_column("site")
    for name in ("pairs", *(f"R@{k}" for k in CUTOFFS), "MRR"):
        table.add_column(name, justify="right")
    for item in systems:
        results = by_site(outcomes, item.name)
        for index, (site, found) in enumerate(results.items()):
            overall = site == OVERALL
            table.add_row(
                item.name if index == 0 else "",
                site.removesuffix(".stackexchange.com"),
                str(found.pairs),
                *(f"{found.recall[k]:.2f}" for k in CUTOFFS),
                f"{found.mrr:.2f}",
                style="bold" if overall else None,
                end_section=overall,
            )
    console.print(table)


def print_details(title: str, systems: Sequence[System], outcomes: Sequence[Outcome]) -> None:
    """Rank of the original per pair and system ('-': not in the top 10)."""
    table = Table(title=title, title_justify="left")
    table.add_column("site", no_wrap=True, max_width=8, overflow="ellipsis")
    table.add_column("dup → orig", no_wrap=True)
    table.add_column("query", no_wrap=True, max_width=44, overflow="ellipsis")
    for item in systems:
        # Narrow columns: the names wrap at their dashes.
        table.add_column(item.name.replace("-", "-\n"), justify="right")
    rows: dict[tuple[str, int, int, str], dict[str, int | None]] = {}
    for outcome in outcomes:
        pair = outcome.case.query.pair
        key = (pair.site, pair.duplicate, pair.original, outcome.case.query.text)
        rows.setdefault(key, {})[outcome.system] = outcome.rank
    for (site, duplicate, original, text), ranks in rows.items():
        table.add_row(
            site.removesuffix(".stackexchange.com"),
            f"{duplicate} → {original}",
            text,
            *(str(ranks.get(item.name) or "-") for item in systems),
        )
    console.print(table)


def latency_table(samples: dict[str, list[float]]) -> Table:
    table = Table(title="latency per call (in-process, ms)", title_justify="left")
    for name in ("system", "calls", "p50", "p95", "max"):
        table.add_column(name, justify="left" if name == "system" else "right")
    for name, values in samples.items():
        table.add_row(
            name,
            str(len(values)),
            ms(percentile(values, 50)),
            ms(percentile(values, 95)),
            ms(max(values)),
            style="bold" if name == SUGGEST else None,
        )
    return table


# --- the report as JSON ------------------------------------------------------------------------


def report_json(
    *,
    backend: str,
    imported: Sequence[ImportedSite],
    systems: Sequence[System],
    sets: dict[str, list[Outcome]],
    latency: dict[str, list[float]],
    machine_ms: float,
    busy: float | None,
) -> dict[str, Any]:
    def per_set(outcomes: list[Outcome]) -> dict[str, Any]:
        return {
            item.name: {
                site: found.as_dict() for site, found in by_site(outcomes, item.name).items()
            }
            for item in systems
        }

    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "database": backend,
        "depth": DEPTH,
        "machine_loop_ms": round(machine_ms, 1),
        "busy_cpus": round(busy, 2) if busy is not None else None,
        "systems": {item.name: item.description for item in systems},
        "imports": {
            site.folder.name: {
                "brand": site.brand,
                "threads": len(site.threads),
                "import_seconds": round(site.seconds, 2),
                "index_seconds": round(site.index_seconds, 2),
                "documents": site.documents,
                "report_seconds": {k: round(v, 2) for k, v in site.report.seconds.items()},
            }
            for site in imported
        },
        "figures": {name: per_set(outcomes) for name, outcomes in sets.items()},
        "latency_ms": {
            name: {
                "calls": len(values),
                "p50": round(percentile(values, 50) * 1000, 2),
                "p95": round(percentile(values, 95) * 1000, 2),
                "max": round(max(values) * 1000, 2),
            }
            for name, values in latency.items()
        },
        "pairs": [
            {
                "set": name,
                "system": outcome.system,
                "site": outcome.case.query.pair.site,
                "duplicate": outcome.case.query.pair.duplicate,
                "original": outcome.case.query.pair.original,
                "query": outcome.case.query.text,
                "rank": outcome.rank,
                "ranked_threads": outcome.ranked,
            }
            for name, outcomes in sets.items()
            for outcome in outcomes
        ],
    }


# --- the run -------------------------------------------------------------------------------------


def main(
    data_dir: Annotated[
        Path, typer.Option(help="Folder with one Stack Exchange dump per subfolder")
    ] = DEFAULT_DATA_DIR,
    sqlite: Annotated[
        bool, typer.Option("--sqlite", help="A throwaway SQLite file instead of PostgreSQL")
    ] = False,
    database_server: Annotated[
        str,
        typer.Option(
            "--database-url",
            help="PostgreSQL admin URL where the throwaway database is created and dropped "
            "(default: TEST_DATABASE_URL, else the local server)",
        ),
    ] = "",
    systems: Annotated[
        str, typer.Option(help=f"Comma-separated systems, or all: {', '.join(SYSTEMS)}")
    ] = "all",
    spanish: Annotated[
        Path, typer.Option(help="The Spanish set (site, question_id, title_es; tab-separated)")
    ] = SPANISH_SET,
    latency_rounds: Annotated[
        int,
        typer.Option(
            min=0, help="Extra timed rounds of the English titles through the suggestion endpoint"
        ),
    ] = 3,
    details: Annotated[
        bool, typer.Option("--details", help="Also print the rank of every pair per system")
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write every figure and rank to this file")
    ] = None,
) -> None:
    """Measure how often each retrieval system finds a duplicate's original, on real data."""
    exit_cleanly_on_signals()
    started = time.monotonic()
    measured = chosen_systems(systems)
    folders = dump_folders(data_dir.resolve())
    if not folders:
        console.print(f"[bold red]error:[/] no Stack Exchange dumps (Posts.xml) in {data_dir}")
        raise typer.Exit(1)
    pairs = [pair for folder in folders for pair in read_pairs(folder)]
    try:
        english = english_queries(pairs)
        spanish_set = spanish_queries(spanish, pairs)
    except (EvaluationError, KeyError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {spanish}: {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"{len(pairs)} duplicate pairs in {len(folders)} dumps "
        f"({', '.join(f'{f.name}: {sum(p.site == f.name for p in pairs)}' for f in folders)}); "
        f"{len(spanish_set)} Spanish queries from {spanish.name}"
    )
    admin_url = database_server or os.environ.get("TEST_DATABASE_URL") or DEFAULT_ADMIN_URL
    machine_ms = calibrate()
    with ExitStack() as stack:
        workdir = stack.enter_context(workspace("eval_relevance_"))
        server = stack.enter_context(meilisearch_server(workdir))
        url = stack.enter_context(database_url(sqlite, admin_url, workdir))
        migrate.upgrade(url)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        session_factory = make_session_factory(engine)
        settings = bench_settings(
            url,
            workdir / "instance",
            meili_url=server.url,
            meili_master_key=server.master_key,
            meili_index_prefix="eval_",
            timing_requests=True,
        )
        writer = SearchEngine(settings)
        imported: list[ImportedSite] = []
        for folder in folders:
            console.print(f"Importing {folder.name} …")
            imported.append(import_dump(session_factory, folder, writer))
        print_imports(imported)
        console.print(f"Computing vectors ({settings.search_model}) …")
        vector_run = compute_vectors(session_factory, settings)
        console.print(
            f"vectors: {vector_run.documents} documents in {vector_run.seconds:.1f} s "
            f"({vector_run.documents / max(vector_run.seconds, 1e-9):.1f} documents/s, "
            "both models, the worker's batches, one BLAS thread each)"
        )
        sites = {site.folder.name: site for site in imported}
        client = stack.enter_context(TestClient(create_app(settings, engine=engine)))
        contexts = {
            site.brand: SiteContext.load(session_factory, site.brand, client, writer)
            for site in imported
        }
        try:
            for context in contexts.values():  # first calls compile templates, open connections
                for item in measured:
                    item.run(context, WARM_UP_QUERY, "en")
            english_cases = cases_for(english, sites)
            print_originals(session_factory, english_cases)
            console.print(f"Measuring {len(measured)} systems …")
            before = cpu_counters()
            sets = {
                "en": evaluate(measured, contexts, english_cases),
                "es": evaluate(measured, contexts, cases_for(spanish_set, sites)),
            }
            latency: dict[str, list[float]] = {}
            for outcome in sets["en"] + sets["es"]:
                latency.setdefault(outcome.system, []).append(outcome.seconds)
            if SUGGEST in latency:
                for _round in range(latency_rounds):
                    extra = evaluate([SYSTEMS[SUGGEST]], contexts, english_cases)
                    latency[SUGGEST] += [outcome.seconds for outcome in extra]
            busy = busy_cpus(before, cpu_counters())
        except EvaluationError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from exc

    print_systems(measured)
    print_figures(
        f"English: the duplicate's title as typed (top {DEPTH}; micro-averaged overall)",
        measured,
        sets["en"],
    )
    print_figures(
        f"Spanish: {spanish.name}, Spanish titles against the English threads",
        measured,
        sets["es"],
    )
    if details:
        print_details("English: rank of the original per pair", measured, sets["en"])
        print_details("Spanish: rank of the original per pair", measured, sets["es"])
    console.print(latency_table(latency))
    console.print(
        "[dim]latency: wall time of each call from this process (the suggestion endpoint "
        "through the in-process test client, English and Spanish titles plus "
        f"{latency_rounds} extra English rounds), warm-up calls excluded.[/dim]"
    )
    console.print(
        f"code {code_version()}, {'SQLite' if sqlite else 'PostgreSQL'}, "
        f"{os.cpu_count()} CPUs; machine speed: {machine_ms:.0f} ms for the reference loop; "
        + (f"{busy:.1f} CPUs busy while measuring (this run included); " if busy else "")
        + f"{time.monotonic() - started:.0f} s in all"
    )
    if busy is not None and busy > BUSY_WARNING:
        console.print(
            "[yellow]Other processes competed for the CPUs: the latencies are pessimistic "
            "(the relevance figures do not depend on it).[/yellow]"
        )
    if json_path is not None:
        payload = report_json(
            backend="sqlite" if sqlite else "postgresql",
            imported=imported,
            systems=measured,
            sets=sets,
            latency=latency,
            machine_ms=machine_ms,
            busy=busy,
        )
        json_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        console.print(f"Wrote {json_path}.")


if __name__ == "__main__":
    typer.run(main)
