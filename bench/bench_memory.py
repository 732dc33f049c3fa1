"""Benchmark of a web process's memory (issue 14: at most 200 MB RSS with SEARCH_MODEL=off).

1. Imports: RSS of importing each big dependency alone in a fresh process, and of importing
   `community.app` with every package charged what it added, in the order the app imports it
   (bench/memory_probe.py's import meter).
2. In-process: a fresh process imports `community.app`, creates the app, then sends requests
   to the main pages through Starlette's TestClient (thread pages, forum pages, KB articles,
   search, the ask form's suggestions; every other one as a signed-in member), RSS after each
   step and every `--sample-every` requests; then posts one question (which loads the language
   detector) and prints the RSS once more.
3. Served: `community serve --workers N` and one `community worker` as production runs them;
   RSS of the supervisor, each web process and the worker when idle, then while `--served`
   requests are sent over loopback (`--connections`, 4).

Seeds bench_qa's forum (2,000 threads by default) on a throwaway PostgreSQL database, indexes
it in a Meilisearch of its own, and drops both at the end.

    .venv/bin/python bench/bench_memory.py                          # ~5 min on 2 cores
    .venv/bin/python bench/bench_memory.py --imports-only           # step 1 only (~30 s)
    .venv/bin/python bench/bench_memory.py --search-model auto      # model on (slow: see README)

Figures are printed, never asserted (tests/test_lazy_imports.py checks what is imported instead).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_qa
import bench_serving
import httpx
import serving_setup
from common import (
    DEFAULT_ADMIN_URL,
    REPO_ROOT,
    code_version,
    console,
    exit_cleanly_on_signals,
    meilisearch_server,
    run_main,
    throwaway_postgres,
    workspace,
)
from rich.table import Table

from community.core.db import make_engine

PROBE = Path(__file__).resolve().with_name("memory_probe.py")
# Imported alone, each in a fresh process: what the web process's big dependencies weigh (a
# package's own dependencies included, so these overlap).
DEPENDENCIES = (
    "numpy",
    "py3langid",
    "kb.embeddings",
    "kb.vectors",
    "community.core.language",
    "sqlalchemy",
    "fastapi",
    "pydantic_settings",
    "meilisearch",
    "redis",
    "limits",
    "prometheus_client",
    "httpx",
    "jinja2",
    "babel",
    "markdown_it",
    "nh3",
    "zxcvbn",
    "confusable_homoglyphs",
    "psycopg",
    "uvicorn",
    "typer",
    "community.cli",
    "community.cli.serving",
    "community.worker",
    "community.app",
)
TOP_PACKAGES = 25
FIRST_PARTY = ("community", "kb", "crowdservice", "moderation")


@dataclass(frozen=True)
class Options:
    threads: int
    requests: int
    sample_every: int
    served: int
    connections: int
    workers: int
    port: int
    database_url: str
    redis_url: str
    search_model: str
    imports_only: bool
    skip_imports: bool
    out: Path | None


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2000, help="threads to seed (2000)")
    parser.add_argument("--requests", type=int, default=3000, help="in-process requests (3000)")
    parser.add_argument("--sample-every", type=int, default=500, help="RSS every N requests")
    parser.add_argument("--served", type=int, default=3000, help="requests to the server (3000)")
    parser.add_argument("--connections", type=int, default=4, help="to the server at once (4)")
    parser.add_argument("--workers", type=int, default=2, help="web processes (2)")
    parser.add_argument("--port", type=int, default=18240, help="the server's port (18240)")
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/13",
        help="REDIS_URL (page cache, counters); '' for the in-memory ones",
    )
    parser.add_argument("--search-model", default="off", help="SEARCH_MODEL (off)")
    parser.add_argument("--imports-only", action="store_true", help="step 1 only")
    parser.add_argument("--skip-imports", action="store_true", help="steps 2 and 3 only")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    return Options(
        threads=args.threads,
        requests=args.requests,
        sample_every=args.sample_every,
        served=args.served,
        connections=args.connections,
        workers=args.workers,
        port=args.port,
        database_url=args.database_url,
        redis_url=args.redis_url,
        search_model=args.search_model,
        imports_only=args.imports_only,
        skip_imports=args.skip_imports,
        out=args.out,
    )


def mib(kib: int | float | None) -> str:
    return "?" if kib is None else f"{kib / 1024:.1f}"


def probe(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run memory_probe.py in a fresh interpreter; its JSON answer."""
    environment = env or serving_setup.server_env({})
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [environment.get("PYTHONPATH")])]
    )
    finished = subprocess.run(  # noqa: S603
        [sys.executable, str(PROBE), *args],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"memory_probe.py {' '.join(args)} failed:\n{finished.stderr}")
    answer: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return answer


# --- 1. imports --------------------------------------------------------------------------------


