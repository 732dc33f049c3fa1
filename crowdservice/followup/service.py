"""Opening, reading, answering and closing a thread's private conversation.

Loaders (`access_conversation`, `conversation_for_thread`) answer NotFound to anyone who is
neither the customer nor staff, so nobody else learns that a conversation exists. Actions check
who may act, change the rows, notify, and write an audit row that holds ids only: the messages
may carry account numbers and addresses, and the audit log is read by more people than the
conversation. Nothing here commits.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.interfaces import LoaderOption

from community import threads
from community.core import notifications, policy
from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import Conflict, NotFound
from community.core.i18n import gettext as _
from community.core.markdown import render_markdown
from community.core.models import Forum, NotificationKind, Post, Role, Thread, User, Visibility
from community.core.schemas import AnswerIn
from community.core.staff import holds_role_in
from community.core.workspace_models import BrandRole
from crowdservice.followup.models import PrivateConversation, PrivateMessage

TARGET_TYPE = "private_conversation"


def conversation_path(conversation: PrivateConversation) -> str:
    return f"/private/{conversation.id}"


# --- loading ---------------------------------------------------------------------------------


def _loaded() -> tuple[LoaderOption, ...]:
    """Everything the conversation page and the API show, so rendering never queries."""
    return (
        joinedload(PrivateConversation.thread).joinedload(Thread.forum).joinedload(Forum.brand),
        joinedload(PrivateConversation.customer),
        joinedload(PrivateConversation.opened_by),
        selectinload(PrivateConversation.messages).joinedload(PrivateMessage.author),
    )


def _load(db: Session, condition: ColumnElement[bool]) -> PrivateConversation | None:
    return db.scalar(
        select(PrivateConversation)
        .where(condition)
        .options(*_loaded())
        .execution_options(populate_existing=True)
    )


def access_conversation(
    db: Session, viewer: User | None, conversation_id: int
) -> PrivateConversation:
    """The conversation, if `viewer` is its customer or staff; NotFound for everyone else."""
    conversation = _load(db, PrivateConversation.id == conversation_id)
    if conversation is None:
        raise NotFound()
    policy.ensure_private_visible(viewer, conversation)
    return conversation


def conversation_for_thread(
    db: Session, viewer: User | None, thread_id: int
) -> PrivateConversation:
    """The thread's conversation, if there is one and `viewer` may read it."""
    conversation = _load(db, PrivateConversation.thread_id == thread_id)
    if conversation is None:
        raise NotFound()
    policy.ensure_private_visible(viewer, conversation)
    return conversation


# --- acting ----------------------------------------------------------------------------------


def _add_message(
    db: Session, conversation: PrivateConversation, author: User, body: str
) -> PrivateMessage:
    # Rendered without @mentions: a mention would notify (and show the message to) someone
    # outside the conversation.
    message = PrivateMessage(
        conversation_id=conversation.id,
        author_id=author.id,
        body=body,
        body_html=render_markdown(body),
        created_at=utcnow(),
    )
    db.add(message)
    conversation.last_message_at = message.created_at
    db.flush()
    return message


def _lock_thread(db: Session, thread: Thread) -> None:
    """Opening, replying and closing take the thread's row first (as publishing does), so two
    staff opening at once queue instead of both creating."""
    db.flush()
    db.execute(select(Thread.id).where(Thread.id == thread.id).with_for_update())


def _create(db: Session, staff: User, thread: Thread, customer: User) -> PrivateConversation:
    """A new conversation; if another transaction created the thread's one first (the unique
    thread_id refused ours), that one."""
    now = utcnow()
    conversation = PrivateConversation(
        thread_id=thread.id,
        brand_id=thread.forum.brand_id,
        customer_id=customer.id,
        opened_by_id=staff.id,
        opened_at=now,
        last_message_at=now,
    )
    try:
        with db.begin_nested():
            db.add(conversation)
            db.flush()
    except IntegrityError:
        existing = db.scalar(
            select(PrivateConversation).where(PrivateConversation.thread_id == thread.id)
        )
        if existing is None:
            raise
        return existing
    return conversation


