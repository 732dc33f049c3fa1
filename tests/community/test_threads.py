"""Asking, answering, editing, deleting and listing threads (service level)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community import thread_editing, thread_reading, threads, voting
from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.errors import BadRequest, FormErrors, NotFound, PermissionDenied
from community.core.models import (
    Forum,
    Post,
    PostRevision,
    Role,
    Tag,
    Thread,
    ThreadKind,
    ThreadStatus,
    User,
    Visibility,
)
from community.core.schemas import AnswerIn, AskIn, EditIn
from tests.conftest import QA, fresh

UserFactory = Callable[..., User]


def _ask(db: Session, forum: Forum, author: User, **fields: object) -> Thread:
    data = {"title": "A perfectly fine title", "body": "Body text", "tags": []} | fields
    return threads.ask(db, author, forum, AskIn(**data), locale="en")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "too short"}, "title"),
        ({"title": "x" * 151}, "title"),
        ({"title": "   \u200b\u200b          "}, "title"),
        ({"body": "   "}, "body"),
        ({"body": "x" * 30_001}, "body"),
        ({"tags": ["ok", "not a/valid tag"]}, "tags"),
        ({"tags": ["<script>"]}, "tags"),
        ({"tags": ["a", "b", "c", "d", "e", "f"]}, "tags"),
    ],
)
def test_ask_rejects_bad_input_and_changes_nothing(
    db: Session,
    forum: Forum,
    make_user: UserFactory,
    fields: dict[str, object],
    field: str,
) -> None:
    author = make_user("asker")
    with pytest.raises(FormErrors) as error:
        _ask(db, forum, author, **fields)
    assert field in error.value.errors
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Thread)) == 0
    assert db.scalar(select(func.count()).select_from(Post)) == 0


def test_ask_reports_every_bad_field_at_once(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    with pytest.raises(FormErrors) as error:
        _ask(db, forum, make_user("asker"), title="short", body="", tags=["bad tag!"])
    assert set(error.value.errors) == {"title", "body", "tags"}


def test_ask_creates_thread_question_tags_and_counters(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    author = make_user("asker")
    thread = _ask(
        db,
        forum,
        author,
        title="  Wi-Fi   drops every evening  ",
        body="Since **Monday**.",
        tags=["WiFi", "router", "wifi", "ñandú"],
        kind=ThreadKind.PROBLEM,
    )
    db.commit()
    fresh(db)
    stored = db.get(Thread, thread.id)
    assert stored is not None
    assert stored.title == "Wi-Fi drops every evening"
    assert stored.kind == ThreadKind.PROBLEM
    assert stored.status == ThreadStatus.OPEN
    assert [tag.name for tag in stored.tags] == ["router", "wifi", "ñandú"]
    question = db.scalars(select(Post).where(Post.thread_id == thread.id)).one()
    assert question.is_question
    assert question.body_html == "<p>Since <strong>Monday</strong>.</p>\n"
    forum_row = db.get(Forum, forum.id)
    assert forum_row is not None
    assert (forum_row.thread_count, forum_row.post_count) == (1, 1)
    assert threads.is_watching(db, author.id, thread.id)  # askers follow their question
    counts = {tag.name: tag.thread_count for tag in db.scalars(select(Tag))}
    assert counts == {"router": 1, "wifi": 1, "ñandú": 1}


def test_answer_moves_status_counters_and_first_response(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker)
    own = qa.answer(asker, thread, "Adding details myself.")
    fresh(db)
    stored = db.get(Thread, thread.id)
    assert stored is not None
    assert stored.status == ThreadStatus.ANSWERED
    assert stored.first_response_at is None  # the asker's own reply is not a response
    assert not own.is_official
    reply = qa.answer(helper, thread)
    fresh(db)
    stored = db.get(Thread, thread.id)
    assert stored is not None
    assert stored.reply_count == 2
    assert stored.first_response_at == reply.created_at
    assert stored.last_activity_at == reply.created_at
    assert db.get(Forum, qa.forum.id).post_count == 3  # type: ignore[union-attr]


def test_agent_answers_are_official(db: Session, qa: QA, make_user: UserFactory) -> None:
    thread = qa.ask(make_user("asker"))
    post = qa.answer(make_user("lee", role=Role.AGENT), thread)
    assert post.is_official


def test_locked_and_hidden_threads(db: Session, qa: QA, make_user: UserFactory) -> None:
    asker, member, moderator = (
        make_user("asker"),
        make_user("member"),
        make_user("moddy", role=Role.MODERATOR),
    )
    thread = qa.ask(asker)
    thread.locked_at = utcnow()
    db.commit()
    with pytest.raises(PermissionDenied):
        threads.answer(db, member, thread, AnswerIn(body="hi"))
    db.rollback()
    qa.answer(moderator, thread, "Staff may still post here.")
    thread.visibility = Visibility.HIDDEN
    db.commit()
    with pytest.raises(NotFound):
        threads.access_thread(db, member, thread.id)
    with pytest.raises(NotFound):
        threads.access_thread(db, None, thread.id)
    assert threads.access_thread(db, moderator, thread.id).id == thread.id


def test_suspended_members_read_but_do_not_post(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, suspended = make_user("asker"), make_user("troll")
    thread = qa.ask(asker)
    suspended.suspended_until = utcnow() + timedelta(days=3)
    db.commit()
    assert threads.access_thread(db, suspended, thread.id).id == thread.id
    with pytest.raises(PermissionDenied):
        threads.answer(db, suspended, thread, AnswerIn(body="hello"))


def test_edit_keeps_history_and_staff_need_a_reason(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, other = make_user("asker"), make_user("other")
    moderator = make_user("moddy", role=Role.MODERATOR)
    thread = qa.ask(asker, body="first version", tags=["wifi"])
    question = db.scalars(select(Post).where(Post.thread_id == thread.id)).one()

    with pytest.raises(PermissionDenied):
        thread_editing.edit_post(db, other, question, EditIn(body="vandalism"))
    db.rollback()
    thread_editing.edit_post(
        db,
        asker,
        question,
        EditIn(body="second version", title="A better, clearer title", tags=["wifi", "router"]),
    )
    db.commit()
    with pytest.raises(FormErrors) as missing_reason:
        thread_editing.edit_post(db, moderator, question, EditIn(body="third version"))
    assert "reason" in missing_reason.value.errors
    db.rollback()
    thread_editing.edit_post(
        db, moderator, question, EditIn(body="third version", reason="Typo fix")
    )
    db.commit()

    fresh(db)
    history = list(
        db.scalars(
            select(PostRevision)
            .where(PostRevision.post_id == question.id)
            .order_by(PostRevision.number)
        )
    )
    assert [(rev.number, rev.body_source) for rev in history] == [
        (1, "first version"),
        (2, "second version"),
        (3, "third version"),
    ]
    assert (
        history[0].editor_id == asker.id
        and history[0].title == "How do I move my number to an eSIM?"
    )
    assert history[1].tags == "router wifi"
    assert (history[2].editor_id, history[2].reason) == (moderator.id, "Typo fix")
    stored = db.get(Thread, thread.id)
    assert stored is not None and stored.title == "A better, clearer title"
    post = db.get(Post, question.id)
    assert post is not None and post.edit_count == 2 and post.edited_at is not None
    audit = list(db.scalars(select(AuditLog)))
    assert [(entry.action, entry.actor_id) for entry in audit] == [("post.edited", moderator.id)]


def test_delete_rules(db: Session, qa: QA, make_user: UserFactory) -> None:
    asker, helper, other = make_user("asker"), make_user("helper"), make_user("other")
    thread = qa.ask(asker)
    question = db.scalars(select(Post).where(Post.thread_id == thread.id)).one()
    reply = qa.answer(helper, thread)

    with pytest.raises(PermissionDenied):
        thread_editing.delete_post(db, other, reply)
    db.rollback()
    with pytest.raises(PermissionDenied):  # the asker cannot take answered content away
        thread_editing.delete_post(db, asker, question)
    db.rollback()

    voting.accept(db, asker, reply.id)
    db.commit()
    thread_editing.delete_post(db, helper, reply)
    db.commit()
    fresh(db)
    stored = db.get(Thread, thread.id)
    assert stored is not None
    assert (stored.reply_count, stored.accepted_post_id, stored.status) == (
        0,
        None,
        ThreadStatus.OPEN,
    )
    assert db.get(User, helper.id).reputation == 0  # type: ignore[union-attr]
    assert db.get(Post, reply.id).visibility == Visibility.DELETED  # type: ignore[union-attr]

    thread_editing.delete_post(db, asker, question)  # no answers left: allowed
    db.commit()
    fresh(db)
    assert db.get(Thread, thread.id).visibility == Visibility.DELETED  # type: ignore[union-attr]
    forum = db.get(Forum, qa.forum.id)
    assert forum is not None and (forum.thread_count, forum.post_count) == (0, 0)
    with pytest.raises(NotFound):
        threads.access_thread(db, other, thread.id)


def test_moderator_can_delete_an_answered_question_and_it_is_audited(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    moderator = make_user("moddy", role=Role.MODERATOR)
    thread = qa.ask(asker)
    qa.answer(helper, thread)
    question = db.scalars(
        select(Post).where(Post.thread_id == thread.id, Post.is_question.is_(True))
    ).one()
    thread_editing.delete_post(db, moderator, question, reason="spam")
    db.commit()
    entry = db.scalars(select(AuditLog)).one()
    assert (entry.action, entry.reason) == ("thread.deleted", "spam")


# --- listing ---------------------------------------------------------------------------------


def _make_threads(qa: QA, author: User, count: int) -> list[Thread]:
    made = []
    base = utcnow() - timedelta(days=count)
    for index in range(count):
        thread = qa.ask(
            author,
            title=f"Question number {index:03d} about phones",
            tags=["phones"] if index % 3 == 0 else [],
        )
        thread.created_at = thread.last_activity_at = base + timedelta(hours=index)
        thread.score = index % 7
        made.append(thread)
    qa.db.commit()
    return made


def _walk(db: Session, forum: Forum, **query: object) -> list[int]:
    seen: list[int] = []
    cursor = None
    while True:
        listing = thread_reading.list_threads(
            db,
            forum,
            thread_reading.ThreadQuery(cursor=cursor, limit=7, **query),  # type: ignore[arg-type]
        )
        seen.extend(thread.id for thread in listing.items)
        if listing.next_cursor is None:
            return seen
        cursor = listing.next_cursor


def test_keyset_pagination_walks_every_thread_once_in_order(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    made = _make_threads(qa, make_user("asker"), 40)
    by_activity = [
        t.id for t in sorted(made, key=lambda t: (t.last_activity_at, t.id), reverse=True)
    ]
    assert _walk(db, qa.forum, sort="activity") == by_activity
    by_score = [t.id for t in sorted(made, key=lambda t: (t.score, t.id), reverse=True)]
    assert _walk(db, qa.forum, sort="top") == by_score
    tagged = [
        t.id
        for t in sorted(made, key=lambda t: (t.last_activity_at, t.id), reverse=True)
        if t.id in {m.id for m in made[::3]}
    ]
    assert _walk(db, qa.forum, sort="activity", tag="phones") == tagged
    assert _walk(db, qa.forum, sort="activity", tag="nonexistent") == []


def test_listing_filters_and_hides_what_members_may_not_see(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    unanswered = qa.ask(asker, title="Nobody answered this one yet")
    answered = qa.ask(asker, title="Somebody answered this one")
    solved = qa.ask(asker, title="This one is solved already", kind=ThreadKind.PROBLEM)
    hidden = qa.ask(asker, title="This one was hidden by a mod")
    qa.answer(helper, answered)
    voting.accept(db, asker, qa.answer(helper, solved).id)
    hidden.visibility = Visibility.HIDDEN
    db.commit()

    def ids(**query: object) -> set[int]:
        return {
            t.id
            for t in thread_reading.list_threads(
                db, qa.forum, thread_reading.ThreadQuery(**query)
            ).items
        }  # type: ignore[arg-type]

    assert ids() == {unanswered.id, answered.id, solved.id}
    assert ids(sort="unanswered") == {unanswered.id}
    assert ids(sort="solved") == {solved.id}
    assert ids(status=ThreadStatus.ANSWERED) == {answered.id}
    assert ids(kind=ThreadKind.PROBLEM) == {solved.id}


@pytest.mark.parametrize("cursor", ["garbage", "eyJ4IjoxfQ", "WyJ0b3AiLCJ4IiwxXQ", "W10"])
def test_bad_cursors_are_client_errors(db: Session, qa: QA, cursor: str) -> None:
    with pytest.raises(BadRequest):
        thread_reading.list_threads(
            db, qa.forum, thread_reading.ThreadQuery(sort="top", cursor=cursor)
        )


def test_cursor_of_one_sort_is_refused_by_another(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    made = _make_threads(qa, make_user("asker"), 3)
    cursor = thread_reading.encode_cursor("top", made[0])
    with pytest.raises(BadRequest):
        thread_reading.list_threads(
            db, qa.forum, thread_reading.ThreadQuery(sort="newest", cursor=cursor)
        )


def test_thread_page_orders_question_accepted_then_answers(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, a, b, c = (make_user(name) for name in ("asker", "ann", "bob", "cat"))
    thread = qa.ask(asker)
    first, second, third = (
        qa.answer(a, thread, "one"),
        qa.answer(b, thread, "two"),
        qa.answer(c, thread, "three"),
    )
    voting.cast_vote(db, asker, third.id, 1)
    voting.accept(db, asker, second.id)
    db.commit()
    fresh(db)
    stored = threads.access_thread(db, asker, thread.id)
    page = thread_reading.thread_page(db, asker, stored)
    assert page.question.is_question
    assert page.accepted is not None and page.accepted.id == second.id
    assert [post.id for post in page.answers] == [third.id, first.id]  # by score, then date
    by_date = thread_reading.thread_page(db, asker, stored, answer_sort="date")
    assert [post.id for post in by_date.answers] == [first.id, third.id]
    assert page.my_votes == {third.id: 1}
    assert page.permissions.can_accept
    assert not page.permissions.can_vote(page.question)  # own question