def imports(options: Options) -> dict[str, Any]:
    env = serving_setup.server_env({"SEARCH_MODEL": options.search_model})
    alone = Table(title="Imported alone, each in a fresh process (MiB)")
    for heading in ("module", "RSS added", "RSS after"):
        alone.add_column(heading, justify="left" if heading == "module" else "right")
    figures: dict[str, Any] = {"alone": {}}
    for module in DEPENDENCIES:
        answer = probe("import", module, env=env)
        added = answer["after_kib"] - answer["before_kib"]
        figures["alone"][module] = {"added_kib": added, "after_kib": answer["after_kib"]}
        alone.add_row(module, mib(added), mib(answer["after_kib"]))
    console.print(alone)

    metered = probe("imports", env=env)
    figures["community.app"] = {k: v for k, v in metered.items() if k != "loaded"}
    packages = sorted(metered["packages"], key=lambda row: -row[1])
    first_party = sum(kib for name, kib, _n in packages if name.split(".")[0] in FIRST_PARTY)
    table = Table(
        title=f"import community.app: {mib(metered['before_kib'])} -> "
        f"{mib(metered['after_kib'])} MiB, {metered['modules']} modules; each package charged "
        "what its own modules added, in import order (MiB)"
    )
    for heading in ("package", "RSS", "modules"):
        table.add_column(heading, justify="left" if heading == "package" else "right")
    for name, kib, count in packages[:TOP_PACKAGES]:
        table.add_row(name, mib(kib), str(count))
    table.add_row("[dim]our own modules together[/dim]", mib(first_party), "")
    console.print(table)
    loaded = set(metered["loaded"])
    heavy = ["numpy", "py3langid", "zxcvbn", "confusable_homoglyphs", "typer", "rich"]
    console.print(
        "Loaded by `import community.app`: "
        + ", ".join(f"{name} {'yes' if name in loaded else 'no'}" for name in heavy)
        + f"; embedding modules: {sorted(n for n in loaded if n.startswith('kb.embeddings.'))}"
    )
    return figures


# --- 2. in-process -----------------------------------------------------------------------------


def plan(engine: Any, folder: Path, base_url: str) -> Path:
    """The pages requested, interleaved: thread pages, forum pages, KB articles, searches and
    the ask form's suggestions, from bench_serving's fixture of the seeded forum."""
    fixture = bench_serving.load_fixture(engine, folder)
    lists = {
        scenario.name: Path(scenario.items).read_text().split()
        for scenario in fixture.scenarios
        if scenario.mode == "get" and "agent" not in scenario.name
    }
    # Each scenario's list once (the member variants share their list with the anonymous one).
    unique = list({tuple(paths): paths for paths in lists.values()}.values())
    paths = [
        group[index % len(group)]
        for index in range(max(len(group) for group in unique))
        for group in unique
    ]
    path = folder / "memory_plan.json"
    path.write_text(
        json.dumps(
            {
                "base_url": base_url,
                "member": fixture.member_login,
                "password": bench_qa.BENCH_PASSWORD,
                "paths": paths,
                "ask": f"/b/{bench_serving.BRAND}/ask/new",
                "forum": bench_serving.FORUM,
            }
        )
    )
    return path


def in_process(options: Options, env: dict[str, str], plan_file: Path) -> dict[str, Any]:
    answer = probe(
        "serve",
        "--paths",
        str(plan_file),
        "--requests",
        str(options.requests),
        "--sample-every",
        str(options.sample_every),
        env=env,
    )
    table = Table(title=f"One process in-process (TestClient), SEARCH_MODEL={options.search_model}")
    table.add_column("step")
    table.add_column("RSS MiB", justify="right")
    table.add_column("peak so far", justify="right")
    table.add_row("interpreter started", mib(answer["start_kib"]), "")
    table.add_row(
        f"import community.app ({answer['import_seconds']:.1f} s)",
        mib(answer["import_kib"]),
        mib(answer["import_peak_kib"]),
    )
    table.add_row(
        "create_app(settings)", mib(answer["create_app_kib"]), mib(answer["create_app_peak_kib"])
    )
    table.add_row(
        "lifespan started, member signed in",
        mib(answer["lifespan_kib"]),
        mib(answer["lifespan_peak_kib"]),
    )
    for sample in answer["samples"]:
        table.add_row(
            f"after {sample['requests']:,} requests",
            mib(sample["rss_kib"]),
            mib(sample["peak_kib"]),
        )
    table.add_row(
        "after posting one question", mib(answer["asked_kib"]), mib(answer["asked_peak_kib"])
    )
    console.print(table)
    console.print(
        f"statuses {answer['statuses']}; numpy loaded by the GETs: {answer['numpy_loaded']}, "
        f"after the question: {answer['numpy_after_ask']}; embedding modules "
        f"{answer['embedding_loaded']}; engine and templates: {answer['engine']}"
    )
    return answer


