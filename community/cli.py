"""The `community` command. Expected failures print one line (`error: ...`) and exit 1."""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from community.app import create_app
from community.core import meili, service
from community.core import migrate as migrations
from community.core.auth import Passwords
from community.core.db import begin_write, make_engine, make_session_factory
from community.core.errors import FormErrors
from community.core.models import Brand, Role
from community.core.schemas import RegistrationIn
from community.core.settings import Settings, load_or_create_secret
from community.demo import has_any_brand
from community.demo import seed_demo as load_demo
from community.importing.records import Source
from community.importing.report import ImportReport
from community.importing.service import Importer, ImportRefused, ensure_forum
from community.importing.stackexchange import DumpError, StackExchangeDump
from community.importing.synthetic.source import SyntheticSource
from community.wiring import subscribe_all
from community.worker import Worker, start_in_background
from kb import search_model, vectors
from kb.reindex import reindex_all, rescore_all
from kb.search import SearchEngine, SearchUnavailable

app = typer.Typer(
    help="Run and manage the support community.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
meili_app = typer.Typer(help="The managed local Meilisearch (used when MEILI_URL is not set).")
app.add_typer(meili_app, name="meili")
import_app = typer.Typer(help="Bring an existing community in.", no_args_is_help=True)
app.add_typer(import_app, name="import")
vectors_app = typer.Typer(help="Semantic search's document vectors.", no_args_is_help=True)
app.add_typer(vectors_app, name="vectors")

console = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


class CommandError(Exception):
    """An expected failure with a message for the person at the terminal."""


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CommandError as exc:
            raise _fail(str(exc)) from None
        except meili.MeiliUnavailable as exc:
            raise _fail(str(exc)) from None
        except (DumpError, ImportRefused) as exc:
            raise _fail(str(exc)) from None
        except FormErrors as exc:
            raise _fail("; ".join(f"{k}: {v}" for k, v in exc.errors.items())) from None
        except OperationalError as exc:
            raise _fail(f"cannot reach the database: {exc.orig}") from None
        except SQLAlchemyError as exc:
            raise _fail(f"database error: {exc}") from None

    return wrapper


@app.command(name="migrate")
@friendly_errors
def migrate_database() -> None:
    """Apply the database migrations (alembic upgrade head): says whether the database was
    created, upgraded (from which version to which) or already up to date."""
    settings = Settings()
    console.print(migrations.upgrade(settings.sqlalchemy_url).describe())


@app.command(name="seed-demo")
@friendly_errors
def seed_demo(
    force: Annotated[
        bool, typer.Option(help="Load the demo even if the database already has a brand.")
    ] = False,
) -> None:
    """Load the demo brand (Acme) once; does nothing if the database already has a brand."""
    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as db:
            if has_any_brand(db) and not force:
                console.print("demo data: already loaded (the database has a brand)")
                return
            brand = load_demo(db, Passwords(settings))
            db.commit()
            console.print(f"demo data: loaded brand {brand.name!r}")
    finally:
        engine.dispose()


@app.command(name="create-user")
@friendly_errors
def create_user(
    username: Annotated[str, typer.Option(help="Login name")],
    email: Annotated[str, typer.Option(help="E-mail address")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="COMMUNITY_USER_PASSWORD",
            help="Asked for when not given (or COMMUNITY_USER_PASSWORD)",
        ),
    ],
    role: Annotated[Role, typer.Option(help="member, moderator, agent or admin")] = Role.MEMBER,
    display_name: Annotated[str, typer.Option(help="Shown name")] = "",
) -> None:
    """Create an account (for example the first admin)."""
    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as db:
            data = RegistrationIn(
                username=username, email=email, password=password, display_name=display_name
            )
            user = service.register(db, Passwords(settings), data, role=role)
            db.commit()
            console.print(f"created {user.role.value} {user.username!r} (id {user.id})")
    finally:
        engine.dispose()


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(envvar="HOST", help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to bind")] = 8000,
) -> None:
    """Serve the site. Without MEILI_URL, also runs a managed local Meilisearch."""
    settings = Settings()
    server: meili.MeiliServer | None = None
    if settings.uses_managed_meili:
        server = meili.start_managed(settings)
        settings.meili_url = server.url
        settings.meili_master_key = server.master_key
        console.print(f"meilisearch: managed server on {server.url}")
    worker_stop: threading.Event | None = None
    try:
        application = create_app(settings)
        _rebuild_missing_indexes(application.state.session_factory, application.state.search)
        if settings.embedded_worker:
            embedded = Worker(settings, application.state.session_factory)
            _thread, worker_stop = start_in_background(embedded)
            console.print("worker: running in this process (EMBEDDED_WORKER=false to disable)")
        config = uvicorn.Config(
            application,
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            proxy_headers=bool(settings.trusted_proxy_list),
            forwarded_allow_ips=settings.trusted_proxy_list or None,
            server_header=False,
        )
        console.print(f"serving on http://{host}:{port} (Ctrl-C to stop)")
        with contextlib.suppress(KeyboardInterrupt):
            # uvicorn re-raises Ctrl-C after its graceful shutdown; stopping is what we want.
            uvicorn.Server(config).run()
    finally:
        if worker_stop is not None:
            worker_stop.set()
        if server is not None:
            server.stop()
            console.print("meilisearch: stopped")


