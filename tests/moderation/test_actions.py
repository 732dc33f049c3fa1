"""Moderator actions: each one's effect, counters, idempotency, permissions, the audit row it
writes, and one result when two moderators act on the same thing at once."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from community import thread_editing, threads
from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.errors import FormErrors, PermissionDenied
from community.core.models import (
    Brand,
    Forum,
    Notification,
    NotificationKind,
    Post,
    PostRevision,
    Role,
    Thread,
    ThreadStatus,
    User,
    UserSession,
    Visibility,
)
from community.core.notifications import describe
from community.core.schemas import AnswerIn, EditIn
from community.core.settings import Settings
from community.worker import Worker
from crowdservice import agent as crowd_agent
from crowdservice import escalation
from crowdservice.models import EscalationReason
from kb import service as kb_service
from kb.models import CandidateStatus, PromotionCandidate
from moderation import accounts, actions, decisions, queue
from moderation.models import AccountWarning, FlagReason, ItemStatus, Queue, QueueItem
from tests.conftest import QA, csrf_token, drain, fresh, log_in, run_concurrently

UserFactory = Callable[..., User]
RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]


@pytest.fixture
def moderator(make_user: UserFactory) -> User:
    return make_user("modsam", role=Role.MODERATOR)


def _audit(db: Session, action: str) -> list[AuditLog]:
    fresh(db)
    return list(db.scalars(select(AuditLog).where(AuditLog.action == action)))


def _forum(db: Session) -> Forum:
    fresh(db)
    return db.scalars(select(Forum).where(Forum.slug == "mobile")).one()


def _question(db: Session, thread: Thread) -> Post:
    return db.scalars(
        select(Post).where(Post.thread_id == thread.id, Post.is_question.is_(True))
    ).one()


def _held_thread(db: Session, qa: QA, make_user: UserFactory, name: str) -> tuple[Thread, Post]:
    newcomer = make_user(name, trust_level=0)
    thread = qa.ask(newcomer, title=f"Question from {name} about roaming charges")
    assert thread.visibility == Visibility.PENDING
    return thread, _question(db, thread)


def _pending_item(db: Session, post: Post) -> QueueItem:
    fresh(db)
    return db.scalars(
        select(QueueItem).where(QueueItem.post_id == post.id, QueueItem.queue == Queue.PENDING)
    ).one()


# --- queue decisions -------------------------------------------------------------------------


def test_approve_publishes_a_held_post_and_counts_it(
    db: Session, qa: QA, make_user: UserFactory, moderator: User
) -> None:
    thread, question = _held_thread(db, qa, make_user, "newbie")
    assert _forum(db).thread_count == 0
    decisions.resolve(db, moderator, _pending_item(db, question), decisions.Decision.APPROVE)
    db.commit()
    forum = _forum(db)
    assert forum.thread_count == 1 and forum.post_count == 1
    assert db.get(Thread, thread.id).visibility == Visibility.VISIBLE  # type: ignore[union-attr]
    stored = db.scalars(select(QueueItem)).one()
    assert stored.status == ItemStatus.RESOLVED
    assert stored.resolved_by_id == moderator.id and stored.resolution == "approve"
    shown = _audit(db, "post.shown")
    assert len(shown) == 1 and shown[0].actor_id == moderator.id
    assert shown[0].before == {"visibility": "pending"} and shown[0].after == {
        "visibility": "visible"
    }


def test_reject_needs_a_reason_which_reaches_the_author(
    db: Session, qa: QA, make_user: UserFactory, moderator: User
) -> None:
    thread, question = _held_thread(db, qa, make_user, "newbie")
    item = _pending_item(db, question)
    with pytest.raises(FormErrors):
        decisions.resolve(db, moderator, item, decisions.Decision.REJECT, reason=" ")
    db.rollback()
    assert _pending_item(db, question).status == ItemStatus.OPEN  # nothing changed

    decisions.resolve(
        db, moderator, _pending_item(db, question), decisions.Decision.REJECT,
        reason="please ask in the billing forum",
    )  # fmt: skip
    db.commit()
    fresh(db)
    assert db.get(Thread, thread.id).visibility == Visibility.DELETED  # type: ignore[union-attr]
    notice = db.scalars(
        select(Notification).where(
            Notification.user_id == thread.author_id,
            Notification.kind == NotificationKind.MODERATION,
        )
    ).one()
    assert "billing forum" in describe(notice)
    assert _forum(db).thread_count == 0


def test_hide_unhide_delete_restore_keep_counters_right(
    db: Session, qa: QA, make_user: UserFactory, moderator: User
) -> None:
    thread = qa.ask(make_user("asker"))
    answer = qa.answer(make_user("helper"), thread)
    assert _forum(db).post_count == 2
    steps = [
        (Visibility.HIDDEN, 1, "post.hidden"),
        (Visibility.VISIBLE, 2, "post.shown"),
        (Visibility.DELETED, 1, "post.deleted"),
        (Visibility.VISIBLE, 2, "post.shown"),
    ]
    for to, posts, action in steps:
        changed = actions.set_post_visibility(db, moderator, answer, to, reason=f"step {action}")
        db.commit()
        assert changed
        assert _forum(db).post_count == posts
        assert db.get(Thread, thread.id).reply_count == posts - 1  # type: ignore[union-attr]
    assert len(_audit(db, "post.shown")) == 2
    hidden = _audit(db, "post.hidden")[0]
    assert hidden.reason == "step post.hidden" and hidden.actor_role == "moderator"


def test_actions_are_idempotent(
    db: Session, qa: QA, make_user: UserFactory, moderator: User
) -> None:
    thread = qa.ask(make_user("asker"))
    answer = qa.answer(make_user("helper"), thread)
    member = make_user("member")
    results = [
        actions.set_post_visibility(db, moderator, answer, Visibility.HIDDEN, reason=None),
        actions.set_post_visibility(db, moderator, answer, Visibility.HIDDEN, reason=None),
        actions.set_locked(db, moderator, thread, True, reason=None),
        actions.set_locked(db, moderator, thread, True, reason=None),
        actions.close(db, moderator, thread, actions.CloseReason.OFF_TOPIC),
        actions.close(db, moderator, thread, actions.CloseReason.OFF_TOPIC),
        accounts.suspend(db, moderator, member, days=3, reason="x") and False,
        accounts.unsuspend(db, moderator, member),
        accounts.unsuspend(db, moderator, member),
    ]
    db.commit()
    assert results == [True, False, True, False, True, False, False, True, False]
    assert len(_audit(db, "post.hidden")) == 1
    assert len(_audit(db, "thread.locked")) == 1
    assert len(_audit(db, "thread.closed")) == 1
    assert _forum(db).post_count == 1


def test_members_cannot_moderate(db: Session, qa: QA, make_user: UserFactory) -> None:
    thread = qa.ask(make_user("asker"))
    answer = qa.answer(make_user("helper"), thread)
    member = make_user("member", trust_level=4)
    agent = make_user("agentana", role=Role.AGENT)
    for actor in (member, agent):
        with pytest.raises(PermissionDenied):
            actions.set_post_visibility(db, actor, answer, Visibility.HIDDEN, reason=None)
        with pytest.raises(PermissionDenied):
            actions.set_locked(db, actor, thread, True, reason=None)
        with pytest.raises(PermissionDenied):
            accounts.suspend(db, actor, make_user(), days=1, reason="x")
        db.rollback()
    assert _audit(db, "post.hidden") == []


def test_members_get_403_from_every_moderation_page(
    db: Session, qa: QA, make_user: UserFactory, as_role: RoleClient
) -> None:
    thread = qa.ask(make_user("asker"))
    answer = qa.answer(make_user("helper"), thread)
    _held, pending = _held_thread(db, qa, make_user, "newbie")
    item = _pending_item(db, pending)
    browser, _member = as_role(Role.MEMBER)
    token = csrf_token(browser, "/")
    for path in ("/mod", "/b/acme/mod", "/b/acme/mod/pending", "/mod/audit", "/mod/users/asker"):
        assert browser.get(path).status_code == 403, path
    for path in (
        f"/mod/items/{item.id}/approve",
        f"/mod/posts/{answer.id}/hide",
        f"/mod/threads/{thread.id}/lock",
        "/mod/users/asker/suspend",
    ):
        response = browser.post(path, data={"csrf_token": token, "days": "3", "reason": "x"})
        assert response.status_code == 403, path
    anonymous, _nobody = as_role(None)
    assert anonymous.get("/b/acme/mod", follow_redirects=False).status_code in (303, 401)
    fresh(db)
    assert db.get(Post, answer.id).visibility == Visibility.VISIBLE  # type: ignore[union-attr]
    assert db.get(QueueItem, item.id).status == ItemStatus.OPEN  # type: ignore[union-attr]


# --- editing, locking, closing, moving, merging ----------------------------------------------


def test_moderators_edit_with_a_reason_kept_in_history(
    db: Session, qa: QA, make_user: UserFactory, moderator: User
) -> None:
    thread = qa.ask(make_user("asker"))
    answer = qa.answer(make_user("helper"), thread, "Call 555-0100 and ask for the boss.")
    with pytest.raises(FormErrors):
        thread_editing.edit_post(db, moderator, answer, EditIn(body="Call support."))
    db.rollback()
    thread_editing.edit_post(
        db, moderator, answer, EditIn(body="Call support.", reason="removed a phone number")
    )
    db.commit()
    fresh(db)
    revisions = list(db.scalars(select(PostRevision).where(PostRevision.post_id == answer.id)))
    assert [revision.reason for revision in revisions][-1] == "removed a phone number"
    assert db.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action.like("post.edit%"))
    )


def test_locked_threads_take_no_new_answers_from_members(
    db: Session, qa: QA, make_user: UserFactory, moderator: User
) -> None:
    thread = qa.ask(make_user("asker"))
    actions.set_locked(db, moderator, thread, True, reason="heated")
    db.commit()
    with pytest.raises(PermissionDenied):
        threads.answer(db, make_user("helper"), thread, AnswerIn(body="One more thing..."))
    db.rollback()
    threads.answer(db, moderator, thread, AnswerIn(body="Locking this: see the FAQ."))
    db.commit()
    actions.set_locked(db, moderator, thread, False, reason="calmer now")
    db.commit()
    qa.answer(make_user("late"), thread)
    assert [row.reason for row in _audit(db, "thread.unlocked")] == ["calmer now"]


def test_close_as_duplicate_links_the_original_and_reopen_restores(
    db: Session, qa: QA, make_user: UserFactory, moderator: User
) -> None:
    original = qa.ask(make_user("first"), title="Voicemail does not work after update")
    copy = qa.ask(make_user("second"), title="Voicemail broken since the update")
    qa.answer(make_user("helper"), copy)
    with pytest.raises(FormErrors):
        actions.close(db, moderator, copy, actions.CloseReason.DUPLICATE)
    with pytest.raises(FormErrors):
        actions.close(db, moderator, copy, actions.CloseReason.DUPLICATE, duplicate_of=copy)
    db.rollback()
    actions.close(db, moderator, copy, actions.CloseReason.DUPLICATE, duplicate_of=original)
    db.commit()
    fresh(db)
    closed = db.get(Thread, copy.id)
    assert closed is not None and closed.status == ThreadStatus.CLOSED
    assert closed.duplicate_of_id == original.id and closed.closed_reason == "duplicate"
    assert _audit(db, "thread.closed")[0].after == {
        "status": "closed",
        "reason": "duplicate",
        "duplicate_of": original.id,
    }
    actions.reopen(db, moderator, closed)
    db.commit()
    fresh(db)
    reopened = db.get(Thread, copy.id)
    assert reopened is not None and reopened.status == ThreadStatus.ANSWERED
    assert reopened.duplicate_of_id is None


def test_the_closed_page_points_to_the_original(
    db: Session, qa: QA, make_user: UserFactory, moderator: User, client: TestClient
) -> None:
    original = qa.ask(make_user("first"), title="Voicemail does not work after update")
    copy = qa.ask(make_user("second"), title="Voicemail broken since the update")
    actions.close(db, moderator, copy, actions.CloseReason.DUPLICATE, duplicate_of=original)
    db.commit()
    page = client.get(f"/t/{copy.id}")
    assert page.status_code == 200
    assert f'href="/t/{original.id}"' in page.text


def test_move_to_another_forum_moves_the_counts(
    db: Session, qa: QA, make_user: UserFactory, moderator: User
) -> None:
    thread = qa.ask(make_user("asker"))
    qa.answer(make_user("helper"), thread)
    brand = db.scalars(select(Brand)).one()
    billing = Forum(brand_id=brand.id, slug="billing", name="Billing", description="")
    db.add(billing)
    db.commit()
    with pytest.raises(PermissionDenied):  # trust level 2 is not enough
        actions.move(db, make_user("member2", trust_level=2), thread, billing)
    db.rollback()
    assert actions.move(db, make_user("regular", trust_level=3), thread, billing, reason="billing")
    db.commit()
    fresh(db)
    mobile = db.scalars(select(Forum).where(Forum.slug == "mobile")).one()
    moved_to = db.scalars(select(Forum).where(Forum.slug == "billing")).one()
    assert (mobile.thread_count, mobile.post_count) == (0, 0)
    assert (moved_to.thread_count, moved_to.post_count) == (1, 2)
    assert _audit(db, "thread.moved")[0].after == {"forum": "billing"}


def test_merge_folds_posts_into_the_target_and_counts_once(
    db: Session, qa: QA, make_user: UserFactory, moderator: User
) -> None:
    target = qa.ask(make_user("first"), title="eSIM activation stuck")
    qa.answer(make_user("helper"), target)
    source = qa.ask(make_user("second"), title="eSIM will not activate")
    qa.answer(make_user("helper2"), source)
    qa.answer(make_user("helper3"), source)
    assert (_forum(db).thread_count, _forum(db).post_count) == (2, 5)

    moved = actions.merge(db, moderator, source, target, reason="same problem")
    db.commit()
    assert moved == 3
    assert actions.merge(db, moderator, source, target) == 0  # already merged: no-op
    db.commit()
    forum = _forum(db)
    assert (forum.thread_count, forum.post_count) == (1, 5)
    merged = db.get(Thread, target.id)
    assert merged is not None and merged.reply_count == 4
    pointer = db.get(Thread, source.id)
    assert pointer is not None and pointer.merged_into_id == target.id
    assert pointer.visibility == Visibility.DELETED
    assert db.scalar(select(func.count()).select_from(Post).where(Post.thread_id == source.id)) == 0
    with pytest.raises(FormErrors):
        actions.merge(db, moderator, target, target)


def test_a_merged_thread_redirects_to_its_target_and_leaves_the_kb_and_search(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    moderator: User,
    as_role: RoleClient,
    settings: Settings,
    engine: Engine,
) -> None:
    target = qa.ask(make_user("first"), title="eSIM activation stuck")
    source = qa.ask(make_user("second"), title="Quokka eSIM will not activate")
    moved_answer = qa.answer(make_user("helper"), source, "Restart after the carrier update.")
    brand = db.scalars(select(Brand)).one()
    db.add(
        PromotionCandidate(
            thread_id=source.id, brand_id=brand.id, score=80.0, reasons={},
            status=CandidateStatus.SUGGESTED,
        )
    )  # fmt: skip
    db.commit()
    worker = Worker(settings, make_session_factory(engine))
    drain(worker)
    anonymous, _nobody = as_role(None)
    search = {"q": "quokka", "scope": "community"}
    assert f'href="/t/{source.id}"' in anonymous.get("/b/acme/search", params=search).text

    actions.merge(db, moderator, source, target, reason="same problem")
    db.commit()
    drain(worker)
    staff, _mod = as_role(Role.MODERATOR)
    for browser in (anonymous, staff):
        moved = browser.get(f"/t/{source.id}?answers=date", follow_redirects=False)
        assert moved.status_code == 301
        assert moved.headers["location"] == f"/t/{target.id}?answers=date"
    followed = anonymous.get(f"/t/{source.id}")
    assert followed.status_code == 200 and f'id="post-{moved_answer.id}"' in followed.text

    api = anonymous.get(f"/api/v1/threads/{source.id}", follow_redirects=False)
    assert api.status_code == 301
    assert api.headers["location"] == f"/api/v1/threads/{target.id}"
    assert api.json()["error"]["code"] == "thread_merged"
    assert api.json()["error"]["details"] == {"merged_into": target.id}
    member, _member = as_role(Role.MEMBER)
    refused = member.post(
        f"/api/v1/threads/{source.id}/posts",
        json={"body": "Anyone?"},
        headers={"X-CSRF-Token": csrf_token(member, "/")},
    )
    assert refused.status_code == 404
    assert refused.json()["error"]["details"] == {"merged_into": target.id}

    # The KB queue and the search index forget the pointer.
    fresh(db)
    assert kb_service.candidates(db, brand) == []
    candidate = db.scalars(select(PromotionCandidate)).one()
    assert candidate.status == CandidateStatus.DISMISSED
    assert f'href="/t/{source.id}"' not in anonymous.get("/b/acme/search", params=search).text

    # A target members may not see is not revealed: a plain 404, no pointer.
    target_question = db.scalars(
        select(Post).where(Post.thread_id == target.id, Post.is_question.is_(True))
    ).one()
    actions.set_post_visibility(db, moderator, target_question, Visibility.HIDDEN, reason="x")
    db.commit()
    gone = anonymous.get(f"/t/{source.id}", follow_redirects=False)
    assert gone.status_code == 404
    hidden_api = anonymous.get(f"/api/v1/threads/{source.id}", follow_redirects=False)
    assert hidden_api.status_code == 404 and "merged_into" not in hidden_api.text
    assert staff.get(f"/t/{source.id}", follow_redirects=False).status_code == 301


def test_thread_actions_through_the_pages(
    db: Session, qa: QA, make_user: UserFactory, as_role: RoleClient
) -> None:
    thread = qa.ask(make_user("asker"))
    browser, _moderator = as_role(Role.MODERATOR)
    page = browser.get(f"/t/{thread.id}")
    token = csrf_token(browser, f"/t/{thread.id}")
    assert f'action="/mod/threads/{thread.id}/lock"' in page.text
    locked = browser.post(
        f"/mod/threads/{thread.id}/lock",
        data={"csrf_token": token, "reason": "cooling off"},
        follow_redirects=False,
    )
    assert locked.status_code == 303
    bad_close = browser.post(
        f"/mod/threads/{thread.id}/close", data={"csrf_token": token, "close_reason": "bored"}
    )
    assert bad_close.status_code == 422
    unknown = browser.post(f"/mod/threads/{thread.id}/explode", data={"csrf_token": token})
    assert unknown.status_code == 404
    no_token = browser.post(f"/mod/threads/{thread.id}/unlock")
    assert no_token.status_code == 403
    fresh(db)
    stored = db.get(Thread, thread.id)
    assert stored is not None and stored.locked_at is not None
    assert stored.status != ThreadStatus.CLOSED


# --- people ----------------------------------------------------------------------------------


def test_warning_reaches_the_member(db: Session, make_user: UserFactory, moderator: User) -> None:
    member = make_user("member")
    with pytest.raises(FormErrors):
        accounts.warn(db, moderator, member, "  ")
    db.rollback()
    accounts.warn(db, moderator, member, "Please keep it civil.")
    db.commit()
    fresh(db)
    assert db.scalars(select(AccountWarning)).one().message == "Please keep it civil."
    notice = db.scalars(select(Notification).where(Notification.user_id == member.id)).one()
    assert "keep it civil" in describe(notice)
    assert _audit(db, "user.warned")[0].target_id == str(member.id)


def test_suspension_ends_sessions_refuses_login_and_hides_posts_until_lifted(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    moderator: User,
    make_client: Callable[[], TestClient],
) -> None:
    rude = make_user("rudeguy")
    thread = qa.ask(rude, title="Why is your support so useless")
    other = qa.ask(make_user("asker"))
    answer = qa.answer(rude, other)
    browser = make_client()
    log_in(browser, "rudeguy")
    assert browser.get("/account").status_code == 200

    accounts.suspend(db, moderator, rude, days=7, reason="abuse")
    db.commit()
    fresh(db)
    assert browser.get("/account", follow_redirects=False).status_code in (303, 401)
    assert (
        db.scalar(
            select(func.count())
            .select_from(UserSession)
            .where(UserSession.user_id == rude.id, UserSession.revoked_at.is_(None))
        )
        == 0
    )
    again = make_client()
    token = csrf_token(again)
    refused = again.post(
        "/login",
        data={"login": "rudeguy", "password": "tall-orange-kettle-41", "csrf_token": token},
    )
    assert refused.status_code in (401, 403) and "suspended" in refused.text
    assert db.get(Thread, thread.id).visibility == Visibility.HIDDEN  # type: ignore[union-attr]
    assert db.get(Post, answer.id).visibility == Visibility.HIDDEN  # type: ignore[union-attr]
    forum = _forum(db)
    assert (forum.thread_count, forum.post_count) == (1, 1)
    assert _audit(db, "user.suspended")[0].after["posts_hidden"] == 2  # type: ignore[index]

    accounts.unsuspend(db, moderator, db.get(User, rude.id))  # type: ignore[arg-type]
    db.commit()
    fresh(db)
    assert db.get(Thread, thread.id).visibility == Visibility.VISIBLE  # type: ignore[union-attr]
    assert db.get(Post, answer.id).visibility == Visibility.VISIBLE  # type: ignore[union-attr]
    assert (_forum(db).thread_count, _forum(db).post_count) == (2, 3)
    log_in(make_client(), "rudeguy")


def test_posts_hidden_for_other_reasons_stay_hidden_after_a_suspension(
    db: Session, qa: QA, make_user: UserFactory, moderator: User
) -> None:
    rude = make_user("rudeguy")
    other = qa.ask(make_user("asker"))
    kept = qa.answer(rude, other)
    removed = qa.answer(rude, other)
    actions.set_post_visibility(db, moderator, removed, Visibility.HIDDEN, reason="insult")
    db.commit()
    accounts.suspend(db, moderator, rude, days=1, reason="abuse")
    db.commit()
    # The suspension runs out on its own; the worker's sweep gives the posts back.
    rude_now = db.get(User, rude.id)
    assert rude_now is not None
    rude_now.suspended_until = utcnow() - timedelta(minutes=1)
    db.commit()
    assert accounts.end_expired_suspensions(db) == 1
    db.commit()
    fresh(db)
    assert db.get(Post, kept.id).visibility == Visibility.VISIBLE  # type: ignore[union-attr]
    assert db.get(Post, removed.id).visibility == Visibility.HIDDEN  # type: ignore[union-attr]
    assert _audit(db, "user.suspension_ended")[0].after == {"posts_restored": 1}
    assert accounts.end_expired_suspensions(db) == 0


def test_suspension_limits_and_who_may_be_sanctioned(
    db: Session, make_user: UserFactory, moderator: User
) -> None:
    member = make_user("member")
    for days in (0, 4000):
        with pytest.raises(FormErrors):
            accounts.suspend(db, moderator, member, days=days, reason="x")
    with pytest.raises(PermissionDenied):
        accounts.suspend(db, moderator, moderator, days=1, reason="x")
    with pytest.raises(PermissionDenied):
        accounts.suspend(
            db, moderator, make_user("othermod", role=Role.MODERATOR), days=1, reason="x"
        )
    db.rollback()
    admin = make_user("adminalex", role=Role.ADMIN)
    assert accounts.suspend(db, admin, make_user("badmod", role=Role.MODERATOR), days=1, reason="x")


def test_silenced_members_read_but_cannot_post_vote_or_flag(
    db: Session, qa: QA, make_user: UserFactory, moderator: User
) -> None:
    loud = make_user("loudlou")
    thread = qa.ask(make_user("asker"))
    answer = qa.answer(make_user("helper"), thread)
    accounts.silence(db, moderator, loud, days=2, reason="spamming threads")
    db.commit()
    fresh(db)
    loud = db.get(User, loud.id)  # type: ignore[assignment]
    with pytest.raises(PermissionDenied):
        threads.answer(db, loud, thread, AnswerIn(body="More noise"))
    with pytest.raises(PermissionDenied):
        queue.flag(db, loud, answer, FlagReason.SPAM)
    from community import voting

    with pytest.raises(PermissionDenied):
        voting.cast_vote(db, loud, answer.id, 1)
    db.rollback()
    assert threads.access_thread(db, loud, thread.id).id == thread.id
    assert accounts.unsilence(db, moderator, loud)
    db.commit()
    qa.answer(loud, thread)


def test_user_actions_through_the_page(
    db: Session, make_user: UserFactory, as_role: RoleClient
) -> None:
    member = make_user("member")
    browser, _moderator = as_role(Role.MODERATOR)
    token = csrf_token(browser, "/mod/users/member")
    bad_days = browser.post(
        "/mod/users/member/suspend", data={"csrf_token": token, "days": "soon", "reason": "x"}
    )
    assert bad_days.status_code == 422
    bad_level = browser.post(
        "/mod/users/member/trust", data={"csrf_token": token, "trust_level": "9"}
    )
    assert bad_level.status_code == 422
    fresh(db)
    unchanged = db.get(User, member.id)
    assert unchanged is not None and unchanged.suspended_until is None
    assert unchanged.trust_level == 1

    kept = browser.post(
        "/mod/users/member/suspend",
        data={"csrf_token": token, "days": "3", "reason": "abuse", "keep_posts": "1"},
        follow_redirects=False,
    )
    assert kept.status_code == 303
    fresh(db)
    assert _audit(db, "user.suspended")[0].after["posts_hidden"] == 0  # type: ignore[index]
    page = browser.get("/mod/users/member")
    assert "suspended until" in page.text and "user.suspended" in page.text


@pytest.mark.parametrize("typed", ["²", "١٢"])
def test_staff_forms_refuse_digits_of_other_scripts(
    db: Session, qa: QA, make_user: UserFactory, as_role: RoleClient, typed: str
) -> None:
    """str.isdigit() accepts both; int() then raised on "²" (a 500) and read "١٢" as 12."""
    member = make_user("member")
    thread = qa.ask(member, title="My router drops the line every evening")
    _held, held_post = _held_thread(db, qa, make_user, "newbie")
    item = _pending_item(db, held_post)
    audited = len(db.scalars(select(AuditLog)).all())
    browser, _moderator = as_role(Role.MODERATOR)
    token = csrf_token(browser, "/mod/users/member")
    attempts: list[tuple[str, dict[str, object]]] = [
        ("/mod/users/member/suspend", {"days": typed, "reason": "abuse"}),
        ("/mod/users/member/silence", {"days": typed, "reason": "abuse"}),
        ("/mod/users/member/trust", {"trust_level": typed}),
        (f"/mod/threads/{thread.id}/merge", {"target": typed}),
        (f"/mod/threads/{thread.id}/merge", {"target": f"http://testserver/t/{typed}"}),
        (
            f"/mod/threads/{thread.id}/close",
            {"close_reason": "duplicate", "duplicate_of": f"/t/{typed}"},
        ),
    ]
    for path, data in attempts:
        response = browser.post(path, data={"csrf_token": token, **data})
        assert response.status_code == 422, (path, data, response.status_code)
        assert (
            "whole number" in response.text
            or "not a valid id" in response.text
            or ("Trust levels go from 0 to 4" in response.text)
        )
    fresh(db)
    unchanged = db.get(User, member.id)
    assert unchanged is not None
    assert unchanged.suspended_until is None and unchanged.silenced_until is None
    assert unchanged.trust_level == 1 and not unchanged.trust_locked
    stored = db.get(Thread, thread.id)
    assert stored is not None and stored.status != ThreadStatus.CLOSED
    assert stored.visibility == Visibility.VISIBLE
    assert len(db.scalars(select(AuditLog)).all()) == audited
    # Bulk actions leave out boxes that are not ids (as the ones someone else handled).
    bulk = browser.post(
        "/mod/items/bulk",
        data={"csrf_token": token, "decision": "approve", "items": [typed, str(item.id)]},
        follow_redirects=False,
    )
    assert bulk.status_code == 303
    fresh(db)
    assert db.get(QueueItem, item.id).status == ItemStatus.RESOLVED  # type: ignore[union-attr]
    # Warning has no number field: a stray one is ignored, not a 500.
    warned = browser.post(
        "/mod/users/member/warn",
        data={"csrf_token": token, "message": "Be kind.", "days": typed},
        follow_redirects=False,
    )
    assert warned.status_code == 303
    assert len(_audit(db, "user.warned")) == 1


# --- concurrency -----------------------------------------------------------------------------


def test_two_moderators_on_one_item_give_one_result(
    engine: Engine, db: Session, qa: QA, make_user: UserFactory
) -> None:
    _thread, question = _held_thread(db, qa, make_user, "newbie")
    item_id = _pending_item(db, question).id
    first = make_user("modann", role=Role.MODERATOR)
    second = make_user("modbob", role=Role.MODERATOR)
    db.commit()

    def act(user_id: int, decision: decisions.Decision) -> Callable[[Session], object]:
        def run(session: Session) -> object:
            moderator = session.get(User, user_id)
            item = session.get(QueueItem, item_id)
            assert moderator is not None and item is not None
            return decisions.resolve(session, moderator, item, decision, reason="no")

        return run

    outcomes = run_concurrently(
        engine,
        [act(first.id, decisions.Decision.APPROVE), act(second.id, decisions.Decision.REJECT)],
    )
    codes = sorted(code for code, _message in outcomes)
    assert codes == ["conflict", "ok"], outcomes
    fresh(db)
    item = db.get(QueueItem, item_id)
    assert item is not None and item.status == ItemStatus.RESOLVED
    winner = "modann" if item.resolved_by_id == first.id else "modbob"
    loser_message = next(message for code, message in outcomes if code == "conflict")
    assert f"Already handled by {winner}" in loser_message
    expected = Visibility.VISIBLE if item.resolution == "approve" else Visibility.DELETED
    assert db.get(Post, question.id).visibility == expected  # type: ignore[union-attr]
    forum = _forum(db)
    assert forum.thread_count == (1 if expected == Visibility.VISIBLE else 0)
    assert (
        db.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.actor_id.is_not(None)))
        == 1
    )


def test_two_moderators_hiding_one_post_at_once_count_it_once(
    engine: Engine, db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"))
    answer = qa.answer(make_user("helper"), thread)
    moderators = [make_user(f"mod{name}", role=Role.MODERATOR) for name in ("ann", "bob", "cat")]

    def hide(user_id: int) -> Callable[[Session], object]:
        def run(session: Session) -> object:
            actor, post = session.get(User, user_id), session.get(Post, answer.id)
            assert actor is not None and post is not None
            return actions.set_post_visibility(session, actor, post, Visibility.HIDDEN, reason="x")

        return run

    outcomes = run_concurrently(engine, [hide(moderator.id) for moderator in moderators])
    assert [code for code, _ in outcomes] == ["ok"] * 3
    forum = _forum(db)
    assert forum.post_count == 1
    assert db.get(Thread, thread.id).reply_count == 0  # type: ignore[union-attr]
    assert len(_audit(db, "post.hidden")) == 1


def test_the_second_moderator_sees_who_handled_it(
    db: Session, qa: QA, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    _thread, question = _held_thread(db, qa, make_user, "newbie")
    item = _pending_item(db, question)
    make_user("modann", role=Role.MODERATOR)
    make_user("modbob", role=Role.MODERATOR)
    first, second = make_client(), make_client()
    log_in(first, "modann")
    log_in(second, "modbob")
    tokens = [csrf_token(client, "/b/acme/mod/pending") for client in (first, second)]
    assert f"item-{item.id}" in first.get("/b/acme/mod/pending").text
    done = first.post(
        f"/mod/items/{item.id}/approve",
        data={"csrf_token": tokens[0]},
        headers={"HX-Request": "true"},
    )
    assert done.status_code == 200
    assert "Handled: approved." in done.text
    # The heading's count and the queue tabs update out of band.
    assert '<span class="badge" id="queue-count" hx-swap-oob="true">0</span>' in done.text
    assert "Waiting for approval (0)" in done.text
    late = second.post(
        f"/mod/items/{item.id}/reject",
        data={"csrf_token": tokens[1], "reason": "spam"},
        headers={"HX-Request": "true"},
    )
    assert late.status_code == 409 and "Already handled by modann" in late.text
    api_late = second.post(
        f"/api/v1/moderation/items/{item.id}/resolve",
        json={"decision": "hide"},
        headers={"X-CSRF-Token": tokens[1]},
    )
    assert api_late.status_code == 409 and "modann" in api_late.json()["error"]["message"]
    fresh(db)
    assert db.get(Post, question.id).visibility == Visibility.VISIBLE  # type: ignore[union-attr]


# --- bulk ------------------------------------------------------------------------------------


def test_bulk_approve_skips_what_someone_else_handled(
    db: Session, qa: QA, make_user: UserFactory, as_role: RoleClient, moderator: User
) -> None:
    held = [_held_thread(db, qa, make_user, f"newbie{index}") for index in range(4)]
    items = [_pending_item(db, question) for _thread, question in held]
    decisions.resolve(db, moderator, items[0], decisions.Decision.APPROVE)
    db.commit()
    browser, _other = as_role(Role.MODERATOR)
    token = csrf_token(browser, "/b/acme/mod/pending")
    response = browser.post(
        "/mod/items/bulk",
        data={
            "csrf_token": token,
            "decision": "approve",
            "items": [str(item.id) for item in items] + ["nonsense"],
            "back": "/b/acme/mod/pending",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    fresh(db)
    assert _forum(db).thread_count == 4
    assert {db.get(QueueItem, item.id).status for item in items} == {ItemStatus.RESOLVED}  # type: ignore[union-attr]
    assert len(_audit(db, "post.shown")) == 4


def test_bulk_spam_deletes_and_suspends_the_authors(
    db: Session, qa: QA, make_user: UserFactory, moderator: User
) -> None:
    spammers = [make_user(f"spammer{index}", trust_level=0) for index in range(3)]
    threads_made = [
        qa.ask(spammer, title=f"Cheap watches number {index} here")
        for index, spammer in enumerate(spammers)
    ]
    second_post = qa.ask(spammers[0], title="Even cheaper watches now")
    # In the order the posts were held: items[:3] are one post of each spammer. Unordered, a
    # PostgreSQL table emptied by DELETE may hand back rows in another order.
    pending = select(QueueItem).where(QueueItem.queue == Queue.PENDING).order_by(QueueItem.id)
    items = list(db.scalars(pending))
    assert len(items) == 4  # one per held post
    done, skipped = decisions.resolve_many(
        db, moderator, [items[0].id, items[1].id, items[2].id], decisions.Decision.SPAM
    )
    db.commit()
    assert (done, skipped) == (3, [])
    fresh(db)
    for spammer in spammers:
        assert db.get(User, spammer.id).suspended_until is not None  # type: ignore[union-attr]
    for thread in [*threads_made, second_post]:
        assert db.get(Thread, thread.id).visibility == Visibility.DELETED  # type: ignore[union-attr]
    # The spammer's other item closed with them: nothing left to review.
    assert queue.counts(db, items[0].brand_id)[Queue.PENDING] == 0


def test_bulk_rejects_an_unknown_decision(
    db: Session, qa: QA, make_user: UserFactory, as_role: RoleClient
) -> None:
    _thread, question = _held_thread(db, qa, make_user, "newbie")
    item = _pending_item(db, question)
    browser, _moderator = as_role(Role.MODERATOR)
    token = csrf_token(browser, "/b/acme/mod/pending")
    response = browser.post(
        "/mod/items/bulk",
        data={"csrf_token": token, "decision": "obliterate", "items": [str(item.id)]},
    )
    assert response.status_code == 422
    assert _pending_item(db, question).status == ItemStatus.OPEN


# --- the audit log ---------------------------------------------------------------------------


def test_the_audit_log_is_filterable_and_read_only(
    db: Session, qa: QA, make_user: UserFactory, as_role: RoleClient
) -> None:
    thread = qa.ask(make_user("asker"))
    answer = qa.answer(make_user("helper"), thread)
    browser, moderator = as_role(Role.MODERATOR)
    assert moderator is not None
    actions.set_post_visibility(db, moderator, answer, Visibility.HIDDEN, reason="rude words")
    actions.set_locked(db, moderator, thread, True, reason="locked for review")
    db.commit()

    page = browser.get("/mod/audit", params={"action": "post."})
    assert page.status_code == 200
    assert "rude words" in page.text and "locked for review" not in page.text
    by_actor = browser.get("/mod/audit", params={"actor": moderator.username})
    assert "rude words" in by_actor.text and "locked for review" in by_actor.text
    nobody = browser.get("/mod/audit", params={"actor": "nobody-at-all"})
    assert "rude words" not in nobody.text
    since = browser.get("/mod/audit", params={"since": "2020-01-01"})
    assert since.status_code == 200 and "rude words" in since.text
    assert browser.get("/mod/audit", params={"since": "yesterday-ish"}).status_code == 422
    assert browser.get("/mod/audit", params={"before": "x"}).status_code == 422

    rows = browser.get("/api/v1/moderation/audit", params={"target_type": "post"}).json()
    assert [row["reason"] for row in rows] == ["rude words"]
    assert rows[0]["before"] == {"visibility": "visible"}
    assert rows[0]["after"] == {"visibility": "hidden"}
    assert rows[0]["actor_role"] == "moderator"

    token = csrf_token(browser, "/mod/audit")
    row_id = rows[0]["id"]
    for method in ("put", "patch", "delete"):
        response = browser.request(
            method, f"/api/v1/moderation/audit/{row_id}", headers={"X-CSRF-Token": token}
        )
        assert response.status_code in (404, 405)
    fresh(db)
    assert db.get(AuditLog, row_id).reason == "rude words"  # type: ignore[union-attr]


def test_the_audit_log_reads_as_words(
    db: Session, qa: QA, make_user: UserFactory, as_role: RoleClient
) -> None:
    thread = qa.ask(make_user("asker"))
    answer = qa.answer(make_user("helper"), thread)
    browser, moderator = as_role(Role.MODERATOR)
    assert moderator is not None
    agent = make_user("agent_ada", role=Role.AGENT)
    actions.set_post_visibility(db, moderator, answer, Visibility.HIDDEN, reason="rude words")
    item = escalation.escalate(db, thread, EscalationReason.MODERATOR, actor=moderator)
    crowd_agent.claim(db, agent, item)
    db.commit()
    hidden, created, claimed = (
        db.scalars(select(AuditLog).where(AuditLog.action == action)).one()
        for action in ("post.hidden", "escalation.created", "escalation.claimed")
    )

    def row(html: str, entry: AuditLog) -> str:
        return html.split(f'id="audit-{entry.id}">', 1)[1].split("</tr>", 1)[0]

    page = browser.get("/mod/audit").text
    shown = row(page, hidden)
    assert "Post hidden" in shown and "Post #" in shown and "Moderator" in shown
    assert "Visibility:</span> <del>Visible</del> → <ins>Hidden</ins>" in shown
    taken = row(page, claimed)
    assert "Escalation claimed" in taken
    assert "Status:</span> <del>Waiting for an agent</del> → <ins>An agent is on it</ins>" in taken
    assert "Agent:</span> <del>–</del>" not in taken  # nobody before: only the new value
    assert "Agent:</span> <ins>@agent_ada</ins>" in taken
    escalated = row(page, created)
    assert "Escalated to the support team" in escalated
    assert f"Thread:</span> <ins>#{thread.id}</ins>" in escalated
    assert "Reason:</span> <ins>Escalated by a moderator</ins>" in escalated
    assert "<td>Escalated by a moderator</td>" in escalated  # the reason column too
    assert "Note:" not in escalated  # empty before and after: not listed
    for cell in (shown, taken, escalated):
        assert not re.search(r"[{}]|&#34;|&quot;|assigned_agent_id", cell), cell

    spanish = browser.get("/mod/audit", headers={"Accept-Language": "es"})
    assert "Mensaje oculto" in row(spanish.text, hidden)
    assert "Visibilidad:</span>" in row(spanish.text, hidden)


# --- tags (a trust-level-2 privilege) --------------------------------------------------------


def test_trust_level_2_members_fix_tags_and_counters_follow(
    db: Session, qa: QA, make_user: UserFactory, as_role: RoleClient
) -> None:
    from community.core.models import Tag

    thread = qa.ask(make_user("asker"), tags=["esim"])
    with pytest.raises(PermissionDenied):
        thread_editing.retag(db, make_user("newish", trust_level=1), thread, ["billing"])
    db.rollback()
    editor = make_user("regular2", trust_level=2)
    thread_editing.retag(db, editor, thread, ["billing", "Roaming"])
    db.commit()
    fresh(db)
    counts = {tag.name: tag.thread_count for tag in db.scalars(select(Tag))}
    assert counts == {"esim": 0, "billing": 1, "roaming": 1}
    audit = _audit(db, "thread.retagged")
    assert len(audit) == 1 and audit[0].before == {"tags": ["esim"]}
    assert audit[0].after == {"tags": ["billing", "roaming"]}

    browser, _member = as_role(Role.MEMBER)  # trust level 1: no tag form, and a 403
    assert 'action="/t/' + str(thread.id) + '/tags"' not in browser.get(f"/t/{thread.id}").text
    token = csrf_token(browser, f"/t/{thread.id}")
    refused = browser.post(f"/t/{thread.id}/tags", data={"tags": "spam", "csrf_token": token})
    assert refused.status_code == 403
    api = browser.put(
        f"/api/v1/threads/{thread.id}/tags", json={"tags": ["x"]}, headers={"X-CSRF-Token": token}
    )
    assert api.status_code == 403
    fresh(db)
    assert [tag.name for tag in db.get(Thread, thread.id).tags] == ["billing", "roaming"]  # type: ignore[union-attr]


def test_profiles_do_not_link_to_removed_threads(
    db: Session, qa: QA, make_user: UserFactory, moderator: User, client: TestClient
) -> None:
    from community import voting

    asker = make_user("asker")
    thread = qa.ask(asker, title="Hotspot keeps dropping")
    voting.cast_vote(db, make_user("voter"), _question(db, thread).id, 1)
    db.commit()
    assert f'href="/t/{thread.id}' in client.get("/u/asker").text
    actions.set_post_visibility(db, moderator, _question(db, thread), Visibility.HIDDEN, reason="x")
    db.commit()
    page = client.get("/u/asker")
    assert page.status_code == 200
    assert f'href="/t/{thread.id}' not in page.text and "Hotspot" not in page.text
    assert "+5" in page.text  # the reputation itself stays