def open_followup(
    db: Session, staff: User, thread: Thread, first_message: str
) -> PrivateConversation:
    """Continue `thread` in private with its author (or reopen its closed conversation), with
    a first message. The author is notified; the public page shows a notice from
    thread.private_followup_at."""
    policy.ensure_can_follow_up_privately(staff, thread.brand_id)
    policy.ensure_thread_visible(staff, thread)
    body = threads.clean_body(first_message)
    if thread.visibility != Visibility.VISIBLE:
        # The notice belongs on a public page, and the author's notification of a thread that
        # is not visible would never be shown or mailed (notifications.only_shown).
        raise Conflict(_("Only a public thread can be continued in private."))
    customer = thread.author
    if customer is None or customer.deactivated_at is not None:
        raise Conflict(_("This thread's author no longer has an account to write to."))
    _lock_thread(db, thread)
    existing = db.scalar(
        select(PrivateConversation).where(PrivateConversation.thread_id == thread.id)
    )
    conversation = existing or _create(db, staff, thread, customer)
    reopened = conversation.closed_at is not None
    conversation.closed_at = None
    conversation.closed_by_id = None
    if thread.private_followup_at is None:
        thread.private_followup_at = utcnow()
    message = _add_message(db, conversation, staff, body)
    if conversation.customer is not None:
        _notify(db, conversation.customer, staff, conversation, from_customer=False)
    record_audit(
        db,
        actor=staff,
        action="private.opened",
        target_type=TARGET_TYPE,
        target_id=conversation.id,
        after={
            "thread_id": thread.id,
            "customer_id": conversation.customer_id,
            "message_id": message.id,
            "reopened": reopened,
        },
    )
    return conversation


def reply(db: Session, user: User, conversation: PrivateConversation, body: str) -> PrivateMessage:
    """A message from the customer (notifying the staff in the conversation) or from staff
    (notifying the customer)."""
    policy.ensure_private_visible(user, conversation)
    policy.ensure_can_participate(user)
    text = threads.clean_body(body)
    from_customer = user.id == conversation.customer_id
    if not conversation.is_open:
        if from_customer:
            raise Conflict(_("This conversation is closed."))
        raise Conflict(_("This conversation is closed: open it again to write."))
    _lock_thread(db, conversation.thread)
    message = _add_message(db, conversation, user, text)
    if from_customer:
        for member in _staff_in(db, conversation):
            _notify(db, member, user, conversation, from_customer=True)
    elif conversation.customer is not None:
        _notify(db, conversation.customer, user, conversation, from_customer=False)
    record_audit(
        db,
        actor=user,
        action="private.message",
        target_type=TARGET_TYPE,
        target_id=conversation.id,
        after={"message_id": message.id, "from_customer": from_customer},
    )
    return message


def close(
    db: Session, staff: User, conversation: PrivateConversation, public_outcome: str = ""
) -> Post | None:
    """End the conversation; a non-empty `public_outcome` is posted on the thread as the staff
    member's public answer (the only part of the conversation that becomes public)."""
    policy.ensure_can_follow_up_privately(staff, conversation.brand_id)
    policy.ensure_private_visible(staff, conversation)
    outcome = public_outcome.strip()
    if outcome:
        outcome = threads.clean_body(outcome, "public_outcome")
    if not conversation.is_open:
        raise Conflict(_("This conversation is already closed."))
    _lock_thread(db, conversation.thread)
    post = None
    if outcome:
        post = threads.answer(db, staff, conversation.thread, AnswerIn(body=outcome))
        conversation.outcome_post_id = post.id
    conversation.closed_at = utcnow()
    conversation.closed_by_id = staff.id
    db.flush()
    record_audit(
        db,
        actor=staff,
        action="private.closed",
        target_type=TARGET_TYPE,
        target_id=conversation.id,
        after={"outcome_post_id": conversation.outcome_post_id},
    )
    return post


def _staff_in(db: Session, conversation: PrivateConversation) -> list[User]:
    """Who hears of a customer's reply: the staff member who opened the conversation and every
    staff member who wrote in it, while they are still staff."""
    ids = {message.author_id for message in conversation.messages if message.author_id}
    if conversation.opened_by_id is not None:
        ids.add(conversation.opened_by_id)
    if conversation.customer_id is not None:
        ids.discard(conversation.customer_id)
    if not ids:
        return []
    # Staff of the conversation's brand: site-wide roles, or a grant in the brand.
    brand_staff = or_(
        User.role.in_(Role.STAFF), holds_role_in(conversation.brand_id, BrandRole.STAFF)
    )
    return list(db.scalars(select(User).where(User.id.in_(ids), brand_staff).order_by(User.id)))


def _notify(
    db: Session,
    recipient: User,
    actor: User,
    conversation: PrivateConversation,
    *,
    from_customer: bool,
) -> None:
    # The notification (and its e-mail) carries the conversation's address, never the text.
    notifications.notify(
        db,
        recipient,
        NotificationKind.PRIVATE_MESSAGE,
        actor=actor,
        thread=conversation.thread,
        data={"path": conversation_path(conversation), "from_customer": from_customer},
    )