def _rebuild_missing_indexes(session_factory: sessionmaker[Session], search: SearchEngine) -> None:
    """A brand whose indexes are gone (new Meilisearch, lost data) is indexed before serving."""
    with session_factory() as db:
        slugs = list(db.scalars(select(Brand.slug).order_by(Brand.id)))
    for slug in slugs:
        try:
            if search.has_index(search.threads_index(slug)):
                continue
            console.print(f"search: building the indexes of {slug}")
            reindex_all(session_factory, search, brand_slug=slug)
        except SearchUnavailable as exc:
            console.print(f"search: unavailable ({exc}); the worker will catch up later")
            return


@app.command()
@friendly_errors
def worker() -> None:
    """Run the background worker (outbox, e-mail, sweeps) until Ctrl-C or SIGTERM.

    Run as many as you like beside the web processes on PostgreSQL; on SQLite prefer the
    embedded worker of `community serve`."""
    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    background = Worker(settings, make_session_factory(engine))
    console.print(f"worker {background.worker_id}: started (Ctrl-C to stop)")
    try:
        background.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        engine.dispose()
        console.print("worker: stopped")


def _with_search(settings: Settings) -> tuple[SearchEngine, meili.MeiliServer | None]:
    """The search engine to write to: MEILI_URL, else a managed server started for the command
    (unless `community serve` already runs one for this instance)."""
    server = None
    if settings.uses_managed_meili:
        running = meili.managed_status(settings)
        if running:
            settings.meili_url = running
            settings.meili_master_key = load_or_create_secret(
                settings.instance_path / meili.MASTER_KEY_FILE
            )
        else:
            server = meili.start_managed(settings)
            settings.meili_url, settings.meili_master_key = server.url, server.master_key
    return SearchEngine(settings), server


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@app.command()
@friendly_errors
def reindex(
    brand: Annotated[str | None, typer.Option(help="Only this brand (slug)")] = None,
) -> None:
    """Rebuild the search indexes from the database, then swap them in (no empty moment)."""
    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    search, server = _with_search(settings)
    try:
        with _progress_bar() as bar:
            tasks: dict[str, TaskID] = {}

            def report(label: str, done: int, total: int) -> None:
                if label not in tasks:
                    tasks[label] = bar.add_task(f"indexing {label}", total=max(total, 1))
                bar.update(tasks[label], completed=done, total=max(total, 1))

            results = reindex_all(
                make_session_factory(engine), search, brand_slug=brand, progress=report
            )
        if not results:
            raise CommandError(f"no brand {brand!r}" if brand else "no brand to index")
        for slug, counts in results.items():
            console.print(f"{slug}: {counts.threads} threads, {counts.kb_entries} KB entries")
    except SearchUnavailable as exc:
        raise CommandError(f"Meilisearch: {exc}") from exc
    finally:
        engine.dispose()
        if server is not None:
            server.stop()