# --- 3. served ---------------------------------------------------------------------------------


def served(options: Options, env: dict[str, str], plan_file: Path, logs: Path) -> dict[str, Any]:
    data = json.loads(plan_file.read_text())
    figures: dict[str, Any] = {"samples": []}
    with serving_setup.servers(env, options.workers, options.port, logs) as running:
        time.sleep(2)  # the processes settle after their first page (not a timed figure)
        figures["idle"] = {
            name: serving_setup.memory_kib(pid) for name, pid in running.all_processes().items()
        }
        member = serving_setup.sign_in(running.base_url, data["member"], data["password"], "/")
        paths: list[str] = data["paths"]
        sent = 0
        lock = threading.Lock()
        statuses: dict[int, int] = {}

        def client(number: int, count: int) -> None:
            headers = {"Cookie": member.cookie} if number % 2 else {}
            with httpx.Client(base_url=running.base_url, headers=headers, timeout=60) as http:
                for index in range(count):
                    status = http.get(paths[(number * 997 + index) % len(paths)]).status_code
                    with lock:
                        statuses[status] = statuses.get(status, 0) + 1

        connections = options.connections
        # Five samples; each connection sends its share of a fifth.
        each = max(1, options.served // 5 // connections)
        for _sample in range(5):
            workers = [
                threading.Thread(target=client, args=(n + sent, each)) for n in range(connections)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            sent += each * connections
            figures["samples"].append(
                {"requests": sent}
                | {
                    name: serving_setup.memory_kib(pid).get("VmRSS", 0)
                    for name, pid in running.all_processes().items()
                }
            )
        figures["end"] = {
            name: serving_setup.memory_kib(pid) for name, pid in running.all_processes().items()
        }
        figures["statuses"] = statuses
    names = list(figures["end"])
    table = Table(
        title=f"`community serve --workers {options.workers}` + `community worker`, "
        f"SEARCH_MODEL={options.search_model}, RSS MiB ({options.connections} connections, "
        "half signed in)"
    )
    table.add_column("when")
    for name in names:
        table.add_column(name, justify="right")
    table.add_row("idle", *(mib(figures["idle"].get(n, {}).get("VmRSS")) for n in names))
    for sample in figures["samples"]:
        table.add_row(f"after {sample['requests']:,}", *(mib(sample.get(n)) for n in names))
    table.add_row("peak (VmHWM)", *(mib(figures["end"][n].get("VmHWM")) for n in names))
    console.print(table)
    console.print(f"statuses {statuses}")
    return figures


# --- main --------------------------------------------------------------------------------------


def run(options: Options) -> dict[str, Any]:
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    console.print(f"Memory benchmark at {code_version()}; load {load}")
    results: dict[str, Any] = {"commit": code_version()}
    if not options.skip_imports:
        results["imports"] = imports(options)
    if options.imports_only:
        return results
    with ExitStack() as stack:
        workdir = stack.enter_context(workspace("bench_memory_"))
        database = stack.enter_context(throwaway_postgres(options.database_url, "bench_memory"))
        console.print(f"Seeding {options.threads:,} threads...")
        serving_setup.seed(database, options.threads, options.database_url)
        meili = stack.enter_context(meilisearch_server(workdir, note="not counted"))
        env = serving_setup.server_env(
            {
                "DATABASE_URL": database.sqlalchemy_url,
                "MEILI_URL": meili.url,
                "MEILI_MASTER_KEY": meili.master_key,
                "MEILI_INDEX_PREFIX": "bench_",
                "SEARCH_MODEL": options.search_model,
                "INSTANCE_DIR": str(workdir / "instance"),
                "SECRET_KEY": "bench-" + uuid.uuid4().hex,
                "EMBEDDED_WORKER": "false",
                "RATE_LIMITS_ENABLED": "false",
                "RATE_LIMIT_PREFIX": "bench" + uuid.uuid4().hex[:8],
                "LOG_LEVEL": "WARNING",
                "BASE_URL": f"http://127.0.0.1:{options.port}",
                "REDIS_URL": options.redis_url,
            }
        )
        if not options.redis_url:
            env.pop("REDIS_URL")
        serving_setup.run_cli(env, "reindex")
        engine = make_engine(database.sqlalchemy_url)
        try:
            plan_file = plan(engine, workdir, f"http://127.0.0.1:{options.port}")
        finally:
            engine.dispose()
        results["in_process"] = in_process(options, env, plan_file)
        logs = workdir / "logs"
        logs.mkdir()
        results["served"] = served(options, env, plan_file, logs)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    exit_cleanly_on_signals()
    results = run(options)
    if options.out:
        options.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    run_main(main)
