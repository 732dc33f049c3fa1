"""A stopped import, run again, ends equal to a clean import of the same dump.

The stop is the real thing as far as the database can tell: the importer commits each batch on
its own, so a kill between statements leaves exactly what an exception raised between batches
leaves (whole batches, nothing after). We stop at several points, run the import again, and
compare every row it wrote, by source id, with a clean import of the same dump.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from community.core.db import make_session_factory
from community.core.import_models import ImportKey, ImportRun
from community.core.models import Forum, Post, PostComment, Tag, Thread, User
from community.core.settings import Settings
from community.importing.service import Importer, ensure_forum
from community.importing.stackexchange import StackExchangeDump
from crowdservice.models import TriageResult
from kb.models import Solution
from kb.search import SearchEngine
from tests.conftest import fresh
from tests.importing.dumps import realistic_dump, with_closures

# Small batches, so every part has several and a stop can fall between two of them.
BATCH = 2
# Columns that are our own ids (compared through the source ids instead) or the clock at the
# moment of the run (not content).
LOCAL_COLUMNS = {"id", "forum_id", "author_id", "thread_id", "accepted_by_id", "triaged_at"}
LOCAL_COLUMNS |= {"accepted_post_id", "duplicate_of_id", "promoted_at", "post_id", "brand_id"}


class Stop(Exception):
    """Where the test pulls the plug."""


def _stop_at(label: str, call: int) -> Any:
    calls = 0

    def progress(part: str, _position: int, _size: int | None, _rows: int) -> None:
        nonlocal calls
        if part == label:
            calls += 1
            if calls == call:
                raise Stop(f"stopped in {label} at call {call}")

    return progress


def _import(
    factory: sessionmaker[Session],
    directory: Path,
    site: str,
    search: SearchEngine,
    progress: Any = None,
) -> int:
    dump = StackExchangeDump(directory, site=site)
    dump.validate()
    with factory() as db:
        forum_id = ensure_forum(db, site.split(".")[0], "questions", forum_name=site).id
        db.commit()
    options: dict[str, Any] = {"batch_size": BATCH}
    if progress is not None:
        options["progress"] = progress
    importer = Importer(factory, dump, forum_id=forum_id, search=search, **options)
    return importer.run().indexed


def _row(entity: Any) -> dict[str, Any]:
    row = {
        column.key: getattr(entity, column.key)
        for column in entity.__table__.columns
        if column.key not in LOCAL_COLUMNS
    }
    # Scores decay with time since the thread was active: two imports seconds apart differ
    # in the tenth decimal.
    return {
        key: round(value, 3) if isinstance(value, float) else value for key, value in row.items()
    }


def snapshot(db: Session, site: str) -> dict[str, Any]:
    """Everything the import of `site` wrote, keyed by the source's ids, not ours."""
    fresh(db)
    source = f"stackexchange:{site}"

    def local_to_external(kind: str) -> dict[int, int]:
        rows = db.execute(
            select(ImportKey.local_id, ImportKey.external_id).where(
                ImportKey.source == source, ImportKey.kind == kind
            )
        )
        return {int(local): int(external) for local, external in rows}

    users, questions, answers = (local_to_external(k) for k in ("user", "question", "answer"))
    question_posts = {
        post_id: questions[thread_id]
        for post_id, thread_id in db.execute(
            select(Post.id, Post.thread_id).where(
                Post.thread_id.in_(questions), Post.is_question.is_(True)
            )
        )
    }
    posts_external = {**answers, **question_posts}
    threads = {}
    for thread in db.scalars(select(Thread).where(Thread.id.in_(questions))):
        threads[questions[thread.id]] = _row(thread) | {
            "author": users.get(thread.author_id or 0),
            "accepted": posts_external.get(thread.accepted_post_id or 0),
            "duplicate_of": questions.get(thread.duplicate_of_id or 0),
            "tags": sorted(tag.name for tag in thread.tags),
            # The link back names the site, which differs between the compared imports.
            "source_url": (thread.source_url or "").replace(site, "<site>"),
        }
    posts = {
        posts_external[post.id]: _row(post) | {"author": users.get(post.author_id or 0)}
        for post in db.scalars(select(Post).where(Post.id.in_(posts_external)))
    }
    comments = sorted(
        (
            posts_external[comment.post_id],
            comment.author_name or "",
            comment.body_html,
            comment.score,
        )
        for comment in db.scalars(
            select(PostComment).where(PostComment.post_id.in_(posts_external))
        )
    )
    triage = {
        questions[result.thread_id]: _row(result)
        for result in db.scalars(select(TriageResult).where(TriageResult.thread_id.in_(questions)))
    }
    solutions = {
        questions[solution.thread_id]: _row(solution)
        for solution in db.scalars(select(Solution).where(Solution.thread_id.in_(questions)))
    }
    forum_ids = {
        thread.forum_id for thread in db.scalars(select(Thread).where(Thread.id.in_(questions)))
    }
    forums = [
        (forum.thread_count, forum.post_count, forum.last_activity_at)
        for forum in db.scalars(select(Forum).where(Forum.id.in_(forum_ids)))
    ]
    brand_ids = {
        forum.brand_id for forum in db.scalars(select(Forum).where(Forum.id.in_(forum_ids)))
    }
    tags = {
        tag.name: tag.thread_count
        for tag in db.scalars(select(Tag).where(Tag.brand_id.in_(brand_ids)))
    }
    members = {
        external: (user.display_name, user.reputation, user.trust_level, user.created_at)
        for user in db.scalars(select(User).where(User.id.in_(users)))
        for external in [users[user.id]]
    }
    return {
        "members": members,
        "threads": threads,
        "posts": posts,
        "comments": comments,
        "triage": triage,
        "solutions": solutions,
        "forums": forums,
        "tags": tags,
    }