@app.command()
@friendly_errors
def rescore(
    index: Annotated[bool, typer.Option(help="Rebuild the search indexes afterwards")] = True,
) -> None:
    """Recompute every thread's usefulness score and apply KB promotion."""
    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with _progress_bar() as bar:
            task = bar.add_task("rescoring threads", total=None)

            def report(_label: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=max(total, 1))

            count = rescore_all(make_session_factory(engine), progress=report)
        console.print(f"rescored {count} threads")
    finally:
        engine.dispose()
    if index:
        reindex(brand=None)


class RowsPerSecond(ProgressColumn):
    """Rows read so far and the rate, from the task's `rows` field."""

    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        elapsed = task.elapsed or 0.0
        rate = f"{rows / elapsed:,.0f} rows/s" if elapsed > 0 else "- rows/s"
        return Text(f"{rows:,} rows  {rate}", style="progress.data.speed")


def _summary_table(report: ImportReport) -> Table:
    table = Table(title=f"{report.source} -> {report.brand}/{report.forum} (run {report.run_id})")
    for column in ("part", "read", "imported", "skipped", "why skipped", "seconds"):
        table.add_column(column, justify="right" if column in ("read", "imported") else "left")
    for part in report.parts:
        reasons = "\n".join(
            [f"{count:,} {reason}" for reason, count in part.skipped.items()]
            + [f"(note: {count:,} {what})" for what, count in part.notes.items()]
        )
        table.add_row(
            part.label,
            f"{part.read:,}",
            f"{part.imported:,}",
            f"{sum(part.skipped.values()):,}",
            reasons,
            f"{report.seconds.get(part.label, 0):.1f}",
        )
    table.add_row("scores", "", f"{report.rescored:,}", "", "", f"{report.seconds['scores']:.1f}")
    table.add_row("triage", "", f"{report.triaged:,}", "", "", f"{report.seconds['triage']:.1f}")
    if "search index" in report.seconds:
        table.add_row(
            "search index", "", f"{report.indexed:,}", "", "",
            f"{report.seconds['search index']:.1f}",
        )  # fmt: skip
    return table


def _run_import(source: Source, *, brand: str, forum: str, index: bool) -> ImportReport:
    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    session_factory = make_session_factory(engine)
    search, server = _with_search(settings) if index else (None, None)
    try:
        with session_factory() as db:
            target = ensure_forum(db, brand, forum, forum_name=source.site_label)
            db.commit()
            forum_id = target.id
        bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            RowsPerSecond(),
            TimeElapsedColumn(),
            console=console,
        )
        tasks: dict[str, TaskID] = {}

        def report(label: str, position: int, size: int | None, rows: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=size, rows=0)
            bar.update(tasks[label], completed=position, total=size, rows=rows)
            if size is not None and position >= size:
                bar.stop_task(tasks[label])  # so the rate is over the part's own time

        with bar:
            result = Importer(
                session_factory, source, forum_id=forum_id, search=search, progress=report
            ).run()
        console.print(_summary_table(result))
        return result
    except SearchUnavailable as exc:
        raise CommandError(f"Meilisearch: {exc}") from exc
    finally:
        engine.dispose()
        if server is not None:
            server.stop()


