"""Search from the command line: rebuilding the indexes, rescoring threads, choosing a brand's
semantic search model, seeing how many documents have their vectors, and making this site's
least-privilege Meilisearch keys. Each command imports what it runs (community.cli's docstring
says why)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from community.cli.terminal import CommandError, console, friendly_errors, progress_bar
from community.core.settings import Settings, load_or_create_secret

if TYPE_CHECKING:
    from rich.progress import TaskID

    from community.core import meili
    from kb import search_model
    from kb.search import SearchEngine


def with_search(settings: Settings) -> tuple[SearchEngine, meili.MeiliServer | None]:
    """The search engine to write to: MEILI_URL, else a managed server started for the command
    (unless `community serve` already runs one for this instance)."""
    from community.core import meili
    from kb.search import SearchEngine

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


@friendly_errors
def reindex(
    brand: Annotated[str | None, typer.Option(help="Only this brand (slug)")] = None,
) -> None:
    """Rebuild the search indexes from the database, then swap them in (no empty moment)."""
    from community.core.db import make_engine, make_session_factory
    from kb.reindex import reindex_all
    from kb.search import SearchUnavailable

    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    search, server = with_search(settings)
    try:
        with progress_bar() as bar:
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


@friendly_errors
def keys() -> None:
    """Create (or find) this site's two Meilisearch keys with the master key and print them for
    an env file: MEILI_SEARCH_KEY for the web processes (search only), MEILI_WRITE_KEY for the
    workers and indexing commands (index writes only); both reach only the indexes named
    MEILI_INDEX_PREFIX*. Running it again prints the same keys."""
    import httpx

    from community.core import meili

    settings = Settings()
    if not settings.meili_url or not settings.meili_master_key:
        raise CommandError(
            "set MEILI_URL and MEILI_MASTER_KEY: the keys are made on your own Meilisearch "
            "server with its master key (the managed local server needs none)"
        )
    try:
        made = meili.find_or_create_site_keys(
            settings.meili_url, settings.meili_master_key, settings.meili_index_prefix
        )
    except httpx.HTTPError as exc:
        raise CommandError(f"Meilisearch at {settings.meili_url}: {exc}") from exc
    except meili.KeyRequestFailed as exc:
        raise CommandError(str(exc)) from exc
    # Plain lines on stdout, so `community search keys >> .env` writes an env file.
    print(f"MEILI_SEARCH_KEY={made[meili.SEARCH_KEY]}")
    print(f"MEILI_WRITE_KEY={made[meili.WRITE_KEY]}")


@friendly_errors
def rescore(
    index: Annotated[bool, typer.Option(help="Rebuild the search indexes afterwards")] = True,
) -> None:
    """Recompute every thread's usefulness score and apply KB promotion."""
    from community.core.db import make_engine, make_session_factory
    from kb.reindex import rescore_all

    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with progress_bar() as bar:
            task = bar.add_task("rescoring threads", total=None)

            def report(_label: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=max(total, 1))

            count = rescore_all(make_session_factory(engine), progress=report)
        console.print(f"rescored {count} threads")
    finally:
        engine.dispose()
    if index:
        reindex(brand=None)


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
    from kb import search_model

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
    from sqlalchemy import select

    from community.core.db import begin_write, make_engine, make_session_factory
    from community.core.models import Brand
    from kb import search_model

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


@friendly_errors
def vectors_status() -> None:
    """How many of each brand's documents have their vectors (semantic search)."""
    from sqlalchemy import select

    from community.core.db import make_engine, make_session_factory
    from community.core.models import Brand
    from kb import vector_coverage

    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as db:
            brands = list(db.scalars(select(Brand).order_by(Brand.slug)))
            if not brands:
                raise CommandError("no brand")
            for each in brands:
                coverage = vector_coverage.coverage(db, each, settings.search_model)
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
