"""Possible duplicates for staff, end to end on the real Meilisearch and the real multilingual
model: the worker flags a new question that paraphrases an earlier thread (and not a different
one, nor an imported one), staff see it on the thread page and in the moderation queue,
moderators close it as a duplicate or dismiss it in one click, and members never learn of it."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community.core.audit import AuditLog
from community.core.db import make_session_factory
from community.core.import_models import ImportKey
from community.core.models import Brand, Forum, Role, Thread, ThreadStatus, User
from community.core.settings import Settings
from community.worker import Worker
from kb import duplicates
from kb.duplicate_models import DuplicateSuggestion, SuggestionStatus
from kb.search import SearchEngine
from tests.conftest import QA, csrf_token, drain, fresh

UserFactory = Callable[..., User]
RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]

ORIGINAL_TITLE = "Router reboots every night at midnight"
ORIGINAL_BODY = (
    "Every night at exactly midnight my router restarts and the internet drops for a few "
    "minutes. How can I stop it?"
)
ANSWER = "Turn off the scheduled reboot under Settings > Power > Scheduled restart."
PARAPHRASE_TITLE = "My router restarts by itself every night at 12"
PARAPHRASE_BODY = (
    "Each night around midnight the router reboots on its own and I lose the connection. "
    "How do I stop this?"
)


@pytest.fixture
def forum(db: Session) -> Forum:
    """The suite's brand, searched with the multilingual model (fast; the suite's default is
    lexical only)."""
    brand = Brand(
        slug="acme",
        name="Acme",
        description="",
        theme={},
        default_locale="en",
        search_model="use-multilingual",
    )
    db.add(brand)
    db.flush()
    created = Forum(brand_id=brand.id, slug="mobile", name="Mobile", description="Phones")
    db.add(created)
    db.commit()
    return created


@pytest.fixture
def worker(settings: Settings, engine: Engine) -> Worker:
    return Worker(settings, make_session_factory(engine))


@pytest.fixture
def original(db: Session, qa: QA, make_user: UserFactory, worker: Worker) -> Thread:
    """An answered thread, indexed with its vector before anything else is asked."""
    thread = qa.ask(make_user("first_asker"), title=ORIGINAL_TITLE, body=ORIGINAL_BODY)
    qa.answer(make_user("helper"), thread, ANSWER)
    drain(worker)
    return thread


def _ask_paraphrase(qa: QA, make_user: UserFactory) -> Thread:
    return qa.ask(make_user("second_asker"), title=PARAPHRASE_TITLE, body=PARAPHRASE_BODY)


def _suggestions(db: Session, thread: Thread) -> list[DuplicateSuggestion]:
    fresh(db)
    return list(
        db.scalars(select(DuplicateSuggestion).where(DuplicateSuggestion.thread_id == thread.id))
    )


@pytest.fixture
def flagged(
    db: Session, qa: QA, make_user: UserFactory, worker: Worker, original: Thread
) -> tuple[Thread, DuplicateSuggestion]:
    question = _ask_paraphrase(qa, make_user)
    drain(worker)
    found = _suggestions(db, question)
    assert len(found) == 1
    return question, found[0]


def _post(client: TestClient, path: str, back: str = "", **headers: str) -> object:
    data = {"csrf_token": csrf_token(client, "/")}
    if back:
        data["back"] = back
    return client.post(path, data=data, headers=headers, follow_redirects=False)


# --- the worker --------------------------------------------------------------------------------


def test_a_paraphrase_of_an_answered_thread_is_flagged_with_its_cosine(
    db: Session, flagged: tuple[Thread, DuplicateSuggestion], original: Thread
) -> None:
    _question, suggestion = flagged
    assert suggestion.candidate_thread_id == original.id
    assert suggestion.model == "use_multilingual"
    assert suggestion.status == SuggestionStatus.OPEN
    assert suggestion.score >= duplicates.DUPLICATE_THRESHOLD["use_multilingual"]
    assert suggestion.score < 1.0
    # Nothing the other way round: the original was asked first.
    assert _suggestions(db, original) == []


def test_a_clearly_different_question_is_not_flagged(
    db: Session, qa: QA, make_user: UserFactory, worker: Worker, original: Thread
) -> None:
    other = qa.ask(
        make_user("billing"),
        title="How do I change the billing address on my account?",
        body="I moved house and need my invoices sent to the new address.",
    )
    drain(worker)
    assert _suggestions(db, other) == []


def test_an_unanswered_thread_is_no_original(
    db: Session, qa: QA, make_user: UserFactory, worker: Worker
) -> None:
    qa.ask(make_user("first_asker"), title=ORIGINAL_TITLE, body=ORIGINAL_BODY)
    drain(worker)
    question = _ask_paraphrase(qa, make_user)
    drain(worker)
    assert _suggestions(db, question) == []


def test_an_imported_question_is_not_flagged(
    db: Session, qa: QA, make_user: UserFactory, worker: Worker, original: Thread
) -> None:
    question = _ask_paraphrase(qa, make_user)
    # What the importer records for every question it brings (community.importing).
    db.add(
        ImportKey(
            source="support.example.com", kind="question", external_id=7, local_id=question.id,
            run_id=1,
        )
    )  # fmt: skip
    db.commit()
    drain(worker)
    assert _suggestions(db, question) == []


def test_a_thread_closed_as_a_duplicate_stands_for_its_original(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    worker: Worker,
    flagged: tuple[Thread, DuplicateSuggestion],
    original: Thread,
    as_role: RoleClient,
) -> None:
    first_copy, suggestion = flagged
    moderator, _user = as_role(Role.MODERATOR)
    _post(moderator, f"/mod/duplicates/{suggestion.id}/close")
    third = qa.ask(
        make_user("third_asker"),
        title="Router restarts every night at midnight, how to stop it?",
        body="My router restarts itself each night at midnight and the internet goes down.",
    )
    drain(worker)
    assert [s.candidate_thread_id for s in _suggestions(db, third)] == [original.id]
    assert first_copy.id != original.id


def test_the_check_runs_once_and_never_suggests_a_pair_again(
    db: Session,
    flagged: tuple[Thread, DuplicateSuggestion],
    settings: Settings,
    engine: Engine,
    as_role: RoleClient,
) -> None:
    question, suggestion = flagged
    moderator, _user = as_role(Role.MODERATOR)
    _post(moderator, f"/mod/duplicates/{suggestion.id}/dismiss")
    made = duplicates.check(make_session_factory(engine), SearchEngine(settings), question.id)
    assert made == 0
    assert [s.status for s in _suggestions(db, question)] == [SuggestionStatus.DISMISSED]


# --- what staff see ----------------------------------------------------------------------------


def test_staff_see_the_notice_on_the_thread_page_and_in_the_queue(
    flagged: tuple[Thread, DuplicateSuggestion], original: Thread, as_role: RoleClient
) -> None:
    question, suggestion = flagged
    moderator, _user = as_role(Role.MODERATOR)
    page = moderator.get(f"/t/{question.id}").text
    notice = re.search(r'<section class="card duplicate-notice".*?</section>', page, re.S)
    assert notice is not None
    assert "Possible duplicate of" in notice.group(0)
    assert f'href="/t/{original.id}"' in notice.group(0)
    assert ORIGINAL_TITLE in notice.group(0)
    assert f"(similarity {suggestion.percent}%)" in notice.group(0)
    assert f'action="/mod/duplicates/{suggestion.id}/close"' in notice.group(0)
    assert f'action="/mod/duplicates/{suggestion.id}/dismiss"' in notice.group(0)

    listing = moderator.get("/b/acme/mod/duplicates")
    assert listing.status_code == 200
    assert f'id="duplicate-{suggestion.id}"' in listing.text
    assert PARAPHRASE_TITLE in listing.text and ORIGINAL_TITLE in listing.text
    assert "Possible duplicates (1)" in moderator.get("/b/acme/mod/pending").text
    # The original's own page has nothing to say.
    assert "duplicate-notice" not in moderator.get(f"/t/{original.id}").text


def test_agents_see_the_notice_but_only_moderators_decide(
    flagged: tuple[Thread, DuplicateSuggestion], as_role: RoleClient, db: Session
) -> None:
    question, suggestion = flagged
    agent, _user = as_role(Role.AGENT)
    page = agent.get(f"/t/{question.id}").text
    assert "Possible duplicate of" in page
    assert "/mod/duplicates/" not in page
    refused = _post(agent, f"/mod/duplicates/{suggestion.id}/close")
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert _suggestions(db, question)[0].status == SuggestionStatus.OPEN


def test_the_notice_is_in_spanish_for_spanish_staff(
    flagged: tuple[Thread, DuplicateSuggestion], as_role: RoleClient
) -> None:
    question, suggestion = flagged
    moderator, _user = as_role(Role.MODERATOR)
    page = moderator.get(f"/t/{question.id}", headers={"Accept-Language": "es"}).text
    assert "Posible duplicado de" in page
    assert f"(similitud {suggestion.percent}%)" in page
    assert "Cerrar como duplicado" in page and "No es un duplicado" in page


@pytest.mark.parametrize("role", [None, Role.MEMBER])
def test_members_and_anonymous_never_see_any_of_it(
    flagged: tuple[Thread, DuplicateSuggestion], as_role: RoleClient, role: Role | None
) -> None:
    question, _suggestion = flagged
    client, _user = as_role(role)
    for headers in ({}, {"HX-Request": "true"}):
        page = client.get(f"/t/{question.id}", headers=headers)
        assert page.status_code == 200
        for hint in ("duplicate-notice", "Possible duplicate", "/mod/duplicates/", ORIGINAL_TITLE):
            assert hint not in page.text
    api = client.get(f"/api/v1/threads/{question.id}")
    assert api.status_code == 200
    assert ORIGINAL_TITLE not in api.text
    queue_page = client.get("/b/acme/mod/duplicates", follow_redirects=False)
    assert queue_page.status_code in (303, 401, 403)
    assert PARAPHRASE_TITLE not in queue_page.text


# --- the decisions -----------------------------------------------------------------------------


def test_one_click_close_closes_the_thread_as_a_duplicate(
    db: Session, flagged: tuple[Thread, DuplicateSuggestion], original: Thread,
    as_role: RoleClient,
) -> None:  # fmt: skip
    question, suggestion = flagged
    moderator, mod_user = as_role(Role.MODERATOR)
    assert mod_user is not None
    response = _post(moderator, f"/mod/duplicates/{suggestion.id}/close", back=f"/t/{question.id}")
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == f"/t/{question.id}"  # type: ignore[attr-defined]
    fresh(db)
    closed = db.get(Thread, question.id)
    assert closed is not None
    assert closed.status == ThreadStatus.CLOSED
    assert closed.closed_reason == "duplicate"
    assert closed.duplicate_of_id == original.id
    decided = db.get(DuplicateSuggestion, suggestion.id)
    assert decided is not None
    assert decided.status == SuggestionStatus.CLOSED_AS_DUPLICATE
    assert decided.decided_by_id == mod_user.id and decided.decided_at is not None
    audit = db.scalars(select(AuditLog).where(AuditLog.action == "thread.closed")).one()
    assert audit.after == {"status": "closed", "reason": "duplicate", "duplicate_of": original.id}
    page = moderator.get(f"/t/{question.id}").text
    assert "duplicate-notice" not in page
    assert "Closed as a duplicate" in page
    assert f'id="duplicate-{suggestion.id}"' not in moderator.get("/b/acme/mod/duplicates").text
    again = _post(moderator, f"/mod/duplicates/{suggestion.id}/close")
    assert again.status_code == 409  # type: ignore[attr-defined]


def test_closing_from_the_queue_with_htmx_swaps_the_item(
    db: Session, flagged: tuple[Thread, DuplicateSuggestion], as_role: RoleClient
) -> None:
    question, suggestion = flagged
    moderator, _user = as_role(Role.MODERATOR)
    response = _post(moderator, f"/mod/duplicates/{suggestion.id}/close", **{"HX-Request": "true"})
    assert response.status_code == 200  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    assert f'<li class="card mod-item handled" id="duplicate-{suggestion.id}"' in text
    assert f"Closed as a duplicate of “{ORIGINAL_TITLE}”." in text
    assert 'hx-swap-oob="true"' in text and "Possible duplicates (0)" in text
    fresh(db)
    closed = db.get(Thread, question.id)
    assert closed is not None and closed.status == ThreadStatus.CLOSED


def test_not_a_duplicate_hides_the_suggestion_for_good(
    db: Session, flagged: tuple[Thread, DuplicateSuggestion], as_role: RoleClient
) -> None:
    question, suggestion = flagged
    moderator, mod_user = as_role(Role.MODERATOR)
    assert mod_user is not None
    response = _post(moderator, f"/mod/duplicates/{suggestion.id}/dismiss")
    assert response.status_code == 303  # type: ignore[attr-defined]
    fresh(db)
    thread = db.get(Thread, question.id)
    assert thread is not None and thread.status != ThreadStatus.CLOSED
    decided = db.get(DuplicateSuggestion, suggestion.id)
    assert decided is not None and decided.status == SuggestionStatus.DISMISSED
    assert decided.decided_by_id == mod_user.id
    assert db.scalars(
        select(AuditLog.after).where(AuditLog.action == "thread.duplicate_dismissed")
    ).one() == {"not_duplicate_of": suggestion.candidate_thread_id}
    assert "duplicate-notice" not in moderator.get(f"/t/{question.id}").text
    assert f'id="duplicate-{suggestion.id}"' not in moderator.get("/b/acme/mod/duplicates").text


def test_without_the_csrf_token_nothing_changes(
    db: Session, flagged: tuple[Thread, DuplicateSuggestion], as_role: RoleClient
) -> None:
    question, suggestion = flagged
    moderator, _user = as_role(Role.MODERATOR)
    for action in ("close", "dismiss"):
        response = moderator.post(
            f"/mod/duplicates/{suggestion.id}/{action}", data={}, follow_redirects=False
        )
        assert response.status_code == 403
    fresh(db)
    thread = db.get(Thread, question.id)
    assert thread is not None and thread.status != ThreadStatus.CLOSED
    assert _suggestions(db, question)[0].status == SuggestionStatus.OPEN


@pytest.mark.parametrize(("role", "status"), [(Role.MEMBER, 404), (None, 303)])
def test_members_and_anonymous_cannot_act_on_a_suggestion(
    db: Session,
    flagged: tuple[Thread, DuplicateSuggestion],
    as_role: RoleClient,
    role: Role | None,
    status: int,
) -> None:
    question, suggestion = flagged
    client, _user = as_role(role)
    for action in ("close", "dismiss"):
        response = _post(client, f"/mod/duplicates/{suggestion.id}/{action}")
        assert response.status_code == status  # type: ignore[attr-defined]
        if role is None:  # sent to log in first
            assert response.headers["location"].startswith("/login")  # type: ignore[attr-defined]
    fresh(db)
    thread = db.get(Thread, question.id)
    assert thread is not None and thread.status != ThreadStatus.CLOSED
    assert _suggestions(db, question)[0].status == SuggestionStatus.OPEN


def test_a_thread_closed_by_hand_leaves_the_queue(
    db: Session, flagged: tuple[Thread, DuplicateSuggestion], as_role: RoleClient
) -> None:
    question, suggestion = flagged
    moderator, _user = as_role(Role.MODERATOR)
    moderator.post(
        f"/mod/threads/{question.id}/close",
        data={"close_reason": "off_topic", "csrf_token": csrf_token(moderator, "/")},
    )
    assert f'id="duplicate-{suggestion.id}"' not in moderator.get("/b/acme/mod/duplicates").text
    refused = _post(moderator, f"/mod/duplicates/{suggestion.id}/close")
    assert refused.status_code == 409  # type: ignore[attr-defined]
    fresh(db)
    thread = db.get(Thread, question.id)
    assert thread is not None and thread.closed_reason == "off_topic"
