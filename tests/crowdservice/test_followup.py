"""The private follow-up service: opening a thread's conversation (once per thread, whatever
the race), replies both ways and who hears of them, closing with a public outcome, reopening,
who may do what, bad input that changes nothing, and audit rows that hold ids, never text."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from community import threads
from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.errors import Conflict, FormErrors, NotFound, PermissionDenied
from community.core.models import (
    Notification,
    NotificationKind,
    Post,
    Role,
    Thread,
    User,
    Visibility,
)
from crowdservice.followup import service as followup
from crowdservice.followup.models import PrivateConversation, PrivateMessage
from tests.conftest import QA, fresh, run_concurrently

UserFactory = Callable[..., User]
SECRET = "ACC-99817-zebracode"


@pytest.fixture
def people(make_user: UserFactory) -> dict[str, User]:
    return {
        "asker": make_user("asker"),
        "member": make_user("member1"),
        "agent": make_user("agent1", role=Role.AGENT),
        "agent2": make_user("agent2", role=Role.AGENT),
        "moderator": make_user("mod1", role=Role.MODERATOR),
        "admin": make_user("admin1", role=Role.ADMIN),
    }


@pytest.fixture
def thread(qa: QA, people: dict[str, User]) -> Thread:
    return qa.ask(people["asker"], title="My bill doubled after the plan change")


def _private_notifications(db: Session, user: User) -> list[Notification]:
    fresh(db)
    return list(
        db.scalars(
            select(Notification)
            .where(
                Notification.user_id == user.id,
                Notification.kind == NotificationKind.PRIVATE_MESSAGE,
            )
            .order_by(Notification.id)
        )
    )


def _audits(db: Session, conversation: PrivateConversation) -> list[AuditLog]:
    return list(
        db.scalars(
            select(AuditLog)
            .where(
                AuditLog.target_type == "private_conversation",
                AuditLog.target_id == str(conversation.id),
            )
            .order_by(AuditLog.id)
        )
    )


def _open(db: Session, staff: User, thread: Thread, text: str) -> PrivateConversation:
    conversation = followup.open_followup(db, staff, thread, text)
    db.commit()
    return conversation


def test_opening_notifies_the_author_marks_the_thread_and_audits_ids_only(
    db: Session, thread: Thread, people: dict[str, User]
) -> None:
    agent, asker = people["agent"], people["asker"]
    conversation = _open(db, agent, thread, f"Please send your account number, like **{SECRET}**.")

    fresh(db)
    stored = followup.access_conversation(db, asker, conversation.id)
    assert stored.customer_id == asker.id and stored.opened_by_id == agent.id
    assert stored.is_open and stored.thread_id == thread.id
    [message] = stored.messages
    assert message.author_id == agent.id and SECRET in message.body
    assert f"<strong>{SECRET}</strong>" in message.body_html  # sanitized Markdown
    assert stored.thread.private_followup_at is not None

    [notice] = _private_notifications(db, asker)
    assert notice.actor_id == agent.id and notice.thread_id == thread.id
    assert notice.data == {"path": f"/private/{conversation.id}", "from_customer": False}
    assert _private_notifications(db, agent) == []

    [entry] = _audits(db, conversation)
    assert entry.action == "private.opened" and entry.actor_id == agent.id
    assert entry.after is not None and entry.after["thread_id"] == thread.id
    assert entry.after["reopened"] is False
    assert SECRET not in repr((entry.before, entry.after, entry.reason))


def test_script_in_a_message_is_removed(
    db: Session, thread: Thread, people: dict[str, User]
) -> None:
    conversation = _open(
        db, people["agent"], thread, "Hi <script>alert(1)</script> [x](javascript:alert(2))"
    )
    fresh(db)
    [message] = followup.access_conversation(db, people["asker"], conversation.id).messages
    assert "<script" not in message.body_html and "&lt;script&gt;" in message.body_html
    assert "href=" not in message.body_html


def test_replies_both_ways_notify_the_other_side(
    db: Session, thread: Thread, people: dict[str, User]
) -> None:
    agent, asker, moderator = people["agent"], people["asker"], people["moderator"]
    conversation = _open(db, agent, thread, "Which address is on the account?")
    # A moderator who writes in it hears of later replies too; another agent who never did
    # does not.
    later = utcnow() + timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        followup.reply(
            db,
            moderator,
            followup.access_conversation(db, moderator, conversation.id),
            "And the postcode?",
        )
        db.commit()
    with time_machine.travel(later + timedelta(minutes=5), tick=False):
        followup.reply(
            db, asker, followup.access_conversation(db, asker, conversation.id), f"It is {SECRET}"
        )
        db.commit()

    fresh(db)
    stored = followup.access_conversation(db, agent, conversation.id)
    assert [m.author_id for m in stored.messages] == [agent.id, moderator.id, asker.id]
    assert stored.last_message_at == later + timedelta(minutes=5)

    for staff in (agent, moderator):
        from_customer = [n for n in _private_notifications(db, staff) if n.data["from_customer"]]
        assert [n.actor_id for n in from_customer] == [asker.id], staff.username
    assert _private_notifications(db, people["agent2"]) == []
    assert _private_notifications(db, people["admin"]) == []
    # The customer: the opening message and the moderator's reply.
    assert [n.actor_id for n in _private_notifications(db, asker)] == [agent.id, moderator.id]

    entries = _audits(db, conversation)
    assert [e.action for e in entries] == ["private.opened", "private.message", "private.message"]
    assert entries[-1].after == {"message_id": stored.messages[-1].id, "from_customer": True}
    assert all(SECRET not in repr((e.before, e.after, e.reason)) for e in entries)


def test_closing_with_a_public_outcome_posts_it_and_nothing_else(
    db: Session, thread: Thread, people: dict[str, User]
) -> None:
    agent, asker = people["agent"], people["asker"]
    conversation = _open(db, agent, thread, f"Your account {SECRET} had a double charge.")
    post = followup.close(
        db, agent, followup.access_conversation(db, agent, conversation.id),
        "We refunded the double charge; it shows within 3 days.",
    )  # fmt: skip
    db.commit()

    fresh(db)
    assert post is not None
    stored = followup.access_conversation(db, agent, conversation.id)
    assert stored.closed_at is not None and stored.outcome_post_id == post.id
    public = db.get(Post, post.id)
    assert public is not None and public.visibility == Visibility.VISIBLE
    assert public.author_id == agent.id and public.is_official
    bodies = db.scalars(select(Post.body_source).where(Post.thread_id == thread.id)).all()
    assert len(bodies) == 2 and not any(SECRET in body for body in bodies)
    assert [e.action for e in _audits(db, stored)] == ["private.opened", "private.closed"]
    assert _audits(db, stored)[-1].after == {"outcome_post_id": post.id}

    # Closed: nobody writes in it until staff open it again.
    with pytest.raises(Conflict, match="closed"):
        followup.reply(db, asker, followup.access_conversation(db, asker, stored.id), "Thanks")
    db.rollback()
    with pytest.raises(Conflict, match="closed"):
        followup.reply(db, agent, followup.access_conversation(db, agent, stored.id), "More")
    db.rollback()
    with pytest.raises(Conflict):
        followup.close(db, agent, followup.access_conversation(db, agent, stored.id))
    db.rollback()


def test_reopening_uses_the_same_conversation(
    db: Session, thread: Thread, people: dict[str, User]
) -> None:
    agent, asker = people["agent"], people["asker"]
    first = _open(db, agent, thread, "First contact")
    fresh(db)
    marked_at = db.get(Thread, thread.id).private_followup_at  # type: ignore[union-attr]
    assert followup.close(db, agent, followup.access_conversation(db, agent, first.id)) is None
    db.commit()
    later = utcnow() + timedelta(days=2)
    with time_machine.travel(later, tick=False):
        again = _open(db, people["moderator"], db.get(Thread, thread.id), "Picking this up again")  # type: ignore[arg-type]

    fresh(db)
    assert again.id == first.id
    assert db.scalar(select(func.count()).select_from(PrivateConversation)) == 1
    stored = followup.access_conversation(db, asker, first.id)
    assert stored.is_open and stored.closed_by_id is None
    assert [m.body for m in stored.messages] == ["First contact", "Picking this up again"]
    assert stored.thread.private_followup_at == marked_at  # the first time stays
    opened = [e for e in _audits(db, stored) if e.action == "private.opened"]
    assert [e.after["reopened"] for e in opened if e.after] == [False, True]
    followup.reply(db, asker, stored, "Back again")
    db.commit()


def test_who_may_open_read_reply_and_close(
    db: Session, thread: Thread, people: dict[str, User], make_user: UserFactory
) -> None:
    asker, member = people["asker"], people["member"]
    with pytest.raises(PermissionDenied):
        followup.open_followup(db, member, thread, "Hello")
    db.rollback()
    with pytest.raises(PermissionDenied):
        followup.open_followup(db, asker, thread, "Hello")  # not even on one's own thread
    db.rollback()
    assert db.scalar(select(func.count()).select_from(PrivateConversation)) == 0

    conversation = _open(db, people["moderator"], thread, "Moderators may open one too")
    for viewer in (None, member, make_user("curious", role=Role.MEMBER)):
        with pytest.raises(NotFound):
            followup.access_conversation(db, viewer, conversation.id)
        with pytest.raises(NotFound):
            followup.conversation_for_thread(db, viewer, thread.id)
    for viewer in (asker, people["agent"], people["agent2"], people["moderator"], people["admin"]):
        assert followup.access_conversation(db, viewer, conversation.id).id == conversation.id
    with pytest.raises(NotFound):
        followup.access_conversation(db, asker, conversation.id + 1000)

    stored = followup.access_conversation(db, asker, conversation.id)
    with pytest.raises(NotFound):
        followup.reply(db, member, stored, "Let me in")
    with pytest.raises(PermissionDenied):
        followup.close(db, asker, stored, "Solved")
    db.rollback()

    # A suspended customer reads but cannot write.
    fresh(db)
    suspended = db.get(User, asker.id)
    assert suspended is not None
    suspended.suspended_until = utcnow() + timedelta(days=3)
    db.commit()
    with pytest.raises(PermissionDenied):
        followup.reply(
            db, suspended, followup.access_conversation(db, suspended, conversation.id), "Hi"
        )
    db.rollback()
    fresh(db)
    assert len(followup.access_conversation(db, asker, conversation.id).messages) == 1


def test_bad_input_and_a_gone_author_change_nothing(
    db: Session, qa: QA, thread: Thread, people: dict[str, User], make_user: UserFactory
) -> None:
    agent = people["agent"]
    for body in ("", "   \n ", "x" * (threads.BODY_MAX + 1)):
        with pytest.raises(FormErrors) as refused:
            followup.open_followup(db, agent, thread, body)
        assert "body" in refused.value.errors
        db.rollback()
    fresh(db)
    assert db.scalar(select(func.count()).select_from(PrivateConversation)) == 0
    assert db.get(Thread, thread.id).private_followup_at is None  # type: ignore[union-attr]

    conversation = _open(db, agent, db.get(Thread, thread.id), "Hello")  # type: ignore[arg-type]
    stored = followup.access_conversation(db, agent, conversation.id)
    with pytest.raises(FormErrors):
        followup.reply(db, people["asker"], stored, "  ")
    db.rollback()
    with pytest.raises(FormErrors) as refused:
        followup.close(
            db,
            agent,
            followup.access_conversation(db, agent, conversation.id),
            "x" * (threads.BODY_MAX + 1),
        )
    assert "public_outcome" in refused.value.errors
    db.rollback()
    fresh(db)
    assert followup.access_conversation(db, agent, conversation.id).is_open
    assert db.scalar(select(func.count()).select_from(PrivateMessage)) == 1

    leaver = make_user("leaver")
    gone = qa.ask(leaver, title="A question whose author left us")
    fresh(db)
    account = db.get(User, leaver.id)
    assert account is not None
    account.deactivated_at = utcnow()
    db.commit()
    hidden = qa.ask(people["member"], title="A question a moderator removed")
    fresh(db)
    removed = db.get(Thread, hidden.id)
    assert removed is not None
    removed.visibility = Visibility.HIDDEN
    db.commit()
    with pytest.raises(Conflict, match="Only a public thread"):
        followup.open_followup(db, agent, removed, "Hello?")
    db.rollback()
    with pytest.raises(Conflict, match="no longer has an account"):
        followup.open_followup(db, agent, db.get(Thread, gone.id), "Hello?")  # type: ignore[arg-type]
    db.rollback()
    fresh(db)
    assert db.scalar(select(func.count()).select_from(PrivateConversation)) == 1


def test_two_staff_opening_at_once_make_one_conversation(
    db: Session, engine: Engine, thread: Thread, people: dict[str, User]
) -> None:
    def opener(user_id: int, text: str) -> Callable[[Session], object]:
        def act(session: Session) -> object:
            staff = session.get(User, user_id)
            target = session.get(Thread, thread.id)
            assert staff is not None and target is not None
            return followup.open_followup(session, staff, target, text)

        return act

    outcomes = run_concurrently(
        engine, [opener(people["agent"].id, "From one"), opener(people["agent2"].id, "From two")]
    )
    assert outcomes == [("ok", ""), ("ok", "")]
    fresh(db)
    assert db.scalar(select(func.count()).select_from(PrivateConversation)) == 1
    conversation = followup.conversation_for_thread(db, people["asker"], thread.id)
    assert sorted(m.body for m in conversation.messages) == ["From one", "From two"]