@pytest.fixture
def factory(engine: Engine, db: Session) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def search(settings: Settings) -> SearchEngine:
    return SearchEngine(settings)


# (part, nth progress call of that part): before its first batch, between batches, at its end.
STOPS = [
    ("Users.xml", 2),
    ("Posts.xml (questions)", 2),
    ("Posts.xml (answers)", 3),
    ("Votes.xml", 2),
    ("PostLinks.xml", 1),
    ("PostHistory.xml", 1),
    ("scores", 1),
    ("search index", 1),
]


def test_an_import_stopped_anywhere_and_run_again_equals_a_clean_import(
    factory: sessionmaker[Session], db: Session, search: SearchEngine, tmp_path: Path
) -> None:
    directory = with_closures(realistic_dump()).write(tmp_path / "dump")
    clean_indexed = _import(factory, directory, "clean.stackexchange.com", search)
    clean = snapshot(db, "clean.stackexchange.com")
    assert clean["threads"] and clean["solutions"], "the dump exercises acceptance and the KB"
    assert any(post["upvotes"] for post in clean["posts"].values())
    assert any(thread["closed_reason"] == "too_broad" for thread in clean["threads"].values())

    for number, (part, call) in enumerate(STOPS):
        site = f"stop{number}.stackexchange.com"
        with pytest.raises(Stop):
            _import(factory, directory, site, search, _stop_at(part, call))
        resumed_indexed = _import(factory, directory, site, search)
        resumed = snapshot(db, site)
        for section, expected in clean.items():
            assert resumed[section] == expected, f"stopped in {part} (call {call}): {section}"
        assert resumed_indexed == clean_indexed, f"stopped in {part}: search documents"


def test_a_later_run_does_not_adopt_rows_a_resumed_run_finished(
    factory: sessionmaker[Session], db: Session, search: SearchEngine, tmp_path: Path
) -> None:
    """Once the work of a stopped run is finished, its rows are history like any other: a
    third run must not overwrite their vote totals (local votes may have come since)."""
    directory = realistic_dump().write(tmp_path / "dump")
    site = "later.stackexchange.com"
    with pytest.raises(Stop):
        _import(factory, directory, site, search, _stop_at("Votes.xml", 1))
    _import(factory, directory, site, search)
    fresh(db)
    runs = list(db.scalars(select(ImportRun).order_by(ImportRun.id)))
    assert all(run.finished_at is not None for run in runs)
    assert runs[0].summary == {"completed_by_run": runs[1].id}

    voted = db.scalars(select(Post).where(Post.upvotes > 0).order_by(Post.id)).first()
    assert voted is not None
    voted.upvotes += 7  # a local vote total since the import
    local_total = voted.upvotes
    db.commit()
    _import(factory, directory, site, search)
    fresh(db)
    assert db.get_one(Post, voted.id).upvotes == local_total
