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
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar, cast

from sqlalchemy import Table, and_, bindparam, case, func, insert, select, text, update
from sqlalchemy.orm import Session, aliased, selectinload, sessionmaker

from community.clock import utcnow
from community.identity import USERNAME_MAX
from community.importing.models import ImportKey, ImportRun
from community.importing.records import (
    AnswerRecord,
    Closure,
    CommentRecord,
    DuplicateLink,
    Part,
    QuestionRecord,
    Skips,
    Source,
    UserRecord,
    VoteTotals,
)
from community.language import detect_post_language
from community.markdown import HTML_VERSION, render_markdown, sanitize_html
from community.models import (
    Brand,
    Forum,
    Post,
    PostComment,
    Tag,
    Thread,
    ThreadStatus,
    User,
    Visibility,
    thread_tags,
)
from community.threads import TAGS_MAX
from kb import promotion
from kb.models import Solution
from kb.reindex import reindex_brand, request_vectors
from kb.scoring import inputs_from, score
from kb.search import SearchEngine

BATCH = 500
TRIAGE_CHUNK = 5000
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_TAG = re.compile(r"^[^\W_][\w+#.-]{0,29}$")
# Trust levels for imported members, from the reputation their community gave them.
TRUST_BY_REPUTATION = ((1000, 2), (100, 1))
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
THREADS = cast(Table, Thread.__table__)
POSTS = cast(Table, Post.__table__)
TAGS = cast(Table, Tag.__table__)

# (label, position, size, rows): how far a part has got, for a progress bar.
ProgressFn = Callable[[str, int, int | None, int], None]


def _no_progress(_label: str, _position: int, _size: int | None, _rows: int) -> None:
    return None


class ImportRefused(Exception):
    """The import cannot start as asked (a bad slug, for instance)."""


@dataclass
class PartReport:
    label: str
    read: int = 0
    imported: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    # What was left out of rows that were imported (a tag, say): not rows, so not in `read`.
    notes: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def note(self, what: str, count: int = 1) -> None:
        if count:
            self.notes[what] = self.notes.get(what, 0) + count


