"""Storing a source's records: batched, idempotent, resumable; then counters, scores, search.

Each batch is one transaction that writes the rows and their import keys together, so a run
that stops half way (a crash, Ctrl-C) leaves whole batches only, and running it again resumes:
records that already have a key are skipped. Content comes in visible (it was public at the
source) without notifications, outbox events or moderation screening; counters are recounted
in SQL at the end rather than incremented row by row, and the search indexes are rebuilt beside
the live ones and swapped in, so searchers never see a half-built index.

Aggregates the source has without detail (vote totals, view counts) are written only on rows
this run created: a post imported earlier may have local votes since, which a re-run must not
overwrite. A run that never finished (killed, crashed) did not get as far as its aggregates,
acceptance, scores and triage, so the next run of the same source adopts its rows as its own and
finishes that work: a resumed import ends equal to a clean one. Run one import of a source at
a time.

The steps, in order: `content.py` (users, tags, questions, answers, comments, votes),
`closures.py` (duplicates, closes), `counters.py` (accepted answers, counters) and
`finishing.py` (scores, triage, search index); `keys.py` keeps the import keys.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from community.core.clock import utcnow
from community.core.import_models import ImportRun
from community.core.models import Brand, Forum, Tag
from community.importing import counters, finishing
from community.importing.bulk import batches
from community.importing.closures import store_closures, store_duplicates
from community.importing.content import ContentWriter
from community.importing.keys import RunKeys
from community.importing.records import Part, Skips, Source
from community.importing.report import ImportReport, PartReport, ProgressFn, no_progress
from kb.search import SearchEngine

BATCH = 500
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
ANALYZED_TABLES = (
    "users",
    "tags",
    "threads",
    "thread_tags",
    "posts",
    "post_comments",
    "import_keys",
)
T = TypeVar("T")
Store = Callable[[Session, list[Any], PartReport], None]


class ImportRefused(Exception):
    """The import cannot start as asked (a bad slug, for instance)."""


def ensure_forum(db: Session, brand_slug: str, forum_slug: str, *, forum_name: str) -> Forum:
    """The forum to import into, created (with its brand) when it does not exist yet."""
    for slug in (brand_slug, forum_slug):
        if not _SLUG.match(slug):
            raise ImportRefused(
                f"{slug!r} is not a valid slug (lowercase letters, digits and -, up to 40)"
            )
    brand = db.scalar(select(Brand).where(Brand.slug == brand_slug))
    if brand is None:
        brand = Brand(slug=brand_slug, name=brand_slug.replace("-", " ").title())
        db.add(brand)
        db.flush()
    forum = db.scalar(select(Forum).where(Forum.brand_id == brand.id, Forum.slug == forum_slug))
    if forum is None:
        position = db.scalar(select(func.count()).where(Forum.brand_id == brand.id)) or 0
        forum = Forum(
            brand_id=brand.id,
            slug=forum_slug,
            name=forum_name[:100],
            description=f"Questions and answers brought in from {forum_name}.",
            position=position,
        )
        db.add(forum)
        db.flush()
    return forum


class Importer:
    """One import run of `source` into `forum_id`. Use `run()` once."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        source: Source,
        *,
        forum_id: int,
        search: SearchEngine | None,
        progress: ProgressFn = no_progress,
        batch_size: int = BATCH,
    ) -> None:
        self.session_factory = session_factory
        self.source = source
        self.forum_id = forum_id
        self.search = search
        self.progress = progress
        self.batch_size = batch_size
        with session_factory() as db:
            forum = db.get(Forum, forum_id)
            assert forum is not None
            self.brand_id = forum.brand_id
            brand = db.get(Brand, forum.brand_id)
            assert brand is not None
            self.brand_slug, self.forum_slug = brand.slug, forum.slug
            # Runs of this source that stopped before the end: their rows are ours to finish.
            self.adopted_runs = list(
                db.scalars(
                    select(ImportRun.id).where(
                        ImportRun.source == source.name, ImportRun.finished_at.is_(None)
                    )
                )
            )
            run = ImportRun(source=source.name, brand_id=forum.brand_id, forum_id=forum_id)
            db.add(run)
            db.commit()
            self.run_id = run.id
            # The runs whose rows count as created by this one.
            self.keys = RunKeys(source.name, run.id, frozenset([*self.adopted_runs, run.id]))
            tag_ids: dict[str, int] = dict(
                db.execute(select(Tag.name, Tag.id).where(Tag.brand_id == forum.brand_id)).all()
            )
        self.content = ContentWriter(self.keys, forum_id, self.brand_id, tag_ids)
        self.report = ImportReport(
            source=source.name, run_id=self.run_id, brand=self.brand_slug, forum=self.forum_slug
        )

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> ImportReport:
        steps: list[tuple[Callable[[], Part[Any]], Store]] = [
            (self.source.users, self.content.users),
            (self.source.tags, self.content.tags),
            (self.source.questions, self.content.questions),
            (self.source.answers, self.content.answers),
            (self.source.comments, self.content.comments),
            (self.source.votes, self.content.votes),
            (self.source.duplicates, partial(store_duplicates, self.keys)),
            # After the duplicates (a duplicate close with a link is theirs) and before the
            # recount, which turns reopened threads open/answered/solved and leaves closed ones.
            (self.source.closures, partial(store_closures, self.keys)),
        ]
        for make_part, store in steps:
            started = time.perf_counter()
            part = make_part()
            report = PartReport(label=part.label)
            self.report.parts.append(report)
            self._consume(part, report, store)
            self._analyze()
            self.report.seconds[part.label] = time.perf_counter() - started
        started = time.perf_counter()
        with self.session_factory() as db:
            counters.accept_answers(db, self.keys)
            counters.recount(db, self.forum_id, self.brand_id)
            db.commit()
        self.report.seconds["counters"] = time.perf_counter() - started
        started = time.perf_counter()
        self.report.rescored = finishing.rescore(
            self.session_factory, self.keys, self.progress, self.batch_size
        )
        self.report.seconds["scores"] = time.perf_counter() - started
        self._triage_and_index()
        self._close_run()
        return self.report

    def _consume(
        self,
        part: Part[T],
        report: PartReport,
        store: Callable[[Session, list[T], PartReport], None],
    ) -> None:
        self.progress(part.label, 0, part.size, 0)
        for batch in batches(part.records, self.batch_size):
            report.read += len(batch)
            with self.session_factory() as db:
                store(db, batch, report)
                db.commit()
            self.progress(part.label, part.position(), part.size, report.read)
        self._merge_skips(report, part.skips)
        # Rows read = imported + skipped, whatever a part counts in (votes count votes).
        report.read = report.imported + sum(report.skipped.values())
        done = part.size if part.size is not None else part.position()
        self.progress(part.label, done, done, report.read)

    def _analyze(self) -> None:
        """Fresh planner statistics on PostgreSQL. Tables that grew from nothing in minutes
        still look empty to the planner, which then joins them with nested loops over the whole
        table, making later parts quadratic."""
        with self.session_factory() as db:
            if db.get_bind().dialect.name == "postgresql":
                db.execute(text(f"ANALYZE {', '.join(ANALYZED_TABLES)}"))
                db.commit()

    @staticmethod
    def _merge_skips(report: PartReport, skips: Skips) -> None:
        for reason, count in skips.reasons.items():
            report.skip(reason, count)

    # --- after the parts -------------------------------------------------------------------

    def _triage_and_index(self) -> None:
        # Triage (our CPU) runs while Meilisearch builds the indexes (its CPU): neither reads
        # what the other writes, and the import ends sooner on two cores.
        triage_failed: list[BaseException] = []
        triage = threading.Thread(
            target=self._timed_triage, args=(triage_failed,), name="import-triage"
        )
        triage.start()
        try:
            if self.search is not None:
                started = time.perf_counter()
                self.report.indexed = finishing.reindex(
                    self.session_factory, self.search, self.brand_id, self.progress
                )
                self.report.seconds["search index"] = time.perf_counter() - started
        finally:
            triage.join()
        if triage_failed:
            raise triage_failed[0]

    def _timed_triage(self, failed: list[BaseException]) -> None:
        started = time.perf_counter()
        try:
            self.report.triaged = finishing.triage(self.session_factory, self.keys, self.progress)
        except BaseException as exc:  # re-raised in the importing thread
            failed.append(exc)
        finally:
            self.report.seconds["triage"] = time.perf_counter() - started

    def _close_run(self) -> None:
        with self.session_factory() as db:
            run = db.get(ImportRun, self.run_id)
            assert run is not None
            run.summary = self.report.as_dict()
            run.finished_at = utcnow()
            # What the stopped runs left undone is done now; a later run must not adopt their
            # rows again (they may have local votes by then).
            db.execute(
                update(ImportRun)
                .where(ImportRun.id.in_(self.adopted_runs), ImportRun.finished_at.is_(None))
                .values(finished_at=run.finished_at, summary={"completed_by_run": self.run_id})
            )
            db.commit()