@import_app.command("stackexchange")
@friendly_errors
def import_stackexchange(
    directory: Annotated[
        Path, typer.Argument(help="The dump's folder (Posts.xml, Users.xml, ...)")
    ],
    brand: Annotated[str, typer.Option(help="Brand slug (created if missing)")],
    forum: Annotated[str, typer.Option(help="Forum slug (created if missing)")],
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N questions (and their answers)")
    ] = None,
    site: Annotated[
        str | None, typer.Option(help="The site's host name, for attribution (default: folder)")
    ] = None,
    index: Annotated[bool, typer.Option(help="Rebuild the brand's search indexes after")] = True,
) -> None:
    """Import a Stack Exchange data dump. Safe to re-run: what is already here is skipped."""
    dump = StackExchangeDump(directory, site=site, limit=limit)
    console.print(f"checking {directory} ...")
    dump.validate()
    _run_import(dump, brand=brand, forum=forum, index=index)


@app.command()
@friendly_errors
def seed(
    scale: Annotated[int, typer.Option(min=1, max=5_000_000, help="How many threads")],
    brand: Annotated[str, typer.Option(help="Brand slug (created if missing)")] = "synthetic",
    forum: Annotated[str, typer.Option(help="Forum slug (created if missing)")] = "general",
    random_seed: Annotated[int, typer.Option("--seed", help="Same seed, same data")] = 1,
    index: Annotated[bool, typer.Option(help="Rebuild the brand's search indexes after")] = True,
) -> None:
    """Generate a synthetic community of N threads (for benchmarks beyond the real data)."""
    _run_import(SyntheticSource(scale, seed=random_seed), brand=brand, forum=forum, index=index)


# --- semantic search ---------------------------------------------------------------------------

HTTP_OPTIONS = (
    "url",
    "dimensions",
    "request_format",
    "response_path",
    "model",
    "timeout_seconds",
    "batch_size",
    "allow_private",
)


def _http_fields(
    pairs: list[str], authorization: str | None, clear: bool
) -> search_model.HttpFields:
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key.strip() not in HTTP_OPTIONS:
            raise CommandError(
                f"--option {pair!r}: use key=value with a key among {', '.join(HTTP_OPTIONS)}"
            )
        values[key.strip()] = value.strip()
    allow = values.pop("allow_private", "no").lower()
    if allow not in ("yes", "no", "true", "false", "1", "0"):
        raise CommandError("--option allow_private=: use yes or no")
    return search_model.HttpFields(
        url=values.get("url", ""),
        dimensions=values.get("dimensions", ""),
        request_format=values.get("request_format", "texts"),
        response_path=values.get("response_path"),
        model=values.get("model"),
        timeout_seconds=values.get("timeout_seconds", ""),
        batch_size=values.get("batch_size", ""),
        allow_private=allow in ("yes", "true", "1"),
        authorization=authorization,
        clear_authorization=clear,
    )


def _describe_model(slug: str, described: search_model.ModelSettings) -> None:
    chosen = described.choice or f"default ({described.site_default})"
    embedders = ", ".join(described.embedders) or "none (lexical only)"
    console.print(f"{slug}: {chosen}; embedders: {embedders}", highlight=False, soft_wrap=True)
    if described.http is not None:
        shown = ", ".join(f"{key}={value}" for key, value in sorted(described.http.items()))
        secret = "set" if described.authorization_set else "not set"
        console.print(f"  {shown}; Authorization header {secret}", highlight=False, soft_wrap=True)
    coverage = described.coverage
    console.print(
        f"  {coverage.with_vectors:,} of {coverage.documents:,} documents have vectors",
        highlight=False,
        soft_wrap=True,
    )


