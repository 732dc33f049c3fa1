"""A brand's forums as its admins run them (community.forum_admin): creating (slugs taken or
reserved), changing, ordering, archiving, and moving threads between forums in bulk with every
forum's counters kept right, an audit row and a search update per thread, all or nothing."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from community import forum_admin, visibility
from community.brand_admin import SlugTaken
from community.brand_schemas import ForumIn, ForumPatch, ThreadMoveIn
from community.core import indexing, service
from community.core.audit import AuditLog
from community.core.errors import FormErrors, PermissionDenied
from community.core.models import Brand, Forum, ForumAccess, Post, Role, Thread, User, Visibility
from community.core.outbox import OutboxEvent
from community.core.web import walk_routes
from tests.community.test_brand_admin import brand_admin_of, make_brand
from tests.conftest import QA, fresh

UserFactory = Callable[..., User]


def _forum(db: Session, brand: Brand, slug: str, name: str) -> Forum:
    admin = db.scalar(select(User).where(User.username == "chief"))
    assert admin is not None
    forum = forum_admin.do_create_forum(db, admin, brand, ForumIn(slug=slug, name=name))
    db.commit()
    return forum


@pytest.fixture
def chief(make_user: UserFactory) -> User:
    return make_user("chief", role=Role.ADMIN)


def _order(db: Session, brand: Brand) -> list[str]:
    return [forum.slug for forum in service.list_forums(db, brand)]


def test_reserved_slugs_cover_every_page_under_a_brand(app: FastAPI) -> None:
    """A forum named like a page of the brand (/b/<brand>/kb ...) could never be reached."""
    segments = set()
    for route in walk_routes(app.router.routes):
        match = re.match(r"^/b/\{brand_slug\}/([^/{]+)", getattr(route, "path", ""))
        if match:
            segments.add(match.group(1))
    assert {"kb", "search", "mod", "ask"} <= segments
    assert segments <= forum_admin.RESERVED_FORUM_SLUGS


def test_forums_are_created_last_and_their_slugs_are_unique_per_brand(
    db: Session, forum: Forum, chief: User
) -> None:
    brand = forum.brand
    billing = _forum(db, brand, "billing", "Billing")
    assert _order(db, brand) == ["mobile", "billing"] and billing.access == ForumAccess.PUBLIC
    with pytest.raises(SlugTaken) as caught:
        forum_admin.do_create_forum(db, chief, brand, ForumIn(slug="mobile", name="Again"))
    assert caught.value.status_code == 409
    db.rollback()
    with pytest.raises(FormErrors):
        forum_admin.do_create_forum(db, chief, brand, ForumIn(slug="search", name="Search"))
    db.rollback()
    # Another brand may use the same slug.
    globex = make_brand(db, "globex", "Globex")
    assert _forum(db, globex, "mobile", "Mobile").brand_id == globex.id
    entry = db.scalars(
        select(AuditLog).where(AuditLog.action == "forum.created").order_by(AuditLog.id)
    ).first()
    assert entry is not None and entry.after is not None and entry.after["slug"] == "billing"


def test_a_brand_admin_runs_only_their_own_brands_forums(
    db: Session, forum: Forum, make_user: UserFactory, chief: User
) -> None:
    globex = make_brand(db, "globex", "Globex")
    routers = _forum(db, globex, "routers", "Routers")
    owner = brand_admin_of(db, make_user, forum.brand, "owner")
    assert forum_admin.do_create_forum(db, owner, forum.brand, ForumIn(slug="tv", name="TV"))
    with pytest.raises(PermissionDenied):
        forum_admin.do_create_forum(db, owner, globex, ForumIn(slug="tv", name="TV"))
    with pytest.raises(PermissionDenied):
        forum_admin.do_update_forum(db, owner, routers, ForumPatch(name="Mine"))
    with pytest.raises(PermissionDenied):
        forum_admin.do_set_forum_archived(db, owner, routers, True)
    moderator = make_user("modder", role=Role.MODERATOR)
    with pytest.raises(PermissionDenied):
        forum_admin.do_update_forum(db, moderator, forum, ForumPatch(name="Mine"))


def test_changing_access_is_audited_and_has_search_follow(
    db: Session, forum: Forum, chief: User
) -> None:
    patch = ForumPatch(name="Phones", access=ForumAccess.VERIFIED, description="Handsets")
    assert forum_admin.do_update_forum(db, chief, forum, patch)
    db.commit()
    assert (forum.name, forum.access, forum.description) == (
        "Phones",
        ForumAccess.VERIFIED,
        "Handsets",
    )
    entry = db.scalars(select(AuditLog).where(AuditLog.action == "forum.updated")).one()
    assert entry.before == {"name": "Mobile", "description": "Phones", "access": "public"}
    kinds = [event.kind for event in db.scalars(select(OutboxEvent))]
    assert kinds == [indexing.SCOPE_CHANGED]
    # The same values again: nothing changes, nothing is written.
    assert not forum_admin.do_update_forum(db, chief, forum, patch)


def test_forums_are_reordered_up_down_and_to_a_position(
    db: Session, forum: Forum, chief: User
) -> None:
    brand = forum.brand
    _forum(db, brand, "billing", "Billing")
    tv = _forum(db, brand, "tv", "TV")
    assert forum_admin.do_reorder_forum(db, chief, tv, 0)
    db.commit()
    assert _order(db, brand) == ["tv", "mobile", "billing"]
    assert forum_admin.do_update_forum(db, chief, forum, ForumPatch(position=99))
    db.commit()
    assert _order(db, brand) == ["tv", "billing", "mobile"]
    assert not forum_admin.do_reorder_forum(db, chief, tv, 0)  # already first
    assert [f.position for f in service.list_forums(db, brand)] == [0, 1, 2]
    entry = db.scalars(
        select(AuditLog).where(AuditLog.action == "forum.reordered").order_by(AuditLog.id)
    ).first()
    assert entry is not None and entry.after == {"order": ["tv", "mobile", "billing"]}


def test_an_archived_forum_leaves_the_list_and_comes_back_last(
    db: Session, forum: Forum, chief: User
) -> None:
    brand = forum.brand
    _forum(db, brand, "billing", "Billing")
    _forum(db, brand, "tv", "TV")
    assert forum_admin.do_set_forum_archived(db, chief, forum, True)
    assert not forum_admin.do_set_forum_archived(db, chief, forum, True)
    db.commit()
    assert _order(db, brand) == ["billing", "tv"]
    with pytest.raises(FormErrors):
        forum_admin.do_reorder_forum(db, chief, forum, 0)
    assert [f.slug for f in forum_admin.brand_forums(db, brand)] == ["billing", "tv", "mobile"]
    assert forum_admin.do_set_forum_archived(db, chief, forum, False)
    db.commit()
    assert _order(db, brand) == ["billing", "tv", "mobile"]
    actions_written = [row.action for row in db.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions_written[-2:] == ["forum.archived", "forum.unarchived"]


# --- moving threads in bulk --------------------------------------------------------------------


def _counts(db: Session, *forums: Forum) -> list[tuple[int, int]]:
    fresh(db)
    return [(f.thread_count, f.post_count) for f in (db.get(Forum, x.id) for x in forums) if f]


def test_a_bulk_move_keeps_every_forums_counters_right(
    db: Session, qa: QA, make_user: UserFactory, chief: User
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    first = qa.ask(asker, title="My phone will not charge at all")
    qa.answer(helper, first)
    qa.answer(helper, first)
    second = qa.ask(asker, title="The screen flickers after the update")
    qa.answer(helper, second)
    stays = qa.ask(asker, title="Which case fits the new model best?")
    hidden = qa.ask(asker, title="Buy cheap followers here right now")
    question = db.scalars(select(Post).where(Post.thread_id == hidden.id, Post.is_question)).one()
    visibility.set_visibility(db, question, Visibility.HIDDEN)  # counted no more
    db.commit()
    source = qa.forum
    target = _forum(db, source.brand, "screens", "Screens")
    before = _counts(db, source, target)
    assert before == [(3, 6), (0, 0)]  # three visible threads, three questions and 3 answers
    data = ThreadMoveIn(thread_ids=[second.id, first.id, hidden.id, first.id], forum="screens")
    moved = forum_admin.do_move_threads(db, chief, source.brand, data, ip="192.0.2.7")
    db.commit()
    assert moved == 3
    # first (question + 2 answers) and second (question + 1 answer) moved; the hidden thread
    # was counted nowhere and still is not.
    after = _counts(db, source, target)
    assert after == [(1, 1), (2, 5)]
    assert db.get(Thread, stays.id).forum_id == source.id  # type: ignore[union-attr]
    for thread in (first, second, hidden):
        assert db.get(Thread, thread.id).forum_id == target.id  # type: ignore[union-attr]
    moved_rows = db.scalars(select(AuditLog).where(AuditLog.action == "thread.moved")).all()
    assert sorted(int(row.target_id) for row in moved_rows) == sorted(
        [first.id, second.id, hidden.id]
    )
    assert all(row.after == {"forum": "screens"} and row.ip == "192.0.2.7" for row in moved_rows)
    searched = {
        event.payload["thread_id"]
        for event in db.scalars(
            select(OutboxEvent).where(OutboxEvent.kind == indexing.THREAD_CHANGED)
        )
    }
    assert {first.id, second.id, hidden.id} <= searched
    # Moving them again changes nothing.
    assert forum_admin.do_move_threads(db, chief, source.brand, data) == 0
    db.commit()
    assert _counts(db, source, target) == after


def test_a_bulk_move_is_all_or_nothing(
    db: Session, qa: QA, make_user: UserFactory, chief: User
) -> None:
    asker = make_user("asker")
    mine = qa.ask(asker, title="My phone will not charge at all")
    globex = make_brand(db, "globex", "Globex")
    elsewhere = Forum(brand_id=globex.id, slug="routers", name="Routers")
    db.add(elsewhere)
    db.commit()
    foreign = Thread(forum_id=elsewhere.id, author_id=asker.id, title="Router blinks red")
    db.add(foreign)
    db.commit()
    brand = qa.forum.brand
    target = _forum(db, brand, "screens", "Screens")
    refusals = [
        ThreadMoveIn(thread_ids=[mine.id, foreign.id], forum="screens"),  # another brand's
        ThreadMoveIn(thread_ids=[mine.id, 10**12], forum="screens"),  # no such thread
        ThreadMoveIn(thread_ids=[mine.id], forum="routers"),  # another brand's forum
        ThreadMoveIn(thread_ids=[mine.id], forum="nowhere"),
    ]
    for data in refusals:
        with pytest.raises(FormErrors):
            forum_admin.do_move_threads(db, chief, brand, data)
        db.rollback()
    forum_admin.do_set_forum_archived(db, chief, target, True)
    db.commit()
    with pytest.raises(FormErrors) as caught:
        forum_admin.do_move_threads(
            db, chief, brand, ThreadMoveIn(thread_ids=[mine.id], forum="screens")
        )
    assert "forum" in caught.value.errors
    db.rollback()
    owner = brand_admin_of(db, make_user, globex, "owner")
    with pytest.raises(PermissionDenied):
        forum_admin.do_move_threads(
            db, owner, brand, ThreadMoveIn(thread_ids=[mine.id], forum="mobile")
        )
    db.rollback()
    fresh(db)
    assert db.get(Thread, mine.id).forum_id == qa.forum.id  # type: ignore[union-attr]
    assert db.scalars(select(AuditLog).where(AuditLog.action == "thread.moved")).all() == []
