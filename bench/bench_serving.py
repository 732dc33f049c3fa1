"""The site served as in production, loaded over loopback with wrk.

Seeds bench_qa's forum (100,000 threads / 500,000 posts by default, COPY) on a throwaway
PostgreSQL database, adds KB articles and open escalations, indexes it in a Meilisearch of its
own, starts `community serve --workers 2` and one `community worker`, signs a member and an agent
in through the login form, then runs wrk (bench/wrk/scenario.lua) per scenario at each
concurrency: forum page 1 and page 500, the thread page (threads of ~20 answers), a KB article,
search, the ask form's suggestions, the agent queue, a vote and a new answer. It prints
requests/s, p50/p90/p99, status counts (5xx apart from 503 + Retry-After, which admission
control sends when it refuses), SQL statements per request (counted in-process, page cache off),
how the CPU split over the web processes and their peak RSS; then the search page next to the
same queries sent straight to Meilisearch, 200 concurrent connections, and an optional memory
soak. Raw wrk output and results.json go under --out.

    .venv/bin/python bench/bench_serving.py --out /tmp/serving            # full size
    .venv/bin/python bench/bench_serving.py --small --out /tmp/serving    # a smoke run, ~2 min
    .venv/bin/python bench/bench_serving.py --soak-minutes 10 --out ...   # plus a memory soak
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import bench_qa
import httpx
import serving_setup
from common import (
    DEFAULT_ADMIN_URL,
    PostgresDatabase,
    SqlMeter,
    bench_settings,
    code_version,
    console,
    exit_cleanly_on_signals,
    meilisearch_server,
    run_main,
    throwaway_postgres,
    workspace,
)
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from community.app import create_app
from community.core import meili as meili_process
from community.core import migrate
from community.core.db import make_engine
from community.core.models import Thread, Visibility
from community.thread_reading import PAGE_SIZE, encode_cursor

WRK_DIR = Path(__file__).resolve().parent / "wrk"
BRAND, FORUM = "acme", "mobile"
DEEP_PAGE = 500


@dataclass(frozen=True)
class Options:
    threads: int
    duration: int
    warmup: int
    concurrency: list[int]
    out: Path
    soak_minutes: float
    workers: int
    port: int
    database_url: str
    redis_url: str
    search_model: str
    reuse: str | None
    keep: bool
    seed_only: bool
    only: list[str]
    profile: list[str]
    py_spy: str
    meili_dir: Path | None


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=100_000, help="threads to seed (100000)")
    parser.add_argument("--small", action="store_true", help="2,000 threads, 5 s per scenario")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (20; 5 with --small)")
    parser.add_argument("--concurrency", default="8,64", help="connections per run (8,64)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the raw results")
    parser.add_argument("--soak-minutes", type=float, default=0.0, help="memory soak (0: none)")
    parser.add_argument("--workers", type=int, default=2, help="web processes (2)")
    parser.add_argument("--port", type=int, default=18230, help="the server's port (18230)")
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/13",
        help="REDIS_URL of the web processes (counters, page cache); '' for in-memory",
    )
    parser.add_argument(
        "--search-model",
        default="off",
        help="SEARCH_MODEL (off: lexical; 'auto' would have the worker embed every document "
        "during the runs)",
    )
    parser.add_argument("--reuse", metavar="NAME", help="an existing database seeded with --keep")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--seed-only", action="store_true", help="seed, keep the database, stop")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated scenario names to run (then no Meilisearch side by side, and the "
        "200-connection bursts only of those named)",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="comma-separated scenario names to run once more at c=8 under py-spy (a raw "
        "profile per web process in --out, bucketed by bench/peers/bench/profile_buckets.py)",
    )
    parser.add_argument(
        "--meili-dir",
        type=Path,
        help="keep Meilisearch's data here: indexed once, reused by later runs with --reuse "
        "(100,000 threads take minutes to index on 2 cores)",
    )
    parser.add_argument(
        "--py-spy",
        default=shutil.which("py-spy") or "/tmp/pyspy/bin/py-spy",  # noqa: S108
        help="the py-spy binary (pip install --target /tmp/pyspy py-spy)",
    )
    args = parser.parse_args(argv)
    threads = 2_000 if args.small and args.threads == 100_000 else args.threads
    duration = args.duration or (5 if args.small else 20)
    return Options(
        threads=threads,
        duration=duration,
        warmup=max(1, min(5, duration // 4)),
        concurrency=[int(c) for c in args.concurrency.split(",") if c.strip()],
        out=args.out,
        soak_minutes=args.soak_minutes,
        workers=args.workers,
        port=args.port,
        database_url=args.database_url,
        redis_url=args.redis_url,
        search_model=args.search_model,
        reuse=args.reuse,
        keep=args.keep or args.seed_only,
        seed_only=args.seed_only,
        only=[name for name in args.only.split(",") if name],
        profile=[name for name in args.profile.split(",") if name],
        py_spy=args.py_spy,
        meili_dir=args.meili_dir,
    )


# --- what is requested -----------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    mode: str  # scenario.lua's get / vote / answer
    items: str  # the file of paths or ids
    who: str  # anonymous, member or agent
    sql_path: str | None = None  # one request to count statements on (GETs)


@dataclass
class Fixture:
    scenarios: list[Scenario]
    queries: Path
    member_login: str
    agent_login: str


def _write(folder: Path, name: str, lines: Sequence[object]) -> Path:
    path = folder / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def load_fixture(engine: Any, folder: Path) -> Fixture:
    rng = random.Random(7)
    with Session(engine) as db:

        def ids(query: str, **params: Any) -> list[Any]:
            return list(db.execute(text(query), params).scalars())

        thread_ids = ids(
            "SELECT id FROM threads t WHERE t.visibility = 'visible' AND t.locked_at IS NULL "
            "ORDER BY abs(t.reply_count - 20), id "
            "LIMIT 500"
        )
        rng.shuffle(thread_ids)
        answer_threads = ids(
            "SELECT id FROM threads t WHERE t.visibility = 'visible' AND t.locked_at IS NULL "
            "ORDER BY random() LIMIT 500"
        )
        member = ids(
            "SELECT username FROM users WHERE role = 'member' AND deactivated_at IS NULL "
            "ORDER BY trust_level DESC, reputation DESC, id LIMIT 1"
        )[0]
        agent = ids("SELECT username FROM users WHERE role = 'agent' ORDER BY id LIMIT 1")[0]
        vote_posts = ids(
            "SELECT p.id FROM posts p JOIN threads t ON t.id = p.thread_id "
            "WHERE t.visibility = 'visible' AND t.locked_at IS NULL AND p.visibility = 'visible' "
            "AND p.author_id <> (SELECT id FROM users WHERE username = :member) "
            "AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.post_id = p.id AND v.user_id = "
            "(SELECT id FROM users WHERE username = :member)) ORDER BY random() LIMIT 3000",
            member=member,
        )
        articles = ids("SELECT id FROM kb_articles WHERE status = 'published' ORDER BY id")
        titles = ids(
            "SELECT title FROM threads WHERE visibility = 'visible' ORDER BY id LIMIT 2000"
        )
        listing = select(Thread).where(Thread.visibility == Visibility.VISIBLE)
        total = db.scalar(text("SELECT count(*) FROM threads WHERE visibility = 'visible'")) or 1
        last_page = max(1, (total - 1) // PAGE_SIZE)
        deep_pages = [min(DEEP_PAGE + k, last_page) for k in range(-5, 5)]
        cursors = []
        for page in deep_pages:
            before = db.scalars(
                listing.order_by(Thread.last_activity_at.desc(), Thread.id.desc())
                .offset(max(0, (page - 1) * PAGE_SIZE - 1))
                .limit(1)
            ).one()
            cursors.append(encode_cursor("activity", before))
    picked = rng.sample(titles, min(50, len(titles)))
    queries = [" ".join(sorted(title.split(), key=len)[-2:]).strip("?.,") for title in picked]
    typed = [title[: max(12, len(title) * 2 // 3)] for title in picked]
    forum = f"/b/{BRAND}/{FORUM}"
    search_paths = [
        f"/b/{BRAND}/search?{urllib.parse.urlencode({'q': q, 'scope': 'community'})}"
        for q in queries
    ]
    files = {
        "threads": _write(folder, "thread_paths.txt", [f"/t/{i}" for i in thread_ids]),
        "forum1": _write(folder, "forum1_paths.txt", [forum]),
        "forum500": _write(folder, "forum500_paths.txt", [f"{forum}?cursor={c}" for c in cursors]),
        "kb": _write(folder, "kb_paths.txt", [f"/kb/articles/{i}" for i in articles]),
        "search": _write(folder, "search_paths.txt", search_paths),
        "suggest": _write(
            folder,
            "suggest_paths.txt",
            [f"/b/{BRAND}/kb/suggest?{urllib.parse.urlencode({'title': t})}" for t in typed],
        ),
        "agent": _write(folder, "agent_paths.txt", [f"/b/{BRAND}/agent"]),
        "votes": _write(folder, "vote_posts.txt", vote_posts),
        "answers": _write(folder, "answer_threads.txt", answer_threads),
    }

    def first(name: str) -> str:
        return files[name].read_text().split("\n", 1)[0]

    scenarios = [
        Scenario("forum page 1", "get", str(files["forum1"]), "anonymous", first("forum1")),
        Scenario("forum page 1 (member)", "get", str(files["forum1"]), "member", first("forum1")),
        Scenario(
            f"forum page {DEEP_PAGE}", "get", str(files["forum500"]), "anonymous", first("forum500")
        ),
        Scenario("thread page", "get", str(files["threads"]), "anonymous", first("threads")),
        Scenario("thread page (member)", "get", str(files["threads"]), "member", first("threads")),
        Scenario("KB article", "get", str(files["kb"]), "anonymous", first("kb")),
        Scenario("search", "get", str(files["search"]), "anonymous", first("search")),
        Scenario("search (member)", "get", str(files["search"]), "member", first("search")),
        Scenario("suggestions (member)", "get", str(files["suggest"]), "member", first("suggest")),
        Scenario("agent queue", "get", str(files["agent"]), "agent", first("agent")),
        Scenario("vote (member)", "vote", str(files["votes"]), "member"),
        Scenario("new answer (member)", "answer", str(files["answers"]), "member"),
    ]
    return Fixture(scenarios, _write(folder, "queries.txt", queries), member, agent)


# --- SQL statements per request (in-process, page cache off) --------------------------------


def count_statements(
    database: PostgresDatabase, meili_url: str, meili_key: str, fixture: Fixture, workdir: Path
) -> dict[str, float]:
    """Statements per request of each GET scenario, on the same data, with the anonymous page
    cache off: what one rendering costs (a cache hit costs none)."""
    settings = bench_settings(
        database.sqlalchemy_url,
        workdir,
        meili_url=meili_url,
        timing_requests=True,
        meili_master_key=meili_key,
        meili_index_prefix="bench_",
        search_model="off",
        page_cache_seconds=0.0,
    )
    engine = make_engine(settings.sqlalchemy_url)
    meter = SqlMeter(engine)
    counts: dict[str, float] = {}
    clients = {"anonymous": TestClient(create_app(settings, engine=engine))}
    with clients["anonymous"] as anonymous:
        for who, login in (("member", fixture.member_login), ("agent", fixture.agent_login)):
            client = TestClient(anonymous.app)
            token = bench_qa._csrf(client.get("/login"))
            client.post(
                "/login",
                data={"login": login, "password": bench_qa.BENCH_PASSWORD, "csrf_token": token},
                follow_redirects=False,
            )
            clients[who] = client
        for scenario in fixture.scenarios:
            if scenario.sql_path is None:
                continue
            client = clients[scenario.who]
            paths = Path(scenario.items).read_text().split()[:12]
            per_request = []
            for number, path in enumerate(paths * (1 + 12 // len(paths))):
                if scenario.who == "anonymous":
                    client.cookies.clear()  # a first visit each time, as wrk's visitor
                before = meter.statements
                response = client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"{scenario.name}: {path} answered {response.status_code}")
                if number >= 2:  # the first ones warm the app's caches
                    per_request.append(meter.statements - before)
            counts[scenario.name] = statistics.median(per_request)
    engine.dispose()
    return counts


# --- wrk -------------------------------------------------------------------------------------


@dataclass
class Run:
    scenario: str
    connections: int
    seconds: float
    result: dict[str, Any]
    load: tuple[float, float, float]
    cpu_split: list[int] = field(default_factory=list)  # CPU ticks per web process
    sql_per_request: float | None = None

    @property
    def rps(self) -> float:
        return float(self.result["requests"]) / (self.result["duration_us"] / 1e6)


def wrk(
    url: str, script: Path, args: Sequence[str], connections: int, seconds: float, raw: Path | None
) -> dict[str, Any]:
    command = [
        shutil.which("wrk") or "wrk", f"-t{min(2, connections)}", f"-c{connections}",
        f"-d{round(seconds)}s", "--latency", "--timeout", "10s", "-s", str(script), url, "--",
        *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    if raw is not None:
        raw.write_text(" ".join(command) + "\n\n" + done.stdout + done.stderr)
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    return result


@dataclass
class Bench:
    servers: serving_setup.Servers
    sessions: dict[str, serving_setup.Session]
    options: Options
    runs: list[Run] = field(default_factory=list)

    def args(self, scenario: Scenario) -> list[str]:
        session = self.sessions.get(scenario.who)
        extra = [session.cookie, session.csrf] if session else []
        return [scenario.mode, scenario.items, *extra]

    def settle(self) -> None:
        """Wait until the server has worked through the requests an earlier run left queued
        (wrk stops sending, the server does not stop answering): until its processes use under
        5% of a core, at most a minute."""
        pids = [*self.servers.web_processes(), self.servers.worker.pid]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            before = sum(serving_setup.cpu_ticks(pid) for pid in pids)
            time.sleep(0.5)  # a CPU-time sample needs an interval; nothing signals "idle"
            if sum(serving_setup.cpu_ticks(pid) for pid in pids) - before <= 2:
                return

    def run(self, scenario: Scenario, connections: int, seconds: float, tag: str = "") -> Run:
        script, url = WRK_DIR / "scenario.lua", self.servers.base_url
        self.settle()
        wrk(url, script, self.args(scenario), connections, self.options.warmup, None)
        pids = self.servers.web_processes()
        ticks = [serving_setup.cpu_ticks(pid) for pid in pids]
        load = os.getloadavg()
        slug = scenario.name.replace(" ", "_").replace("(", "").replace(")", "")
        raw = self.options.out / f"{slug}{tag}_c{connections}.txt"
        result = wrk(url, script, self.args(scenario), connections, seconds, raw)
        split = [serving_setup.cpu_ticks(pid) - t for pid, t in zip(pids, ticks, strict=True)]
        run = Run(scenario.name + tag, connections, seconds, result, load, split)
        self.runs.append(run)
        console.print(_line(run))
        return run


def _line(run: Run) -> str:
    r = run.result
    return (
        f"{run.scenario:<28} c={run.connections:<3} {run.rps:8.1f} req/s  "
        f"p50 {r['p50_us'] / 1000:6.1f}  p99 {r['p99_us'] / 1000:7.1f} ms  "
        f"5xx {r['s5xx']}  503q {r['s503_retry']}  4xx {r['s4xx']}  degraded {r.get('degraded', 0)}"
    )


def meili_side_by_side(bench: Bench, meili_url: str, key: str, fixture: Fixture) -> None:
    """The search page (signed in) next to its own Meilisearch query sent straight to
    Meilisearch: what the app adds over its search engine."""
    uid = f"bench_threads_{BRAND}"
    for connections in (1, 8):
        result = wrk(
            meili_url,
            WRK_DIR / "scenario.lua",
            ["meili", str(fixture.queries), uid, key],
            connections,
            bench.options.duration,
            bench.options.out / f"meili_direct_c{connections}.txt",
        )
        run = Run("Meilisearch direct", connections, bench.options.duration, result,
                  os.getloadavg())  # fmt: skip
        bench.runs.append(run)
        console.print(_line(run))
        # Signed in: the anonymous page cache would answer a repeated query without Meilisearch.
        search = next(s for s in fixture.scenarios if s.name == "search (member)")
        bench.run(search, connections, bench.options.duration, " (beside Meilisearch)")


def profile(bench: Bench, scenario: Scenario) -> str:
    """The scenario again at c=8, twice, with py-spy sampling every web process (kept out of the
    measured runs: sampling slows the process it samples): once for wall time (where a request
    waits, the database included), once with --gil (where the CPU goes: only the thread holding
    the GIL is sampled, so uvloop's wait for I/O drops out). Returns the buckets of each."""
    slug = scenario.name.replace(" ", "_").replace("(", "").replace(")", "")
    seconds = bench.options.duration
    buckets = Path(__file__).resolve().parent / "peers" / "bench" / "profile_buckets.py"
    summary = ""
    for view, extra in (("wall", []), ("gil", ["--gil"])):
        pids = bench.servers.web_processes()
        raws = [bench.options.out / f"profile_{slug}_{view}_{pid}.raw" for pid in pids]
        samplers = [
            subprocess.Popen(  # noqa: S603
                [bench.options.py_spy, "record", "-p", str(pid), "-f", "raw", "-r", "200",
                 "-d", str(seconds), "-o", str(raw), *extra],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for pid, raw in zip(pids, raws, strict=True)
        ]  # fmt: skip
        bench.run(scenario, 8, seconds, f" (under py-spy, {view})")
        for sampler in samplers:
            sampler.wait(timeout=seconds + 60)
        done = subprocess.run(  # noqa: S603
            [sys.executable, str(buckets), *[str(r) for r in raws if r.exists()]],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        summary += (
            f"### {scenario.name}, c=8, py-spy ({view}) on {len(raws)} web processes\n\n"
            f"```\n{done.stdout}```\n\n"
        )
    (bench.options.out / f"profile_{slug}.md").write_text(summary)
    return summary


def soak(bench: Bench, fixture: Fixture, minutes: float) -> list[dict[str, Any]]:
    """Signed-in thread pages (no page cache) and anonymous ones for `minutes` at c=8, with the
    RSS of every process sampled every 30 s."""
    samples: list[dict[str, Any]] = []
    scenario = next(s for s in fixture.scenarios if s.name == "thread page (member)")
    seconds = minutes * 60
    load = threading.Thread(target=bench.run, args=(scenario, 8, seconds, " (soak)"))
    began = time.monotonic()
    load.start()
    while load.is_alive():
        processes = bench.servers.all_processes()
        samples.append(
            {"t": round(time.monotonic() - began)}
            | {
                name: serving_setup.memory_kib(pid).get("VmRSS", 0)
                for name, pid in processes.items()
            }
        )
        load.join(timeout=30)
    return samples


# --- report ----------------------------------------------------------------------------------


def report(
    bench: Bench, memory: dict[str, dict[str, int]], soak_samples: list[dict[str, Any]]
) -> str:
    lines = [
        "| scenario | c | req/s | p50 ms | p90 ms | p99 ms | 2xx/3xx | 4xx | 5xx |"
        " 503 queued/refused | degraded (no Meilisearch) | socket errors | SQL/request |"
        " CPU split over web processes | 1-min load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in bench.runs:
        r = run.result
        total = sum(run.cpu_split) or 1
        split = " / ".join(f"{100 * t / total:.0f}%" for t in run.cpu_split) or "-"
        errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
        sql = "-" if run.sql_per_request is None else f"{run.sql_per_request:g}"
        lines.append(
            f"| {run.scenario} | {run.connections} | {run.rps:.1f} | {r['p50_us'] / 1000:.1f} | "
            f"{r['p90_us'] / 1000:.1f} | {r['p99_us'] / 1000:.1f} | {r['s2xx'] + r['s3xx']} | "
            f"{r['s4xx']} | {r['s5xx']} | {r['s503_retry']} | {r.get('degraded', 0)} | {errors} | "
            f"{sql} | {split} | "
            f"{run.load[0]:.2f} |"
        )
    lines += ["", "| process | peak RSS (VmHWM) MB | RSS at the end MB |", "|---|---|---|"]
    for name, kib in memory.items():
        lines.append(
            f"| {name} | {kib.get('VmHWM', 0) / 1024:.0f} | {kib.get('VmRSS', 0) / 1024:.0f} |"
        )
    if soak_samples:
        names = [k for k in soak_samples[0] if k.startswith("web ")]
        lines += ["", "| soak t (s) | " + " | ".join(f"{n} RSS MB" for n in names) + " |"]
        lines.append("|---|" + "---|" * len(names))
        for sample in soak_samples:
            values = " | ".join(f"{sample.get(n, 0) / 1024:.0f}" for n in names)
            lines.append(f"| {sample['t']} | {values} |")
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def measure(database: PostgresDatabase, options: Options, workdir: Path) -> None:
    info = serving_setup.machine() | {"commit": code_version(), "threads": options.threads}
    console.print(f"Machine: {info}")
    with search_server(options, workdir) as meili:
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
        if _indexed(meili, options.threads):
            console.print("search: the kept Meilisearch already holds this forum, not reindexed")
        else:
            info["indexing_seconds"] = serving_setup.run_cli(env, "reindex")
        engine = make_engine(database.sqlalchemy_url)
        fixture = load_fixture(engine, options.out)
        engine.dispose()
        sql = count_statements(database, meili.url, meili.master_key, fixture, workdir / "inproc")
        logs = options.out / "logs"
        logs.mkdir(exist_ok=True)
        with serving_setup.servers(env, options.workers, options.port, logs) as running:
            info["server_note"] = running.note
            sessions = {
                "member": serving_setup.sign_in(
                    running.base_url, fixture.member_login, bench_qa.BENCH_PASSWORD, "/"
                ),
                "agent": serving_setup.sign_in(
                    running.base_url, fixture.agent_login, bench_qa.BENCH_PASSWORD, "/"
                ),
            }
            bench = Bench(running, sessions, options)
            chosen = [s for s in fixture.scenarios if not options.only or s.name in options.only]
            for connections in options.concurrency:
                for scenario in chosen:
                    bench.run(scenario, connections, options.duration).sql_per_request = sql.get(
                        scenario.name
                    )
            if not options.only:  # --only: the named scenarios and nothing else
                meili_side_by_side(bench, meili.url, meili.master_key, fixture)
            # Long enough for requests queued behind 200 others to come back (wrk counts only
            # what it received before the end).
            burst = max(10, options.duration // 2)
            for name in ("thread page", "thread page (member)", "vote (member)"):
                if not options.only or name in options.only:
                    bench.run(next(s for s in fixture.scenarios if s.name == name), 200, burst)
            profiles = [profile(bench, s) for s in fixture.scenarios if s.name in options.profile]
            soak_samples = (
                soak(bench, fixture, options.soak_minutes) if options.soak_minutes else []
            )
            memory = {
                name: serving_setup.memory_kib(pid) for name, pid in running.all_processes().items()
            }
            info["load_at_end"] = os.getloadavg()
    table = report(bench, memory, soak_samples) + "".join(f"\n\n{p}" for p in profiles)
    console.print(table, markup=False, highlight=False)
    (options.out / "summary.md").write_text(f"{json.dumps(info, indent=1)}\n\n{table}\n")
    (options.out / "results.json").write_text(
        json.dumps(
            {
                "machine": info,
                "runs": [asdict(r) for r in bench.runs],
                "memory": memory,
                "soak": soak_samples,
                "sql_per_request": sql,
            },
            indent=1,
        )
    )


@contextmanager
def search_server(options: Options, workdir: Path) -> Iterator[meili_process.MeiliServer]:
    """A Meilisearch of the run's own, or the one kept in --meili-dir (same master key)."""
    if options.meili_dir is None:
        with meilisearch_server(workdir, note="for the served site") as server:
            yield server
        return
    key_file = options.meili_dir / "master-key"
    if not key_file.exists():
        options.meili_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text("bench-master-key-" + uuid.uuid4().hex)
    binary = meili_process.find_binary()
    server = meili_process.start_server(binary, options.meili_dir, key_file.read_text())
    console.print(f"Meilisearch on {server.url}, data kept in {options.meili_dir}")
    try:
        yield server
    finally:
        server.stop()


def _indexed(server: meili_process.MeiliServer, threads: int) -> bool:
    """Whether the kept index already holds (nearly) every seeded thread."""
    response = httpx.get(
        f"{server.url}/indexes/bench_threads_{BRAND}/stats",
        headers={"Authorization": f"Bearer {server.master_key}"},
    )
    return response.status_code == 200 and response.json()["numberOfDocuments"] >= threads * 0.9


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    exit_cleanly_on_signals()
    options.out.mkdir(parents=True, exist_ok=True)
    with workspace("bench_serving_") as workdir:
        if options.reuse:
            database = PostgresDatabase(options.reuse, make_url(options.database_url))
            migrate.upgrade(database.sqlalchemy_url)  # a kept database follows the code's schema
            measure(database, options, workdir)
            return 0
        with throwaway_postgres(
            options.database_url,
            "bench_serving",
            keep=options.keep,
            kept_hint="run again: bench/bench_serving.py --reuse {name} --out ...",
        ) as database:
            console.print(f"Seeding {options.threads:,} threads...")
            seconds = serving_setup.seed(database, options.threads, options.database_url)
            console.print(f"Seeded in {seconds['total'] + seconds['extras']:.0f} s.")
            if not options.seed_only:
                measure(database, options, workdir)
    return 0


if __name__ == "__main__":
    run_main(main)
