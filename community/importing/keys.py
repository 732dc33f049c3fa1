"""Import keys: which source record became which local row, and in which run.

They make a run resumable (a record that has a key is skipped) and tell a run which rows are
its own: the ones it created, or a stopped run of the same source that it adopted created.
Only those get the source's aggregates (vote totals, closures), which must not overwrite
what happened here to rows imported earlier.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, insert, select
from sqlalchemy.orm import Session

from community.core.import_models import ImportKey
from community.core.models import Post
from community.importing.records import AnswerRecord, CommentRecord, QuestionRecord


@dataclass(frozen=True, slots=True)
class RunKeys:
    """The keys of one run of `source`; `own_runs` are its id and the stopped runs it adopted."""

    source: str
    run_id: int
    own_runs: frozenset[int]

    def known(self, db: Session, kind: str, external_ids: Iterable[int]) -> dict[int, int]:
        """Source ids -> local ids, for the records of `kind` imported before."""
        ids = sorted(set(external_ids))
        if not ids:
            return {}
        rows = db.execute(
            select(ImportKey.external_id, ImportKey.local_id).where(
                ImportKey.source == self.source,
                ImportKey.kind == kind,
                ImportKey.external_id.in_(ids),
            )
        )
        return {int(row[0]): int(row[1]) for row in rows}

    def keep(
        self, db: Session, kind: str, pairs: list[tuple[int, int]], refs: list[int | None] | None
    ) -> None:
        """Record (source id, local id) pairs, with the source id each one refers to."""
        if not pairs:
            return
        db.execute(
            insert(ImportKey),
            [
                {
                    "source": self.source,
                    "kind": kind,
                    "external_id": external,
                    "local_id": local,
                    "ref_external_id": refs[index] if refs else None,
                    "run_id": self.run_id,
                }
                for index, (external, local) in enumerate(pairs)
            ],
        )

    def authors(
        self, db: Session, records: list[QuestionRecord] | list[AnswerRecord] | list[CommentRecord]
    ) -> dict[int, int]:
        """Source user ids -> ours, for the records' authors (deleted accounts have none)."""
        return self.known(
            db, "user", (r.author_external_id for r in records if r.author_external_id)
        )

    def posts_of(self, db: Session, external_ids: Iterable[int]) -> dict[int, tuple[int, bool]]:
        """Source post ids (questions and answers share them) -> (our post id, created by this
        run or a stopped one it adopted)."""
        ids = sorted(set(external_ids))
        if not ids:
            return {}
        found: dict[int, tuple[int, bool]] = {}
        answers = db.execute(
            select(ImportKey.external_id, ImportKey.local_id, ImportKey.run_id).where(
                ImportKey.source == self.source,
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
                ImportKey.source == self.source,
                ImportKey.kind == "question",
                ImportKey.external_id.in_(ids),
            )
        )
        for external, local, run_id in questions:
            found[external] = (local, run_id in self.own_runs)
        return found
