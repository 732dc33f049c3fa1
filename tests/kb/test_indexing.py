"""Promotion and indexing against the real Meilisearch: the worker keeps the KB and the indexes
in step with the database, hidden content leaves at once, an outage loses nothing, several
workers share the work, and a reindex swaps in without an empty moment."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import meilisearch
import pytest
import time_machine
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from community import voting
from community.core import meili
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.indexing import THREAD_CHANGED
from community.core.models import Brand, Post, Role, Thread, User, Visibility
from community.core.outbox import OutboxEvent
from community.core.settings import Settings
from community.members import badges
from community.worker import Worker
from kb import promotion, service_search
from kb.models import CandidateStatus, PromotionCandidate, Solution
from kb.reindex import reindex_all
from kb.search import SearchEngine
from tests.conftest import MEILI_TEST_KEY, QA, drain, fresh

UserFactory = Callable[..., User]


@pytest.fixture
def worker(settings: Settings, engine: Engine) -> Worker:
    return Worker(settings, make_session_factory(engine))


def _urls(db: Session, settings: Settings, query: str, scope: str = "kb") -> list[str]:
    brand = db.scalars(select(Brand)).one()
    page = service_search.search(
        db,
        SearchEngine(settings),
        brand,
        query,
        scope=scope,  # type: ignore[arg-type]
    )
    assert not page.degraded
    return [hit.url for hit in page.hits]


def _solved(db: Session, qa: QA, make_user: UserFactory, upvotes: int) -> tuple[Thread, Post]:
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker, title="Router reboots every night at midnight", tags=["router"])
    answer = qa.answer(helper, thread, "Turn off the scheduled reboot under Settings > Power.")
    for index in range(upvotes):
        voting.cast_vote(db, make_user(f"fan{index}"), answer.id, 1)
    voting.accept(db, asker, answer.id)
    db.commit()
    return thread, answer


def test_promotion_happens_exactly_when_the_threshold_is_crossed(
    db: Session, qa: QA, make_user: UserFactory, worker: Worker, settings: Settings
) -> None:
    thread, answer = _solved(db, qa, make_user, upvotes=1)
    drain(worker)
    fresh(db)
    stored = db.get(Thread, thread.id)
    assert stored is not None
    assert 30 < stored.usefulness < 35  # accepted + one upvote: just under the default 35
    assert db.scalars(select(Solution)).first() is None
    assert f"/t/{thread.id}" not in _urls(db, settings, "router reboots")
    assert f"/t/{thread.id}" in _urls(db, settings, "router reboots", scope="community")

    voting.cast_vote(db, make_user("second_fan"), answer.id, 1)
    db.commit()
    drain(worker)
    fresh(db)
    solution = db.scalars(select(Solution)).one()
    assert solution.thread_id == thread.id and solution.withdrawn_at is None
    assert solution.score_at_promotion >= 35
    assert _urls(db, settings, "router reboots")[0] == f"/t/{thread.id}"
    assert db.scalars(select(PromotionCandidate)).first() is None  # strong, not yet outstanding


def test_promotion_is_the_kb_step_and_indexing_only_reads_it(
    db: Session, qa: QA, make_user: UserFactory, worker: Worker, settings: Settings
) -> None:
    thread, _answer = _solved(db, qa, make_user, upvotes=3)
    # Building the documents of a thread that qualifies promotes nothing...
    worker.indexer.threads(db, [thread.id])()
    db.commit()
    assert db.scalars(select(Solution)).first() is None
    assert f"/t/{thread.id}" not in _urls(db, settings, "router reboots")

    # ...the KB's own step does, and the next indexing shows what it decided.
    changes = promotion.refresh(db, [thread.id, 999_999])
    db.commit()
    assert set(changes) == {thread.id}  # a thread that no longer exists is skipped
    assert changes[thread.id].solution_live
    solution = db.scalars(select(Solution)).one()
    assert solution.thread_id == thread.id and solution.score_at_promotion >= 35
    worker.indexer.threads(db, [thread.id])()
    db.commit()
    assert _urls(db, settings, "router reboots")[0] == f"/t/{thread.id}"


def test_strong_solutions_are_suggested_for_articles_with_reasons(
    db: Session, qa: QA, make_user: UserFactory, worker: Worker
) -> None:
    thread, _answer = _solved(db, qa, make_user, upvotes=12)
    for index in range(8):
        voting.set_helpful(db, make_user(f"reader{index}"), thread.id, helpful=True)
    db.commit()
    drain(worker)
    fresh(db)
    candidate = db.scalars(select(PromotionCandidate)).one()
    assert candidate.status == CandidateStatus.SUGGESTED
    assert candidate.score >= 60
    assert candidate.reasons["votes"] == {"up": 12, "down": 0}
    assert candidate.reasons["helped_me_too"] == 8
    assert candidate.reasons["accepted"] is True


def test_hidden_and_unaccepted_threads_leave_the_index_in_one_cycle(
    db: Session, qa: QA, make_user: UserFactory, worker: Worker, settings: Settings
) -> None:
    thread, _answer = _solved(db, qa, make_user, upvotes=3)
    drain(worker)
    assert f"/t/{thread.id}" in _urls(db, settings, "router reboots")

    voting.unaccept(db, make_user("lee", role=Role.AGENT), thread.id)
    db.commit()
    worker.run_once()
    assert f"/t/{thread.id}" not in _urls(db, settings, "router reboots")
    assert f"/t/{thread.id}" in _urls(db, settings, "router reboots", scope="community")

    stored = db.get(Thread, thread.id)
    assert stored is not None
    stored.visibility = Visibility.HIDDEN
    from community.core import indexing

    indexing.thread_changed(db, thread.id)
    db.commit()
    worker.run_once()
    assert f"/t/{thread.id}" not in _urls(db, settings, "router reboots", scope="community")


def test_hidden_content_never_reaches_any_index(
    db: Session, qa: QA, make_user: UserFactory, worker: Worker, settings: Settings
) -> None:
    """The canary: a unique word in hidden, pending and deleted content is never searchable,
    not even straight at Meilisearch with the master key."""
    from community import thread_editing

    canary = "zqxcanaryword"
    asker, helper = make_user("asker"), make_user("helper")
    shown = qa.ask(asker, title="A normal visible question about routers")
    hidden_answer = qa.answer(helper, shown, f"secret {canary} answer")
    hidden_answer.visibility = Visibility.HIDDEN
    pending = qa.ask(asker, title=f"Pending question {canary} here", body=f"{canary} body")
    pending.visibility = Visibility.PENDING
    deleted = qa.ask(asker, title=f"Deleted question {canary} there")
    db.commit()
    thread_editing.delete_post(
        db, asker, db.scalars(select(Post).where(Post.thread_id == deleted.id)).one()
    )
    from community.core import indexing

    for thread in (shown, pending):
        indexing.thread_changed(db, thread.id)
    db.commit()
    drain(worker)

    for scope in ("kb", "community"):
        assert _urls(db, settings, canary, scope=scope) == []
    direct = meilisearch.Client(settings.meili_url, MEILI_TEST_KEY)
    for index in direct.get_indexes()["results"]:
        if index.uid.startswith(settings.meili_index_prefix):
            assert direct.index(index.uid).search(canary)["hits"] == []
    assert _urls(db, settings, "normal visible question", scope="community") == [f"/t/{shown.id}"]


def test_meilisearch_outage_loses_nothing_and_the_index_catches_up(
    tmp_path: Path,
    database_url: str,
    engine: Engine,
    db: Session,
    qa: QA,
    make_user: UserFactory,
) -> None:
    from tests.conftest import make_settings

    port = meili.free_port()
    data = tmp_path / "outage-meili"
    server = meili.start_server(meili.find_binary(), data, MEILI_TEST_KEY, port=port)
    settings = make_settings(tmp_path, database_url, server.url)
    worker = Worker(settings, make_session_factory(engine))
    try:
        server.stop()
        thread, _answer = _solved(db, qa, make_user, upvotes=3)  # posts while search is down
        worker.run_once()
        worker.run_once()  # the e-mails of the notices the first run sent (a vote milestone)
        fresh(db)
        waiting = list(db.scalars(select(OutboxEvent).where(OutboxEvent.done_at.is_(None))))
        # Every event that was due was tried (a badge check waits a minute: not yet due).
        due = [event for event in waiting if event.kind != badges.BADGE_EVENT]
        assert due and all(event.attempts >= 1 for event in due)
        assert db.get(Thread, thread.id) is not None  # accepted writes are all there

        brand = db.scalars(select(Brand)).one()
        fallback = service_search.search(
            db, SearchEngine(settings), brand, "router reboots", scope="community"
        )
        assert fallback.degraded
        assert [hit.url for hit in fallback.hits] == [f"/t/{thread.id}"]

        server = meili.start_server(meili.find_binary(), data, MEILI_TEST_KEY, port=port)
        worker.search.reset_breaker()
        with time_machine.travel(utcnow() + timedelta(minutes=10)):
            drain(worker)
        fresh(db)
        assert (
            db.scalar(
                select(func.count()).select_from(OutboxEvent).where(OutboxEvent.done_at.is_(None))
            )
            == 0
        )
        assert _urls(db, settings, "router reboots") == [f"/t/{thread.id}"]
    finally:
        server.stop()


def test_concurrent_workers_index_everything_once(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
) -> None:
    asker = make_user("asker")
    made = [qa.ask(asker, title=f"Question {index} about voicemail setup") for index in range(30)]
    workers = [Worker(settings, make_session_factory(engine)) for _ in range(3)]
    barrier = threading.Barrier(3)

    def run(worker: Worker) -> None:
        barrier.wait()
        for _ in range(30):
            if worker.drain_outbox(limit=4) == 0:
                return

    runners = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(timeout=120)
    fresh(db)
    events = list(db.scalars(select(OutboxEvent).where(OutboxEvent.kind == THREAD_CHANGED)))
    assert len(events) == 30
    assert all(event.done_at is not None and event.attempts == 1 for event in events)
    client = meilisearch.Client(settings.meili_url, MEILI_TEST_KEY)
    stats = client.index(SearchEngine(settings).threads_index("acme")).get_stats()
    assert stats.number_of_documents == len(made)


def test_reindex_swaps_in_with_no_empty_moment(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
    worker: Worker,
) -> None:
    asker = make_user("asker")
    for index in range(40):
        qa.ask(asker, title=f"Roaming question number {index} for travellers")
    drain(worker)
    search = SearchEngine(settings)
    uid = search.threads_index("acme")
    seen: list[int] = []
    stop = threading.Event()

    def keep_searching() -> None:
        while not stop.is_set():
            seen.append(search.search(uid, "roaming", per_page=5).total)

    searcher = threading.Thread(target=keep_searching)
    searcher.start()
    try:
        time.sleep(0.1)
        reports = reindex_all(make_session_factory(engine), search)
    finally:
        stop.set()
        searcher.join(timeout=30)
    assert reports["acme"].threads == 40
    assert len(seen) > 3
    assert min(seen) == 40  # every search during the rebuild saw the full index
    names = [
        index.uid
        for index in meilisearch.Client(settings.meili_url, MEILI_TEST_KEY).get_indexes(
            {"limit": 1000}
        )["results"]
    ]
    assert not [
        name
        for name in names
        if name.startswith(settings.meili_index_prefix) and "_rebuild_" in name
    ]