@app.command(name="search-model")
@friendly_errors
def search_model_command(
    brand: Annotated[str, typer.Argument(help="Brand slug")],
    model: Annotated[
        str | None,
        typer.Argument(
            help="auto, use-multilingual, minilm, http, off, or default (the site's "
            "SEARCH_MODEL); without it, show the brand's model"
        ),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help=f"For http, key=value (repeatable): {', '.join(HTTP_OPTIONS)}",
        ),
    ] = None,
    authorization: Annotated[
        str | None,
        typer.Option(
            envvar="COMMUNITY_EMBEDDER_AUTHORIZATION",
            help="For http: the Authorization header's value, e.g. 'Bearer ...' (or "
            "COMMUNITY_EMBEDDER_AUTHORIZATION); the stored one is kept when not given",
        ),
    ] = None,
    clear_authorization: Annotated[
        bool, typer.Option(help="For http: remove the stored Authorization header")
    ] = False,
) -> None:
    """Show or choose a brand's semantic search model, checked like the admin page; the
    worker then updates the brand's indexes and computes the documents' vectors."""
    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as db:
            begin_write(db)
            found = db.scalar(select(Brand).where(Brand.slug == brand))
            if found is None:
                raise CommandError(f"no brand {brand!r}")
            if model is not None:
                if model != search_model.HTTP and option:
                    raise CommandError("--option is for the http model only")
                # Only the http model has a header: anything else drops it with its options.
                fields = _http_fields(option or [], authorization, clear_authorization)
                saved = search_model.do_set_search_model(
                    db, None, found, model, fields, default_model=settings.search_model
                )
                db.commit()
                if not saved.changed:
                    console.print(f"{brand}: unchanged", highlight=False, soft_wrap=True)
                else:
                    console.print(
                        f"{brand}: saved; {saved.missing + saved.resent:,} documents queued for "
                        "vectors (the worker updates the indexes and computes them)",
                        highlight=False,
                        soft_wrap=True,
                    )
            _describe_model(brand, search_model.describe(db, found, settings.search_model))
    finally:
        engine.dispose()


@vectors_app.command("status")
@friendly_errors
def vectors_status() -> None:
    """How many of each brand's documents have their vectors (semantic search)."""
    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as db:
            brands = list(db.scalars(select(Brand).order_by(Brand.slug)))
            if not brands:
                raise CommandError("no brand")
            for each in brands:
                coverage = vectors.coverage(db, each, settings.search_model)
                chosen = each.search_model or f"default ({settings.search_model})"
                if not coverage.models:
                    console.print(f"{each.slug}: {chosen}: lexical only", soft_wrap=True)
                    continue
                state = "complete" if coverage.complete else "catching up"
                console.print(
                    f"{each.slug}: {chosen} ({', '.join(coverage.models)}): "
                    f"{coverage.with_vectors:,} of {coverage.documents:,} documents have "
                    f"vectors, {state}",
                    highlight=False,
                    soft_wrap=True,
                )
    finally:
        engine.dispose()


@meili_app.command("status")
@friendly_errors
def meili_status() -> None:
    """Which binary would run, its version, and whether a managed server is running."""
    settings = Settings()
    if settings.meili_url:
        healthy = meili.is_healthy(settings.meili_url)
        console.print(f"MEILI_URL={settings.meili_url}: {'healthy' if healthy else 'unreachable'}")
        if not healthy:
            raise CommandError(f"Meilisearch at {settings.meili_url} does not answer")
        return
    binary = meili.find_binary(settings)
    version = subprocess.run(  # noqa: S603 - the resolved binary with a fixed flag
        [str(binary), "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.strip()
    console.print(f"binary: {binary} ({version or 'version unknown'})")
    running = meili.managed_status(settings)
    console.print(f"managed server: {running or 'not running'}")


@meili_app.command("start")
@friendly_errors
def meili_start() -> None:
    """Run the managed Meilisearch in the foreground until Ctrl-C."""
    settings = Settings()
    if settings.meili_url:
        raise CommandError("MEILI_URL is set: this site uses an external Meilisearch")
    server = meili.start_managed(settings)
    console.print(f"meilisearch: running on {server.url} (Ctrl-C to stop)")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    subscribe_all()  # imports and demo data publish posts: moderation and crowd-service listen
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
