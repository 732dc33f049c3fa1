"""What a run does once its rows are in and counted: usefulness scores and promotion into the
knowledge base, triage, and the search index (rebuilt beside the live one and swapped in, so
searchers never see half of it)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from community.core.import_models import ImportKey
from community.core.models import Brand, Post
from community.importing.bulk import batches
from community.importing.keys import RunKeys
from community.importing.report import ProgressFn
from crowdservice.triage import triage_many
from kb import promotion
from kb.reindex import reindex_brand, request_vectors
from kb.search import SearchEngine

TRIAGE_CHUNK = 5000


def _touched_threads(db: Session, keys: RunKeys) -> list[int]:
    """Threads this run (or a stopped run it adopted) created or added answers to."""
    new_threads = select(ImportKey.local_id).where(
        ImportKey.run_id.in_(keys.own_runs), ImportKey.kind == "question"
    )
    answered = (
        select(Post.thread_id)
        .join(ImportKey, ImportKey.local_id == Post.id)
        .where(ImportKey.run_id.in_(keys.own_runs), ImportKey.kind == "answer")
    )
    return sorted(set(db.scalars(new_threads)) | set(db.scalars(answered)))


def rescore(
    session_factory: sessionmaker[Session], keys: RunKeys, progress: ProgressFn, batch_size: int
) -> int:
    """Usefulness for every thread the run touched, and promotion into the knowledge base: the
    KB's own set-based step, a few statements per batch whatever the threads' state."""
    with session_factory() as db:
        ids = _touched_threads(db, keys)
    done = 0
    progress("scores", 0, len(ids), 0)
    for chunk in batches(ids, batch_size):
        with session_factory() as db:
            promotion.refresh(db, chunk)
            db.commit()
        done += len(chunk)
        progress("scores", done, len(ids), done)
    return len(ids)


def triage(session_factory: sessionmaker[Session], keys: RunKeys, progress: ProgressFn) -> int:
    """Type, sentiment, segment and priority for the threads this run created, in bulk.
    They get no service deadlines: history is not a queue (the sweeps only look at threads
    with due times, so importing years of questions escalates nothing)."""
    own_questions = select(ImportKey.local_id).where(
        ImportKey.run_id.in_(keys.own_runs), ImportKey.kind == "question"
    )
    with session_factory() as db:
        ids = list(db.scalars(own_questions))
    done = 0
    progress("triage", 0, len(ids), 0)
    # Big chunks: triage_many works out each author's statistics once per call.
    for chunk in batches(ids, TRIAGE_CHUNK):
        with session_factory() as db:
            triage_many(db, chunk, history_excludes=own_questions)
            db.commit()
        done += len(chunk)
        progress("triage", done, len(ids), done)
    return len(ids)


def reindex(
    session_factory: sessionmaker[Session],
    search: SearchEngine,
    brand_id: int,
    progress: ProgressFn,
) -> int:
    """The brand's search index rebuilt, then its vectors requested; how many threads."""

    def report(_label: str, done: int, total: int) -> None:
        progress("search index", done, total, done)

    with session_factory() as db:
        brand = db.get(Brand, brand_id)
        assert brand is not None
        indexed = reindex_brand(db, search, brand, progress=report).threads
    request_vectors(session_factory, search, brand_id)
    return indexed
