"""The long-running processes: the web server (with its embedded worker and managed
Meilisearch, or N production web processes: community.cli.serving), the standalone worker, and
the managed Meilisearch on its own.

Each command imports what it runs (community.cli's docstring says why): the supervisor of
`serve --workers` never loads the site, the worker never loads the web app.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from community.cli.terminal import CommandError, console, friendly_errors
from community.core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from community.core import meili
    from kb.search import SearchEngine


@friendly_errors
def serve(
    host: Annotated[str, typer.Option(envvar="HOST", help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to bind")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Production: this many web processes, no embedded worker (run `community "
            "worker` beside), MEILI_URL required",
        ),
    ] = None,
) -> None:
    """Serve the site. Without MEILI_URL, also runs a managed local Meilisearch."""
    settings = Settings()
    if workers is not None:
        from community.cli.serving import serve_processes

        serve_processes(settings, host, port, workers)
        return
    import uvicorn

    from community.app import create_app
    from community.cli.serving import server_options
    from community.core import meili
    from community.worker import Worker, start_in_background
    from kb.search import SearchEngine

    server: meili.MeiliServer | None = None
    if settings.uses_managed_meili:
        server = meili.start_managed(settings)
        settings.meili_url = server.url
        settings.meili_master_key = server.master_key
        console.print(f"meilisearch: managed server on {server.url}")
    worker_stop: threading.Event | None = None
    try:
        application = create_app(settings)
        if settings.meili_write_key or settings.meili_master_key:
            # The app's own engine may only search: rebuilding writes, with the writer's key.
            _rebuild_missing_indexes(application.state.session_factory, SearchEngine(settings))
        if settings.embedded_worker:
            embedded = Worker(settings, application.state.session_factory)
            _thread, worker_stop = start_in_background(embedded)
            console.print("worker: running in this process (EMBEDDED_WORKER=false to disable)")
        config = uvicorn.Config(application, **server_options(settings, host, port))
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
    from sqlalchemy import select

    from community.core.models import Brand
    from kb.reindex import reindex_all
    from kb.search import SearchUnavailable

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


@friendly_errors
def worker() -> None:
    """Run the background worker (outbox, e-mail, sweeps) until Ctrl-C or SIGTERM.

    Run as many as you like beside the web processes on PostgreSQL; on SQLite prefer the
    embedded worker of `community serve`."""
    from community.core.db import make_engine, make_session_factory
    from community.core.logs import configure_logging
    from community.worker import Worker

    settings = Settings()
    configure_logging(settings)
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


@friendly_errors
def meili_status() -> None:
    """Which binary would run, its version, and whether a managed server is running."""
    from community.core import meili

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


@friendly_errors
def meili_start() -> None:
    """Run the managed Meilisearch in the foreground until Ctrl-C."""
    from community.core import meili

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


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@friendly_errors
def model_server(
    socket_path: Annotated[
        str | None,
        typer.Option("--socket", help="Listen on this Unix socket (in a directory of your own)"),
    ] = None,
    host: Annotated[str, typer.Option(help="Or on this loopback address...")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="...and port")] = None,
    parent_pid: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Serve query vectors and language guesses to this machine's web processes (MODEL_SERVER),
    so that each does not load the models. `serve --workers` starts one by itself."""
    if (socket_path is None) == (port is None):
        raise CommandError("give --socket PATH or --port N (one of them)")
    if port is not None and host not in LOOPBACK_HOSTS:
        # Anyone who reaches it may spend this machine's CPU on it: it is for local processes.
        raise CommandError("the model server listens on loopback only (127.0.0.1, ::1)")
    import uvicorn

    from community.cli.serving import die_with_parent, server_options
    from community.core.logs import configure_logging
    from kb.model_server import create_model_app

    if parent_pid is not None:  # started by `serve --workers`: it must not outlive it
        die_with_parent(parent_pid)

    settings = Settings()
    configure_logging(settings)
    # No access log: a line per search or question would drown the web processes' own.
    options = server_options(settings, host, port or 0) | {"access_log": False}
    if socket_path is not None:
        options |= {"uds": socket_path}
    config = uvicorn.Config(create_model_app(settings.search_model), **options)
    console.print(f"model server: listening on {socket_path or f'{host}:{port}'}")
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()
