"""Bringing a community in: a Stack Exchange dump or a synthetic community, with live progress
and a summary table. The importer loads when a command runs (community.cli's docstring says
why)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
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

from community.cli.search import with_search
from community.cli.terminal import CommandError, console, friendly_errors
from community.core.settings import Settings

if TYPE_CHECKING:
    from community.importing.records import Source
    from community.importing.report import ImportReport


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
    from community.core.db import make_engine, make_session_factory
    from community.importing.service import Importer, ensure_forum
    from kb.search import SearchUnavailable

    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    session_factory = make_session_factory(engine)
    search, server = with_search(settings) if index else (None, None)
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
    from community.importing.stackexchange import StackExchangeDump

    dump = StackExchangeDump(directory, site=site, limit=limit)
    console.print(f"checking {directory} ...")
    dump.validate()
    _run_import(dump, brand=brand, forum=forum, index=index)


@friendly_errors
def seed(
    scale: Annotated[int, typer.Option(min=1, max=5_000_000, help="How many threads")],
    brand: Annotated[str, typer.Option(help="Brand slug (created if missing)")] = "synthetic",
    forum: Annotated[str, typer.Option(help="Forum slug (created if missing)")] = "general",
    random_seed: Annotated[int, typer.Option("--seed", help="Same seed, same data")] = 1,
    index: Annotated[bool, typer.Option(help="Rebuild the brand's search indexes after")] = True,
) -> None:
    """Generate a synthetic community of N threads (for benchmarks beyond the real data)."""
    from community.importing.synthetic.source import SyntheticSource

    _run_import(SyntheticSource(scale, seed=random_seed), brand=brand, forum=forum, index=index)
