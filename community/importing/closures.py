"""Storing how the source left its questions: duplicate links, then closes and reopenings.

Duplicates come first (a duplicate close with a link is theirs) and both run before the
recount, which turns reopened threads open, answered or solved and leaves closed ones closed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from community.core.import_models import ImportKey
from community.core.models import Thread, ThreadStatus
from community.importing.bulk import THREADS
from community.importing.keys import RunKeys
from community.importing.records import Closure, DuplicateLink
from community.importing.report import PartReport


def store_duplicates(
    keys: RunKeys, db: Session, batch: list[DuplicateLink], report: PartReport
) -> None:
    threads = keys.known(
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


def store_closures(keys: RunKeys, db: Session, batch: list[Closure], report: PartReport) -> None:
    """The state the source left each question in, on threads this run (or a stopped run
    it adopted) created only: an older thread may have been reopened here since."""
    rows = db.execute(
        select(ImportKey.external_id, Thread.id, ImportKey.run_id, Thread.duplicate_of_id)
        .join(Thread, Thread.id == ImportKey.local_id)
        .where(
            ImportKey.source == keys.source,
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
        elif found[1] not in keys.own_runs:
            report.skip("question imported by an earlier run (kept)")
        elif found[2] is not None:
            # PostLinks closed it as a duplicate of its original, which the page links to.
            report.skip("closed as a duplicate of a linked question (by PostLinks.xml)")
        elif record.reason is None:
            reopened.append(found[0])
        else:
            closed.append({"thread": found[0], "reason": record.reason})
    if closed:
        db.execute(
            update(THREADS)
            .where(THREADS.c.id == bindparam("thread"))
            .values(status=ThreadStatus.CLOSED.value, closed_reason=bindparam("reason")),
            closed,
        )
        report.imported += len(closed)
    if reopened:
        # Open for now: the recount makes it answered or solved from its answers.
        db.execute(
            update(THREADS)
            .where(THREADS.c.id.in_(reopened), THREADS.c.status == ThreadStatus.CLOSED.value)
            .values(status=ThreadStatus.OPEN.value, closed_reason=None)
        )
        report.skip("reopened at the source (open)", len(reopened))
