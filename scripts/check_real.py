"""`make check-real`: import the real Stack Exchange dumps and check what arrived.

For every dump folder in the data directory (default `../shared/data`), on a throwaway PostgreSQL
database and one Meilisearch server shared by every step:

1. runs `community import stackexchange DIR --brand real --forum <folder>` as a subprocess,
   timing it and showing its output;
2. counts the dump's own numbers by streaming its XML (independently of the importer) and
   asserts the database holds the same: questions, answers, accepted answers, duplicates,
   closed questions (duplicates and PostHistory closures), users;
3. renders a sample of imported thread pages and the forum page through the app;
4. searches imported question titles with one typo each and requires every thread among the
   first results.

Exits 1 with the failed checks listed; the database, the search server and the temporary
files are removed in every case.
"""

from __future__ import annotations

import logging
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Annotated

import httpx
import psycopg
import typer
from fastapi.testclient import TestClient
from lxml import etree
from markupsafe import escape
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, make_url, text

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a file: make the project's packages importable
    sys.path.insert(0, str(REPO_ROOT))

from community.app import create_app  # noqa: E402
from community.core import meili  # noqa: E402
from community.core.db import make_engine  # noqa: E402
from community.core.settings import Settings, normalise_database_url  # noqa: E402

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
BRAND = "real"
SLUG_MAX = 40
SEED = 20261125
IMPORT_TIMEOUT_SECONDS = 60 * 60
INDEXING_TIMEOUT_SECONDS = 600.0
# The HTML the thread template gives the accepted answer's card (templates/community/_post.html).
ACCEPTED_CARD = 'class="card post accepted[^"]*" id="post-{post_id}"'

# Logs (CI, `| tee`) are not terminals: give the tables room instead of Rich's 80 columns.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 130)


class CheckFailed(Exception):
    """A check that cannot continue (the importer failed, no dumps, ...)."""


@dataclass
class Failures:
    """Every failed assertion, so one run reports them all."""

    items: list[str] = field(default_factory=list)

    def check(self, condition: bool, message: str) -> bool:
        if not condition:
            self.items.append(message)
            console.print(f"[bold red]FAIL[/] {message}")
        return condition


# --- the dumps' own numbers ----------------------------------------------------------------


def iter_rows(path: Path) -> Iterator[dict[str, str]]:
    """The attributes of each <row> of a data-dump XML file, streamed (constant memory)."""
    for _event, element in etree.iterparse(str(path), events=("end",), tag="row"):
        yield {str(key): str(value) for key, value in element.attrib.items()}
        element.clear()
        # Drop the rows already seen, or the tree keeps every (empty) element.
        parent = element.getparent()
        while parent is not None and element.getprevious() is not None:
            del parent[0]