@dataclass
class ImportReport:
    source: str
    run_id: int
    brand: str
    forum: str
    parts: list[PartReport] = field(default_factory=list)
    rescored: int = 0
    triaged: int = 0
    indexed: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def part(self, label: str) -> PartReport:
        return next(part for part in self.parts if part.label == label)

    def as_dict(self) -> dict[str, Any]:
        return {
            "parts": [
                {
                    "label": p.label,
                    "read": p.read,
                    "imported": p.imported,
                    "skipped": p.skipped,
                    "notes": p.notes,
                }
                for p in self.parts
            ],
            "rescored": self.rescored,
            "triaged": self.triaged,
            "indexed": self.indexed,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def _batches(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


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


def clean_tag(raw: str) -> str | None:
    name = unicodedata.normalize("NFKC", raw).strip().lower().replace(" ", "-")
    return name if _TAG.match(name) else None


def _username_base(display_name: str) -> str:
    ascii_name = (
        unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode("ascii")
    )
    base = re.sub(r"[^A-Za-z0-9]+", "", ascii_name)[:18]
    return base if len(base) >= 2 else "member"


def _free_username(db: Session, wanted: str, taken: set[str]) -> str:
    """`wanted`, or `wanted-2`, `wanted-3`, ... whichever no account has (another dump of the
    same network has the same names and ids: every site has "Community", id -1). `taken`
    already holds the accounts with the first-choice names of the batch."""
    if wanted.lower() not in taken:
        return wanted
    suffix = 2
    while True:
        candidate = f"{wanted[: USERNAME_MAX - 4]}-{suffix}"
        in_use = candidate.lower() in taken or db.scalar(
            select(User.id).where(User.username_key == candidate.lower())
        )
        if not in_use:
            return candidate
        suffix += 1


def trust_for(reputation: int) -> int:
    return next((level for floor, level in TRUST_BY_REPUTATION if reputation >= floor), 0)


class Importer:
    """One import run of `source` into `forum_id`. Use `run()` once."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        source: Source,
        *,
        forum_id: int,
        search: SearchEngine | None,
        progress: ProgressFn = _no_progress,
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
            self.own_runs = frozenset([*self.adopted_runs, run.id])
            self.tag_ids: dict[str, int] = dict(
                db.execute(select(Tag.name, Tag.id).where(Tag.brand_id == forum.brand_id)).all()
            )
        self.report = ImportReport(
            source=source.name, run_id=self.run_id, brand=self.brand_slug, forum=self.forum_slug
        )

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> ImportReport:
        steps: list[
            tuple[Callable[[], Part[Any]], Callable[[Session, list[Any], PartReport], None]]
        ]
        steps = [
            (self.source.users, self._users),
            (self.source.tags, self._tags),
            (self.source.questions, self._questions),
            (self.source.answers, self._answers),
            (self.source.comments, self._comments),
            (self.source.votes, self._votes),
            (self.source.duplicates, self._duplicates),
            # After the duplicates (a duplicate close with a link is theirs) and before the
            # recount, which turns reopened threads open/answered/solved and leaves closed ones.
            (self.source.closures, self._closures),
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
            self._accept_answers(db)
            self._recount(db)
            db.commit()
        self.report.seconds["counters"] = time.perf_counter() - started
        started = time.perf_counter()
        self.report.rescored = self._rescore()
        self.report.seconds["scores"] = time.perf_counter() - started
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
                self.report.indexed = self._reindex()
                self.report.seconds["search index"] = time.perf_counter() - started
        finally:
            triage.join()
        if triage_failed:
            raise triage_failed[0]
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
        return self.report

    def _consume(
        self,
        part: Part[T],
        report: PartReport,
        store: Callable[[Session, list[T], PartReport], None],
    ) -> None:
        self.progress(part.label, 0, part.size, 0)
        for batch in _batches(part.records, self.batch_size):
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

    # --- keys ------------------------------------------------------------------------------

    def _known(self, db: Session, kind: str, external_ids: Iterable[int]) -> dict[int, int]:
        ids = sorted(set(external_ids))
        if not ids:
            return {}
        rows = db.execute(
            select(ImportKey.external_id, ImportKey.local_id).where(
                ImportKey.source == self.source.name,
                ImportKey.kind == kind,
                ImportKey.external_id.in_(ids),
            )
        )
        return {int(row[0]): int(row[1]) for row in rows}

    def _keep(
        self, db: Session, kind: str, pairs: list[tuple[int, int]], refs: list[int | None] | None
    ) -> None:
        if not pairs:
            return
        db.execute(
            insert(ImportKey),
            [
                {
                    "source": self.source.name,
                    "kind": kind,
                    "external_id": external,
                    "local_id": local,
                    "ref_external_id": refs[index] if refs else None,
                    "run_id": self.run_id,
                }
                for index, (external, local) in enumerate(pairs)
            ],
        )

    def _authors(
        self, db: Session, records: list[QuestionRecord] | list[AnswerRecord] | list[CommentRecord]
    ) -> dict[int, int]:
        """Source user ids -> ours, for the records' authors (deleted accounts have none)."""
        return self._known(
            db, "user", (r.author_external_id for r in records if r.author_external_id)
        )

    def _posts_of(self, db: Session, external_ids: Iterable[int]) -> dict[int, tuple[int, bool]]:
        """Source post ids (questions and answers share them) -> (our post id, created by this
        run or a stopped one it adopted)."""
        ids = sorted(set(external_ids))
        if not ids:
            return {}
        found: dict[int, tuple[int, bool]] = {}
        answers = db.execute(
            select(ImportKey.external_id, ImportKey.local_id, ImportKey.run_id).where(
                ImportKey.source == self.source.name,
                ImportKey.kind == "answer",
                ImportKey.external_id.in_(ids),
            )
        )
        for external, local, run_id in answers:
            found[external] = (local, run_id in self.own_runs)
        questions = db.execute(
            select(ImportKey.external_id, Post.id, ImportKey.run_id)
            .join(Post, and_(Post.thread_id == ImportKey.local_id, Post.is_question.is_(True)))
            .where(
                ImportKey.source == self.source.name,
                ImportKey.kind == "question",
                ImportKey.external_id.in_(ids),
            )
        )
        for external, local, run_id in questions:
            found[external] = (local, run_id in self.own_runs)
        return found

    def _insert_ids(self, db: Session, model: type[Any], rows: list[dict[str, Any]]) -> list[int]:
        if not rows:
            return []
        statement = insert(model).returning(model.id, sort_by_parameter_order=True)
        return list(db.scalars(statement, rows))

    # --- parts -----------------------------------------------------------------------------

    def _users(self, db: Session, batch: list[UserRecord], report: PartReport) -> None:
        known = self._known(db, "user", (record.external_id for record in batch))
        fresh = [record for record in batch if record.external_id not in known]
        report.skip("already imported", len(batch) - len(fresh))
        if not fresh:
            return
        wanted = [f"{_username_base(r.display_name)}-{abs(r.external_id)}" for r in fresh]
        taken = set(
            db.scalars(
                select(User.username_key).where(
                    User.username_key.in_([name.lower() for name in wanted])
                )
            )
        )
        rows = []
        for record, first_choice in zip(fresh, wanted, strict=True):
            username = _free_username(db, first_choice, taken)
            taken.add(username.lower())
            rows.append(
                {
                    "username": username,
                    "username_key": username.lower(),
                    "display_name": record.display_name,
                    # No e-mail and no password: the account cannot sign in until it is claimed.
                    "email": None,
                    "email_key": None,
                    "password_hash": None,
                    "reputation": record.reputation,
                    "trust_level": trust_for(record.reputation),
                    "locale": record.locale,
                    "created_at": record.created_at,
                }
            )
        ids = self._insert_ids(db, User, rows)
        self._keep(db, "user", [(r.external_id, i) for r, i in zip(fresh, ids, strict=True)], None)
        report.imported += len(ids)

    def _tags(self, db: Session, batch: list[str], report: PartReport) -> None:
        names: list[str] = []
        for raw in batch:
            name = clean_tag(raw)
            if name is None:
                report.skip("tag name not allowed here")
            elif name in self.tag_ids or name in names:
                report.skip("already present")
            else:
                names.append(name)
        self._create_tags(db, names)
        report.imported += len(names)

    def _create_tags(self, db: Session, names: list[str]) -> None:
        if not names:
            return
        rows = [{"brand_id": self.brand_id, "name": name, "thread_count": 0} for name in names]
        for name, tag_id in zip(names, self._insert_ids(db, Tag, rows), strict=True):
            self.tag_ids[name] = tag_id

    def _questions(self, db: Session, batch: list[QuestionRecord], report: PartReport) -> None:
        known = self._known(db, "question", (record.external_id for record in batch))
        fresh = [record for record in batch if record.external_id not in known]
        report.skip("already imported", len(batch) - len(fresh))
        if not fresh:
            return
        authors = self._authors(db, fresh)
        tag_names: list[list[str]] = []
        dropped_tags = 0
        for record in fresh:
            names: list[str] = []
            for raw in record.tags:
                name = clean_tag(raw)
                if name is None or len(names) >= TAGS_MAX:
                    dropped_tags += 1
                elif name not in names:
                    names.append(name)
            tag_names.append(names)
        report.note("tags left off (not allowed here, or over the limit)", dropped_tags)
        self._create_tags(db, sorted({n for names in tag_names for n in names} - set(self.tag_ids)))
        authors_of = [authors.get(r.author_external_id or 0) for r in fresh]
        questions = [
            self._post_row(0, author_id, r, is_question=True)
            for r, author_id in zip(fresh, authors_of, strict=True)
        ]
        # A source's locale is one guess for all its questions (a dump has none): each
        # question's own text says which language to index it in, when it says so clearly.
        locales = [
            detect_post_language(r.title, row["body_html"], fallback=r.locale)
            for r, row in zip(fresh, questions, strict=True)
        ]
        thread_ids = self._insert_ids(
            db,
            Thread,
            [
                {
                    "forum_id": self.forum_id,
                    "author_id": author_id,
                    "title": r.title,
                    "kind": r.kind,
                    "status": ThreadStatus.OPEN,
                    "visibility": Visibility.VISIBLE,
                    "locale": locale,
                    "view_count": r.view_count,
                    "score": r.score,
                    "reply_count": 0,
                    "helpful_count": 0,
                    "usefulness": 0.0,
                    "last_activity_at": max(r.last_activity_at, r.created_at),
                    "created_at": r.created_at,
                    "updated_at": r.created_at,
                    "source_url": r.source_url,
                }
                for r, author_id, locale in zip(fresh, authors_of, locales, strict=True)
            ],
        )
        for row, thread_id in zip(questions, thread_ids, strict=True):
            row["thread_id"] = thread_id
        db.execute(insert(Post), questions)
        links = [
            {"thread_id": thread_id, "tag_id": self.tag_ids[name]}
            for names, thread_id in zip(tag_names, thread_ids, strict=True)
            for name in names
        ]
        if links:
            db.execute(insert(thread_tags), links)
        self._keep(
            db,
            "question",
            [(r.external_id, i) for r, i in zip(fresh, thread_ids, strict=True)],
            [r.accepted_answer_external_id for r in fresh],
        )
        report.imported += len(thread_ids)

    @staticmethod
    def _post_row(
        thread_id: int,
        author_id: int | None,
        record: QuestionRecord | AnswerRecord,
        *,
        is_question: bool,
    ) -> dict[str, Any]:
        body = record.body_markdown
        if record.body_html is not None:
            html = sanitize_html(record.body_html)
        else:
            html = render_markdown(body) if body else ""
        return {
            "thread_id": thread_id,
            "author_id": author_id,
            "is_question": is_question,
            "body_source": body,
            "body_html": html,
            "html_version": HTML_VERSION,
            "score": record.score,
            "upvotes": 0,
            "downvotes": 0,
            "helpful_count": 0,
            "visibility": Visibility.VISIBLE,
            "is_official": False,
            "edit_count": 0,
            "hidden_by_suspension": False,
            "created_at": record.created_at,
            "updated_at": record.created_at,
        }

    def _answers(self, db: Session, batch: list[AnswerRecord], report: PartReport) -> None:
        known = self._known(db, "answer", (record.external_id for record in batch))
        threads = self._known(db, "question", (r.question_external_id for r in batch))
        fresh: list[AnswerRecord] = []
        for record in batch:
            if record.external_id in known:
                report.skip("already imported")
            elif record.question_external_id not in threads:
                report.skip("question not imported")
            else:
                fresh.append(record)
        if not fresh:
            return
        authors = self._authors(db, fresh)
        post_ids = self._insert_ids(
            db,
            Post,
            [
                self._post_row(
                    threads[r.question_external_id],
                    authors.get(r.author_external_id or 0),
                    r,
                    is_question=False,
                )
                for r in fresh
            ],
        )
        self._keep(
            db,
            "answer",
            [(r.external_id, i) for r, i in zip(fresh, post_ids, strict=True)],
            [r.question_external_id for r in fresh],
        )
        # A newer dump can bring answers to threads imported before: their activity moves on.
        latest: dict[int, Any] = {}
        for record in fresh:
            thread_id = threads[record.question_external_id]
            latest[thread_id] = max(latest.get(thread_id, record.created_at), record.created_at)
        db.execute(
            update(THREADS)
            .where(
                THREADS.c.id == bindparam("thread"),
                THREADS.c.last_activity_at < bindparam("at"),
            )
            .values(last_activity_at=bindparam("at")),
            [{"thread": thread_id, "at": at} for thread_id, at in latest.items()],
        )
        report.imported += len(post_ids)

    def _comments(self, db: Session, batch: list[CommentRecord], report: PartReport) -> None:
        known = self._known(db, "comment", (record.external_id for record in batch))
        posts = self._posts_of(db, (record.post_external_id for record in batch))
        fresh: list[CommentRecord] = []
        for record in batch:
            if record.external_id in known:
                report.skip("already imported")
            elif record.post_external_id not in posts:
                report.skip("post not imported")
            elif not record.text:
                report.skip("empty comment")
            else:
                fresh.append(record)
        if not fresh:
            return
        authors = self._authors(db, fresh)
        ids = self._insert_ids(
            db,
            PostComment,
            [
                {
                    "post_id": posts[r.post_external_id][0],
                    "author_id": authors.get(r.author_external_id or 0),
                    "author_name": r.author_name,
                    "body_html": render_markdown(r.text),
                    "score": r.score,
                    "created_at": r.created_at,
                }
                for r in fresh
            ],
        )
        self._keep(
            db, "comment", [(r.external_id, i) for r, i in zip(fresh, ids, strict=True)], None
        )
        report.imported += len(ids)

    def _votes(self, db: Session, batch: list[VoteTotals], report: PartReport) -> None:
        posts = self._posts_of(db, (record.post_external_id for record in batch))
        rows = []
        for record in batch:
            found = posts.get(record.post_external_id)
            if found is None:
                report.skip("post not imported (or deleted at the source)", record.up + record.down)
            elif not found[1]:
                report.skip("post imported by an earlier run (kept)", record.up + record.down)
            else:
                rows.append({"post": found[0], "up": record.up, "down": record.down})
                report.imported += record.up + record.down
        if rows:
            table = POSTS
            db.execute(
                update(table)
                .where(table.c.id == bindparam("post"))
                .values(upvotes=bindparam("up"), downvotes=bindparam("down")),
                rows,
            )

    def _duplicates(self, db: Session, batch: list[DuplicateLink], report: PartReport) -> None:
        threads = self._known(
            db,
            "question",
            [r.duplicate_external_id for r in batch] + [r.original_external_id for r in batch],
        )
        for record in batch:
            duplicate = threads.get(record.duplicate_external_id)
            original = threads.get(record.original_external_id)
            if duplicate is None or original is None:
                report.skip("question not imported (or deleted at the source)")
                continue
            if duplicate == original:
                report.skip("links a question to itself")
                continue
            changed = db.execute(
                update(Thread)
                .where(Thread.id == duplicate, Thread.duplicate_of_id.is_(None))
                .values(
                    duplicate_of_id=original,
                    status=ThreadStatus.CLOSED,
                    closed_reason="duplicate",
                )
                .execution_options(synchronize_session=False)
            )
            if changed.rowcount:  # type: ignore[attr-defined]
                report.imported += 1
            else:
                report.skip("already marked (or a second original for one question)")

    def _closures(self, db: Session, batch: list[Closure], report: PartReport) -> None:
        """The state the source left each question in, on threads this run (or a stopped run
        it adopted) created only: an older thread may have been reopened here since."""
        rows = db.execute(
            select(ImportKey.external_id, Thread.id, ImportKey.run_id, Thread.duplicate_of_id)
            .join(Thread, Thread.id == ImportKey.local_id)
            .where(
                ImportKey.source == self.source.name,
                ImportKey.kind == "question",
                ImportKey.external_id.in_(sorted({r.question_external_id for r in batch})),
            )
        )
        threads = {int(external): (local, run, dup) for external, local, run, dup in rows}
        closed: list[dict[str, Any]] = []
        reopened: list[int] = []
        for record in batch:
            found = threads.get(record.question_external_id)
            if found is None:
                report.skip("question not imported (or deleted at the source)")
            elif found[1] not in self.own_runs:
                report.skip("question imported by an earlier run (kept)")
            elif found[2] is not None:
                # PostLinks closed it as a duplicate of its original, which the page links to.
                report.skip("closed as a duplicate of a linked question (by PostLinks.xml)")
            elif record.reason is None:
                reopened.append(found[0])
            else:
                closed.append({"thread": found[0], "reason": record.reason})
        table = THREADS
        if closed:
            db.execute(
                update(table)
                .where(table.c.id == bindparam("thread"))
                .values(status=ThreadStatus.CLOSED.value, closed_reason=bindparam("reason")),
                closed,
            )
            report.imported += len(closed)
        if reopened:
            # Open for now: the recount makes it answered or solved from its answers.
            db.execute(
                update(table)
                .where(table.c.id.in_(reopened), table.c.status == ThreadStatus.CLOSED.value)
                .values(status=ThreadStatus.OPEN.value, closed_reason=None)
            )
            report.skip("reopened at the source (open)", len(reopened))

    # --- after the parts -------------------------------------------------------------------

    def _accept_answers(self, db: Session) -> None:
        question, answer = aliased(ImportKey), aliased(ImportKey)
        pairs: list[tuple[int, int]] = [
            (int(row[0]), int(row[1]))
            for row in db.execute(
                select(question.local_id, answer.local_id)
                .join(
                    answer,
                    and_(
                        answer.source == question.source,
                        answer.kind == "answer",
                        answer.external_id == question.ref_external_id,
                    ),
                )
                .join(Thread, Thread.id == question.local_id)
                .where(
                    question.source == self.source.name,
                    question.kind == "question",
                    Thread.accepted_post_id.is_(None),
                    question.run_id.in_(self.own_runs) | answer.run_id.in_(self.own_runs),
                )
            )
        ]
        table = THREADS
        for chunk in _batches(pairs, 1000):
            db.execute(
                update(table)
                .where(table.c.id == bindparam("thread"))
                .values(accepted_post_id=bindparam("post"), accepted_by_id=table.c.author_id),
                [{"thread": thread_id, "post": post_id} for thread_id, post_id in chunk],
            )

    def _recount(self, db: Session) -> None:
        """Counters from the rows themselves, for the forum and the brand's tags."""
        threads, posts = THREADS, POSTS
        visible_answers = (
            select(func.count())
            .where(
                posts.c.thread_id == threads.c.id,
                posts.c.is_question.is_(False),
                posts.c.visibility == Visibility.VISIBLE.value,
            )
            .scalar_subquery()
        )
        db.execute(
            update(threads)
            .where(threads.c.forum_id == self.forum_id)
            .values(reply_count=visible_answers)
        )
        first_response = (
            select(func.min(posts.c.created_at))
            .where(
                posts.c.thread_id == threads.c.id,
                posts.c.is_question.is_(False),
                posts.c.visibility == Visibility.VISIBLE.value,
                (posts.c.author_id.is_(None))
                | (threads.c.author_id.is_(None))
                | (posts.c.author_id != threads.c.author_id),
            )
            .scalar_subquery()
        )
        db.execute(
            update(threads)
            .where(threads.c.forum_id == self.forum_id, threads.c.first_response_at.is_(None))
            .values(first_response_at=first_response)
        )
        # open -> answered -> solved, as the app does; other states (closed, escalated) stay.
        db.execute(
            update(threads)
            .where(
                threads.c.forum_id == self.forum_id,
                threads.c.status.in_(
                    [
                        ThreadStatus.OPEN.value,
                        ThreadStatus.ANSWERED.value,
                        ThreadStatus.SOLVED.value,
                    ]
                ),
            )
            .values(status=_status_expression(threads))
        )
        forum_threads = select(func.count()).where(
            threads.c.forum_id == self.forum_id,
            threads.c.visibility == Visibility.VISIBLE.value,
        )
        forum_posts = (
            select(func.count())
            .select_from(posts.join(threads, threads.c.id == posts.c.thread_id))
            .where(
                threads.c.forum_id == self.forum_id,
                threads.c.visibility == Visibility.VISIBLE.value,
                posts.c.visibility == Visibility.VISIBLE.value,
            )
        )
        last_activity = select(func.max(threads.c.last_activity_at)).where(
            threads.c.forum_id == self.forum_id,
            threads.c.visibility == Visibility.VISIBLE.value,
        )
        db.execute(
            update(Forum)
            .where(Forum.id == self.forum_id)
            .values(
                thread_count=forum_threads.scalar_subquery(),
                post_count=forum_posts.scalar_subquery(),
                last_activity_at=last_activity.scalar_subquery(),
            )
            .execution_options(synchronize_session=False)
        )
        tags = TAGS
        tagged = (
            select(func.count())
            .select_from(thread_tags.join(threads, threads.c.id == thread_tags.c.thread_id))
            .where(
                thread_tags.c.tag_id == tags.c.id,
                threads.c.visibility == Visibility.VISIBLE.value,
            )
            .scalar_subquery()
        )
        db.execute(update(tags).where(tags.c.brand_id == self.brand_id).values(thread_count=tagged))

    def _touched_threads(self, db: Session) -> list[int]:
        """Threads this run (or a stopped run it adopted) created or added answers to."""
        new_threads = select(ImportKey.local_id).where(
            ImportKey.run_id.in_(self.own_runs), ImportKey.kind == "question"
        )
        answered = (
            select(Post.thread_id)
            .join(ImportKey, ImportKey.local_id == Post.id)
            .where(ImportKey.run_id.in_(self.own_runs), ImportKey.kind == "answer")
        )
        return sorted(set(db.scalars(new_threads)) | set(db.scalars(answered)))

    def _rescore(self) -> int:
        """Usefulness for every thread the run touched, and promotion into the knowledge base."""
        with self.session_factory() as db:
            ids = self._touched_threads(db)
        done = 0
        self.progress("scores", 0, len(ids), 0)
        for chunk in _batches(ids, self.batch_size):
            with self.session_factory() as db:
                has_solution = set(
                    db.scalars(select(Solution.thread_id).where(Solution.thread_id.in_(chunk)))
                )
                votes: dict[int, list[tuple[int, int, int, Visibility]]] = {}
                for post_id, thread_id, up, down, visibility in db.execute(
                    select(
                        Post.id, Post.thread_id, Post.upvotes, Post.downvotes, Post.visibility
                    ).where(Post.thread_id.in_(chunk), Post.is_question.is_(False))
                ):
                    votes.setdefault(thread_id, []).append((post_id, up, down, visibility))
                threads = db.scalars(
                    select(Thread)
                    .where(Thread.id.in_(chunk))
                    .options(selectinload(Thread.forum).selectinload(Forum.brand))
                )
                # Promotion's lookups must not flush every pending score first (that made
                # each lookup a round of UPDATEs); they read nothing this loop changes.
                with db.no_autoflush:
                    for thread in threads:
                        result = score(inputs_from(thread, votes.get(thread.id, [])))
                        thread.usefulness = round(result.value, 3)
                        # Promotion can only start above the brand's threshold, or change a
                        # solution that exists: below it with none there is nothing to do (and
                        # asking costs four queries a thread).
                        threshold = thread.forum.brand.solution_threshold
                        if thread.id in has_solution or (
                            thread.status == ThreadStatus.SOLVED and result.value >= threshold
                        ):
                            promotion.apply(db, thread, result, flush=False)
                db.commit()
            done += len(chunk)
            self.progress("scores", done, len(ids), done)
        return len(ids)

    def _timed_triage(self, failed: list[BaseException]) -> None:
        started = time.perf_counter()
        try:
            self.report.triaged = self._triage()
        except BaseException as exc:  # re-raised by run() in the importing thread
            failed.append(exc)
        finally:
            self.report.seconds["triage"] = time.perf_counter() - started

    def _triage(self) -> int:
        """Type, sentiment, segment and priority for the threads this run created, in bulk.
        They get no service deadlines: history is not a queue (the sweeps only look at threads
        with due times, so importing years of questions escalates nothing)."""
        from crowdservice.triage import triage_many  # crowd-service builds on community

        own_questions = select(ImportKey.local_id).where(
            ImportKey.run_id.in_(self.own_runs), ImportKey.kind == "question"
        )
        with self.session_factory() as db:
            ids = list(db.scalars(own_questions))
        done = 0
        self.progress("triage", 0, len(ids), 0)
        # Big chunks: triage_many works out each author's statistics once per call.
        for chunk in _batches(ids, TRIAGE_CHUNK):
            with self.session_factory() as db:
                triage_many(db, chunk, history_excludes=own_questions)
                db.commit()
            done += len(chunk)
            self.progress("triage", done, len(ids), done)
        return len(ids)

    def _reindex(self) -> int:
        assert self.search is not None

        def progress(_label: str, done: int, total: int) -> None:
            self.progress("search index", done, total, done)

        with self.session_factory() as db:
            brand = db.get(Brand, self.brand_id)
            assert brand is not None
            indexed = reindex_brand(db, self.search, brand, progress=progress).threads
        request_vectors(self.session_factory, self.search, self.brand_id)
        return indexed


def _status_expression(threads: Any) -> Any:
    return case(
        (threads.c.accepted_post_id.is_not(None), ThreadStatus.SOLVED.value),
        (threads.c.reply_count > 0, ThreadStatus.ANSWERED.value),
        else_=ThreadStatus.OPEN.value,
    )