def _int(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Counts:
    questions: int
    answers: int
    accepted: int
    duplicates: int
    closed: int
    users: int

    @staticmethod
    def labels() -> list[tuple[str, str]]:
        return [
            ("questions", "questions (threads)"),
            ("answers", "answers (non-question posts)"),
            ("accepted", "accepted answers"),
            ("duplicates", "duplicates (both ends present)"),
            ("closed", "closed (duplicates, and last close event not reopened)"),
            ("users", "users"),
        ]


def count_dump(folder: Path) -> Counts:
    """What the dump holds, by the data-dump format's own rules (not the importer's code)."""
    accepted_of: dict[int, int | None] = {}
    parent_of: dict[int, int | None] = {}
    for row in iter_rows(folder / "Posts.xml"):
        post_id = _int(row.get("Id"))
        if post_id is None:
            continue
        if row.get("PostTypeId") == "1":
            accepted_of[post_id] = _int(row.get("AcceptedAnswerId"))
        elif row.get("PostTypeId") == "2":
            parent_of[post_id] = _int(row.get("ParentId"))
    answers = {post_id for post_id, parent in parent_of.items() if parent in accepted_of}
    accepted = sum(1 for answer in accepted_of.values() if answer is not None and answer in answers)
    duplicates: set[int] = set()
    links = folder / "PostLinks.xml"
    if links.exists():
        for row in iter_rows(links):
            if row.get("LinkTypeId") != "3":
                continue
            duplicate, original = _int(row.get("PostId")), _int(row.get("RelatedPostId"))
            if duplicate in accepted_of and original in accepted_of and duplicate is not None:
                duplicates.add(duplicate)
    # PostHistory: 10 closed, 11 reopened; the latest event (by date, then id) decides.
    last_event: dict[int, tuple[str, int, str]] = {}
    history = folder / "PostHistory.xml"
    if history.exists():
        for row in iter_rows(history):
            kind, post_id, event_id = row.get("PostHistoryTypeId"), row.get("PostId"), row.get("Id")
            if kind not in ("10", "11") or _int(post_id) not in accepted_of:
                continue
            key = (row.get("CreationDate") or "", _int(event_id) or 0, kind)
            question = _int(post_id) or 0
            last_event[question] = max(last_event.get(question, key), key)
    closed = duplicates | {q for q, (_at, _id, kind) in last_event.items() if kind == "10"}
    users = sum(1 for _row in iter_rows(folder / "Users.xml"))
    return Counts(
        questions=len(accepted_of),
        answers=len(answers),
        accepted=accepted,
        duplicates=len(duplicates),
        closed=len(closed),
        users=users,
    )


def readme_counts(data_dir: Path) -> dict[str, dict[str, str]]:
    """The data README's table, by folder (for a sanity print only)."""
    readme = data_dir / "README.md"
    if not readme.exists():
        return {}
    table: dict[str, dict[str, str]] = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 8 or not (data_dir / cells[0]).is_dir():
            continue
        duplicates = re.search(r"\((\d+)\)", cells[6])
        table[cells[0]] = {
            "questions": cells[3].replace(",", ""),
            "answers": cells[4].replace(",", ""),
            "accepted": cells[5].replace(",", ""),
            "duplicates": duplicates.group(1) if duplicates else cells[6],
            "users": cells[7].replace(",", ""),
        }
    return table


# --- the database --------------------------------------------------------------------------


@dataclass
class ThrowawayDatabase:
    admin_url: str
    name: str
    url: str

    @classmethod
    def create(cls, admin_url: str) -> ThrowawayDatabase:
        name = f"check_real_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base = admin_url.split("?", 1)[0].rsplit("/", 1)[0]
        return cls(admin_url=admin_url, name=name, url=f"{base}/{name}")

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def db_counts(engine: Engine, forum_id: int, source: str) -> Counts:
    in_forum = {"forum_id": forum_id}
    with engine.connect() as conn:

        def scalar(sql: str, **params: object) -> int:
            return int(conn.execute(text(sql), params).scalar_one())

        return Counts(
            questions=scalar("SELECT count(*) FROM threads WHERE forum_id = :forum_id", **in_forum),
            answers=scalar(
                "SELECT count(*) FROM posts p JOIN threads t ON t.id = p.thread_id "
                "WHERE t.forum_id = :forum_id AND NOT p.is_question",
                **in_forum,
            ),
            accepted=scalar(
                "SELECT count(*) FROM threads "
                "WHERE forum_id = :forum_id AND accepted_post_id IS NOT NULL",
                **in_forum,
            ),
            duplicates=scalar(
                "SELECT count(*) FROM threads "
                "WHERE forum_id = :forum_id AND duplicate_of_id IS NOT NULL",
                **in_forum,
            ),
            closed=scalar(
                "SELECT count(*) FROM threads WHERE forum_id = :forum_id AND status = 'closed'",
                **in_forum,
            ),
            users=scalar(
                "SELECT count(*) FROM import_keys WHERE source = :source AND kind = 'user'",
                source=source,
            ),
        )


def forum_id_of(engine: Engine, forum_slug: str) -> int | None:
    with engine.connect() as conn:
        value = conn.execute(
            text(
                "SELECT f.id FROM forums f JOIN brands b ON b.id = f.brand_id "
                "WHERE b.slug = :brand AND f.slug = :forum"
            ),
            {"brand": BRAND, "forum": forum_slug},
        ).scalar_one_or_none()
    return int(value) if value is not None else None


# --- the steps -----------------------------------------------------------------------------


@dataclass
class Site:
    folder: Path
    forum_slug: str
    source: str
    import_seconds: float = 0.0
    imported: bool = False
    forum_id: int | None = None
    dump: Counts | None = None
    db: Counts | None = None

    @property
    def name(self) -> str:
        return self.folder.name


def forum_slug_for(folder_name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", folder_name.lower().replace(".", "-")).strip("-")
    return slug[:SLUG_MAX].rstrip("-")


def community_command() -> str:
    beside = Path(sys.executable).parent / "community"
    if beside.exists():
        return str(beside)
    found = shutil.which("community")
    if not found:
        raise CheckFailed("no `community` command beside this Python or on PATH")
    return found


def run_logged(command: list[str], env: dict[str, str], timeout: float) -> tuple[int, float]:
    """Run a command, echoing its output as it comes; (exit code, wall seconds)."""
    console.print(f"[dim]$ {' '.join(command)}[/]")
    started = time.monotonic()
    with subprocess.Popen(  # noqa: S603 - our own CLI with arguments we built
        command,
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                console.out("  │ " + line.rstrip("\n"), highlight=False)
                if time.monotonic() - started > timeout:
                    raise CheckFailed(f"{' '.join(command[1:3])} took more than {timeout:.0f}s")
            code = process.wait()
        except BaseException:
            # Interrupted or too slow: the command must not outlive the database it writes to.
            process.kill()
            raise
    return code, time.monotonic() - started


def wait_for_indexing(server: meili.MeiliServer) -> None:
    """Meilisearch applies documents asynchronously: wait until no task is pending."""
    deadline = time.monotonic() + INDEXING_TIMEOUT_SECONDS
    headers = {"Authorization": f"Bearer {server.master_key}"}
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{server.url}/tasks",
            params={"statuses": "enqueued,processing", "limit": 1},
            headers=headers,
            timeout=10,
        )
        response.raise_for_status()
        if not response.json().get("results"):
            return
        time.sleep(0.5)
    raise CheckFailed(f"Meilisearch still indexing after {INDEXING_TIMEOUT_SECONDS:.0f}s")


def failed_meili_tasks(server: meili.MeiliServer) -> list[str]:
    response = httpx.get(
        f"{server.url}/tasks",
        params={"statuses": "failed", "limit": 20},
        headers={"Authorization": f"Bearer {server.master_key}"},
        timeout=10,
    )
    response.raise_for_status()
    return [
        f"task {task.get('uid')} {task.get('type')} on {task.get('indexUid')}: "
        f"{(task.get('error') or {}).get('message')}"
        for task in response.json().get("results", [])
    ]


def print_counts(sites: list[Site], readme: dict[str, dict[str, str]]) -> None:
    for site in sites:
        if site.dump is None or site.db is None:
            continue
        table = Table(title=f"{site.name} → forum {site.forum_slug} (source {site.source})")
        table.add_column("what")
        table.add_column("dump XML", justify="right")
        table.add_column("database", justify="right")
        table.add_column("", justify="center")
        table.add_column("data README", justify="right", style="dim")
        documented = readme.get(site.name, {})
        for key, label in Counts.labels():
            dump_value, db_value = getattr(site.dump, key), getattr(site.db, key)
            mark = "[green]ok[/]" if dump_value == db_value else "[bold red]DIFF[/]"
            noted = documented.get(key, "-")
            if noted != "-" and noted != str(dump_value):
                noted = f"{noted} (≠ dump)"
            table.add_row(label, f"{dump_value:,}", f"{db_value:,}", mark, noted)
        console.print(table)


def check_pages(
    client: TestClient, engine: Engine, sites: list[Site], rng: random.Random, per_site: int
) -> None:
    """A sample of thread pages per site: the title, the accepted answer's card marked as
    accepted, a duplicate's link to its original."""
    for site in sites:
        if site.forum_id is None:
            continue
        response = client.get(f"/b/{BRAND}/{site.forum_slug}")
        FAILURES.check(
            response.status_code == 200,
            f"{site.name}: forum page /b/{BRAND}/{site.forum_slug} → {response.status_code}",
        )
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, title, accepted_post_id, duplicate_of_id FROM threads "
                    "WHERE forum_id = :forum_id ORDER BY id"
                ),
                {"forum_id": site.forum_id},
            ).all()
        if not rows:
            FAILURES.check(False, f"{site.name}: no threads to render")
            continue
        accepted = [row for row in rows if row.accepted_post_id is not None]
        duplicates = [row for row in rows if row.duplicate_of_id is not None]
        chosen = {row.id: row for row in rng.sample(accepted, min(len(accepted), per_site // 2))}
        for row in rng.sample(duplicates, min(len(duplicates), 2)):
            chosen.setdefault(row.id, row)
        others = [row for row in rows if row.id not in chosen]
        for row in rng.sample(others, min(len(others), max(per_site - len(chosen), 0))):
            chosen[row.id] = row
        rendered = 0
        for row in sorted(chosen.values(), key=lambda item: item.id):
            started = time.monotonic()
            response = client.get(f"/t/{row.id}")
            elapsed_ms = (time.monotonic() - started) * 1000
            where = f"{site.name}: /t/{row.id} ({row.title!r})"
            if not FAILURES.check(response.status_code == 200, f"{where} → {response.status_code}"):
                continue
            body = response.text
            ok = FAILURES.check(str(escape(row.title)) in body, f"{where}: title not on the page")
            if row.accepted_post_id is not None:
                marker = ACCEPTED_CARD.format(post_id=row.accepted_post_id)
                ok &= FAILURES.check(
                    re.search(marker, body) is not None and "Accepted answer" in body,
                    f"{where}: accepted answer post {row.accepted_post_id} not shown as accepted",
                )
            if row.duplicate_of_id is not None:
                ok &= FAILURES.check(
                    f'href="/t/{row.duplicate_of_id}"' in body,
                    f"{where}: duplicate of thread {row.duplicate_of_id}, which it does not link",
                )
            notes = []
            if row.accepted_post_id is not None:
                notes.append(f"accepted post {row.accepted_post_id}")
            if row.duplicate_of_id is not None:
                notes.append(f"duplicate of {row.duplicate_of_id}")
            status = "[green]ok[/]" if ok else "[red]bad[/]"
            console.print(
                f"  {status} /t/{row.id} {elapsed_ms:5.0f} ms  {row.title[:70]}"
                + (f"  [dim]({', '.join(notes)})[/]" if notes else "")
            )
            rendered += ok
        console.print(f"{site.name}: {rendered}/{len(chosen)} pages rendered as expected")


WORD = re.compile(r"[^\W\d_]+")


def with_typo(title: str, rng: random.Random) -> tuple[str, str, str]:
    """The title with one typo in one word of 5+ letters: (query, original word, typo'd).

    Inner letters only, and the word stays 5+ letters long: that is the typo a search engine
    is expected to forgive (Meilisearch's default: one typo from 5 letters, none on the first).
    """
    match = rng.choice(typo_words(title))
    word = match.group()
    swaps = [i for i in range(1, len(word) - 2) if word[i].lower() != word[i + 1].lower()]
    if swaps and (len(word) < 6 or rng.random() < 0.5):
        i = rng.choice(swaps)
        typo = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    else:
        i = rng.randrange(1, len(word) - 1)
        typo = word[:i] + word[i + 1 :]
    return title[: match.start()] + typo + title[match.end() :], word, typo


QUOTED = re.compile(r'"[^"]*"')


def typo_words(title: str) -> list[re.Match[str]]:
    """Words of 5+ letters outside "quotes": Meilisearch reads a quoted part as an exact
    phrase (no typo tolerance, by design), so a typo there says nothing about the import."""
    quoted = [match.span() for match in QUOTED.finditer(title)]
    return [
        match
        for match in WORD.finditer(title)
        if len(match.group()) >= 5
        and not any(start <= match.start() < end for start, end in quoted)
    ]


def searchable(title: str) -> bool:
    """At least three words of 5+ letters, one of which can take the typo."""
    return sum(1 for word in WORD.findall(title) if len(word) >= 5) >= 3 and bool(typo_words(title))


@dataclass
class SearchResult:
    site: str
    thread_id: int
    title: str
    query: str
    rank: int | None


def check_search(
    client: TestClient,
    engine: Engine,
    sites: list[Site],
    rng: random.Random,
    total: int,
    top: int,
) -> list[SearchResult]:
    """Search `total` titles (spread over the sites) with a typo each; every thread in the top."""
    candidates: dict[str, list[tuple[int, str]]] = {}
    with engine.connect() as conn:
        for site in sites:
            if site.forum_id is None:
                continue
            rows = conn.execute(
                text("SELECT id, title FROM threads WHERE forum_id = :forum_id ORDER BY id"),
                {"forum_id": site.forum_id},
            ).all()
            candidates[site.name] = [(row.id, row.title) for row in rows if searchable(row.title)]
    names = [name for name, found in candidates.items() if found]
    if not names:
        FAILURES.check(False, "search: no imported title has three words of 5+ letters")
        return []
    picks: list[tuple[str, int, str]] = []
    shares = {name: total // len(names) + (index < total % len(names)) for index, name in
              enumerate(names)}  # fmt: skip
    for name in names:
        chosen = rng.sample(candidates[name], min(shares[name], len(candidates[name])))
        picks.extend((name, thread_id, title) for thread_id, title in chosen)
    FAILURES.check(
        len(picks) == total, f"search: only {len(picks)} searchable titles, {total} wanted"
    )
    results: list[SearchResult] = []
    for site_name, thread_id, title in picks:
        query, word, typo = with_typo(title, rng)
        response = client.get(
            f"/api/v1/brands/{BRAND}/search",
            params={"q": query, "scope": "community", "per_page": top},
        )
        if not FAILURES.check(
            response.status_code == 200, f"search {query!r} → {response.status_code}"
        ):
            continue
        payload = response.json()
        FAILURES.check(
            not payload.get("degraded"),
            f"search {query!r}: degraded (database fallback, Meilisearch not used)",
        )
        rank = None
        for position, hit in enumerate(payload.get("hits", []), start=1):
            if hit.get("entry_id") == thread_id or hit.get("url", "").rstrip("/").endswith(
                f"/t/{thread_id}"
            ):
                rank = position
                break
        results.append(SearchResult(site_name, thread_id, title, query, rank))
        shown = f"#{rank}" if rank else "[bold red]missing[/]"
        console.print(
            f"  {shown:>4} {site_name[:14]:<14} /t/{thread_id:<6} {query!r}  "
            f"[dim]({word} → {typo}; {payload.get('total')} hits)[/]"
        )
        if rank is None:
            top_titles = [hit.get("title") for hit in payload.get("hits", [])[:3]]
            FAILURES.check(
                False,
                f"search: {query!r} ({site_name}, thread {thread_id}, title {title!r}) not in "
                f"the top {top}; first hits: {top_titles}",
            )
    return results


FAILURES = Failures()


class OncePerError(logging.Filter):
    """The app logs a traceback per failed request; the same error on 10 pages is one story."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or record.exc_info[1] is None:
            return True
        error = record.exc_info[1]
        key = f"{type(error).__name__}: {error}"
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def sample(seed: int) -> random.Random:
    """Reproducible choices (one generator per check, so changing one leaves the other)."""
    return random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM (CI timeouts) into an exception so the cleanup below still runs.
    raise KeyboardInterrupt(f"signal {signum}")


def main(
    data_dir: Annotated[
        Path, typer.Option(help="Folder with one Stack Exchange dump per subfolder")
    ] = DEFAULT_DATA_DIR,
    pages: Annotated[int, typer.Option(help="Thread pages to render per site")] = 10,
    queries: Annotated[int, typer.Option(help="Titles to search (with a typo)")] = 20,
    top: Annotated[int, typer.Option(help="Each searched thread must be in this many hits")] = 10,
    seed: Annotated[int, typer.Option(help="Seed for the sampled pages and queries")] = SEED,
) -> None:
    """Import the real dumps into a throwaway database and check counts, pages and search."""
    signal.signal(signal.SIGTERM, _terminate)
    data_dir = data_dir.resolve()
    folders = sorted(
        path for path in data_dir.iterdir() if path.is_dir() and (path / "Posts.xml").exists()
    ) if data_dir.is_dir() else []  # fmt: skip
    if not folders:
        console.print(f"[bold red]error:[/] no Stack Exchange dumps (Posts.xml) in {data_dir}")
        raise typer.Exit(1)
    sites = [
        Site(folder, forum_slug_for(folder.name), f"stackexchange:{folder.name}")
        for folder in folders
    ]
    admin_url = os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER
    started = time.monotonic()
    timings: dict[str, float] = {}
    search_results: list[SearchResult] = []
    cleanups: list[tuple[str, Callable[[], object]]] = []
    try:
        workdir = Path(tempfile.mkdtemp(prefix="check_real_"))
        cleanups.append(("temporary files", lambda: shutil.rmtree(workdir, ignore_errors=True)))
        database = ThrowawayDatabase.create(admin_url)
        cleanups.append((f"database {database.name}", database.drop))
        where = make_url(admin_url)
        console.print(f"database: {database.name} on {where.username}@{where.host}:{where.port}")
        server = meili.start_server(
            meili.find_binary(), workdir / "meili", secrets.token_urlsafe(24)
        )
        cleanups.append(("Meilisearch", server.stop))
        console.print(f"meilisearch: {server.url} (pid {server.process.pid})")
        prefix = f"cr{uuid.uuid4().hex[:8]}_"
        env = {
            **os.environ,
            "DATABASE_URL": database.url,
            "INSTANCE_DIR": str(workdir / "instance"),
            "MEILI_URL": server.url,
            "MEILI_MASTER_KEY": server.master_key,
            "MEILI_INDEX_PREFIX": prefix,
            "COLUMNS": os.environ.get("COLUMNS", "120"),
        }
        community = community_command()

        code, timings["migrate"] = run_logged([community, "migrate"], env, 600)
        if code != 0:
            raise CheckFailed(f"`community migrate` exited with {code}")

        for site in sites:
            console.rule(f"import {site.name}")
            command = [community, "import", "stackexchange", str(site.folder)]
            command += ["--brand", BRAND, "--forum", site.forum_slug]
            code, site.import_seconds = run_logged(command, env, IMPORT_TIMEOUT_SECONDS)
            console.print(f"{site.name}: import took {site.import_seconds:.1f}s (exit {code})")
            # A failed import leaves its site out of the checks; the others still run.
            site.imported = FAILURES.check(
                code == 0, f"the import of {site.name} exited with {code}"
            )

        console.rule("counts: dump XML vs database")
        engine = make_engine(normalise_database_url(database.url))
        cleanups.insert(-1, ("engine", engine.dispose))
        count_started = time.monotonic()
        for site in sites:
            if not site.imported:
                continue
            site.forum_id = forum_id_of(engine, site.forum_slug)
            if not FAILURES.check(
                site.forum_id is not None, f"{site.name}: no forum {BRAND}/{site.forum_slug}"
            ):
                continue
            assert site.forum_id is not None
            site.dump = count_dump(site.folder)
            site.db = db_counts(engine, site.forum_id, site.source)
            for key, label in Counts.labels():
                dump_value, db_value = getattr(site.dump, key), getattr(site.db, key)
                FAILURES.check(
                    dump_value == db_value,
                    f"{site.name}: {label}: dump has {dump_value}, database has {db_value}",
                )
        timings["counts"] = time.monotonic() - count_started
        print_counts(sites, readme_counts(data_dir))

        wait_for_indexing(server)
        for failure in failed_meili_tasks(server):
            FAILURES.check(False, f"Meilisearch {failure}")

        settings = Settings(
            instance_dir=workdir / "app",
            database_url=database.url,
            meili_url=server.url,
            meili_master_key=server.master_key,
            meili_index_prefix=prefix,
            secret_key=secrets.token_urlsafe(32),
            redis_url=None,
            rate_limits_enabled=False,
            log_level="WARNING",
            allowed_hosts="testserver",  # the test client's Host (BASE_URL is the default)
        )
        logging.getLogger("community.core.security").addFilter(OncePerError())
        with TestClient(create_app(settings), base_url="http://testserver") as client:
            console.rule("pages")
            pages_started = time.monotonic()
            check_pages(client, engine, sites, sample(seed), pages)
            timings["pages"] = time.monotonic() - pages_started
            console.rule(f"search: {queries} titles with a typo, each thread in the top {top}")
            search_started = time.monotonic()
            search_results = check_search(client, engine, sites, sample(seed + 1), queries, top)
            timings["search"] = time.monotonic() - search_started
    except CheckFailed as exc:
        FAILURES.check(False, str(exc))
    except KeyboardInterrupt as exc:
        FAILURES.check(False, f"interrupted ({exc or 'Ctrl-C'})")
    finally:
        for label, cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as exc:  # keep cleaning up; say what was left behind
                console.print(f"[yellow]cleanup of {label} failed:[/] {exc}")

    summarize(sites, timings, search_results, queries, top, time.monotonic() - started)
    if FAILURES.items:
        raise typer.Exit(1)


def summarize(
    sites: list[Site],
    timings: dict[str, float],
    results: list[SearchResult],
    queries: int,
    top: int,
    total_seconds: float,
) -> None:
    console.rule("summary")
    table = Table(title="imports")
    table.add_column("site")
    table.add_column("import", justify="right")
    for _key, label in Counts.labels():
        table.add_column(label.split(" (")[0], justify="right")
    for site in sites:
        cells = [site.name, f"{site.import_seconds:.1f}s" if site.import_seconds else "-"]
        for key, _label in Counts.labels():
            if site.db is None or site.dump is None:
                cells.append("-")
                continue
            dump_value, db_value = getattr(site.dump, key), getattr(site.db, key)
            cells.append(
                f"{db_value:,}"
                if dump_value == db_value
                else f"[red]{db_value:,}≠{dump_value:,}[/]"
            )
        table.add_row(*cells)
    console.print(table)
    found = [result.rank for result in results if result.rank is not None]
    if results:
        top5 = sum(1 for rank in found if rank <= 5)
        mean = sum(found) / len(found) if found else 0.0
        console.print(
            f"search: {len(found)}/{queries} in the top {top} (required: all), "
            f"{top5}/{queries} in the top 5, {sum(1 for r in found if r == 1)} first; "
            f"mean rank {mean:.2f}"
        )
    phases = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in timings.items())
    console.print(f"time: {total_seconds:.1f}s in all ({phases})")
    if FAILURES.items:
        console.print(f"[bold red]check-real FAILED[/] ({len(FAILURES.items)} problems):")
        for item in FAILURES.items:
            console.print(f"  - {item}")
    else:
        console.print("[bold green]check-real passed[/]")


if __name__ == "__main__":
    typer.run(main)
