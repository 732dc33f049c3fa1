"""In-app notifications (and the e-mails they turn into).

Rows are written in the same transaction as the action, except for a new post's: who hears of
a published post (mentioned people, the asker, every watcher) is worked out by the worker right
after commit (community.visibility.announce), so a post costs its writer one outbox row however
many watch the thread. An e-mail is an outbox event the worker sends after commit (immediately,
or in the daily digest, as each person prefers). Nobody is notified of their own actions, and
one action notifies a person once (a mention beats "new answer on a watched thread").

A row stores what happened (kind, actor, thread, post, and values such as a moderator's reason),
never a sentence: the text is written when it is read, in the reader's language, so a Spanish
moderator's notice reaches an English member in English. Messages that are not one of the kinds'
fixed sentences are stored as their English original (`message()`) and translated on display.
E-mails go out in the recipient's language: their own choice, else the brand's default.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Select,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from community.core import outbox
from community.core.activity_models import ThreadWatch
from community.core.clock import utcnow
from community.core.errors import NotFound
from community.core.forum_access import readable_by_user
from community.core.i18n import DEFAULT_LOCALE, SUPPORTED_LOCALES
from community.core.i18n import gettext as _
from community.core.models import (
    EmailPreference,
    Forum,
    Notification,
    NotificationKind,
    Post,
    Thread,
    User,
    Visibility,
)

EMAIL_EVENT = "email.notification"
MILESTONE_EVENT = "notify.milestone"
# Kinds shown in the app only, never e-mailed (nor put in a digest): a badge is a small
# pleasure to find on the next visit, and a mail per milestone would be noise.
IN_APP_ONLY: frozenset[NotificationKind] = frozenset({NotificationKind.BADGE})


def message(msgid: str, **params: object) -> dict[str, object]:
    """Notification data for a sentence translated when read: `msgid` is the English text
    (mark it with N_ so the catalog has it) and `params` its values, as typed. A value may be
    another message({...}) to translate too, such as a default reason."""
    return {"msgid": msgid, "params": params}


def recipient_locale(user: User, brand_locale: str | None) -> str:
    """The language to write to someone when no request of theirs says which (e-mail)."""
    for choice in (user.locale, brand_locale):
        if choice in SUPPORTED_LOCALES:
            return choice
    return DEFAULT_LOCALE


def _wanted(recipient: User, actor: User | None) -> bool:
    """Nobody hears of their own actions; deactivated accounts hear nothing."""
    if actor is not None and recipient.id == actor.id:
        return False
    return recipient.deactivated_at is None


def _emails_to(recipient: User) -> bool:
    return bool(recipient.email) and recipient.email_notifications == EmailPreference.IMMEDIATE


def notify(
    db: Session,
    recipient: User,
    kind: NotificationKind,
    *,
    actor: User | None,
    thread: Thread | None = None,
    post: Post | None = None,
    data: dict[str, object] | None = None,
) -> Notification | None:
    if not _wanted(recipient, actor):
        return None
    notification = Notification(
        user_id=recipient.id,
        kind=kind,
        actor_id=actor.id if actor else None,
        thread_id=thread.id if thread else None,
        post_id=post.id if post else None,
        data=data or {},
    )
    db.add(notification)
    db.flush()
    if kind not in IN_APP_ONLY and _emails_to(recipient):
        outbox.enqueue(db, EMAIL_EVENT, {"notification_id": notification.id})
    return notification


def notify_all(
    db: Session,
    recipients: Iterable[tuple[User, NotificationKind]],
    *,
    actor: User,
    thread: Thread,
    post: Post,
) -> set[int]:
    """One notification per person (the first kind listed for them wins): one INSERT for all
    of them and one for their e-mails' outbox events, however many they are. Returns who was
    notified."""
    rows: list[dict[str, Any]] = []
    emailed: list[int] = []
    seen: set[int] = set()
    for recipient, kind in recipients:
        if recipient.id in seen:
            continue
        seen.add(recipient.id)
        if not _wanted(recipient, actor):
            continue
        rows.append(
            {"user_id": recipient.id, "kind": kind, "actor_id": actor.id,
             "thread_id": thread.id, "post_id": post.id, "data": {}}
        )  # fmt: skip
        if _emails_to(recipient):
            emailed.append(recipient.id)
    if not rows:
        return set()
    # A multi-row VALUES (not the ORM's bulk insert, which SQLite sends row by row to get the
    # ids back); each row says whose it is, so the ids are matched by person, not by order.
    written = db.execute(
        insert(Notification).values(rows).returning(Notification.user_id, Notification.id)
    )
    ids: dict[int, int] = {row.user_id: row.id for row in written}
    outbox.enqueue_many(db, EMAIL_EVENT, [{"notification_id": ids[user]} for user in emailed])
    return set(ids)


def notify_mentions(
    db: Session, users: Iterable[User], *, actor: User, thread: Thread, post: Post
) -> set[int]:
    return notify_all(
        db,
        [(user, NotificationKind.MENTION) for user in users],
        actor=actor,
        thread=thread,
        post=post,
    )


def notify_new_post(
    db: Session,
    *,
    thread: Thread,
    post: Post,
    author: User,
    mentioned: list[User],
    skip: Collection[int] = (),
) -> None:
    """The asker hears about answers, watchers about new posts, the mentioned about mentions:
    each once, a mention before an answer before a new post. The asker and the watchers are
    loaded in one query and notified in one INSERT, however many watch the thread. `skip`:
    people already told of this post."""
    watching = select(ThreadWatch.user_id).where(ThreadWatch.thread_id == thread.id)
    others = db.scalars(
        select(User)
        .where(
            or_(User.id == thread.author_id, User.id.in_(watching)),
            User.id != author.id,
            User.id.not_in(skip),
        )
        .order_by(User.id)
    )
    by_asker_first = sorted(others, key=lambda user: user.id != thread.author_id)
    recipients = [(user, NotificationKind.MENTION) for user in mentioned] + [
        (
            user,
            NotificationKind.ANSWER if user.id == thread.author_id else NotificationKind.NEW_POST,
        )
        for user in by_asker_first
    ]
    notify_all(db, recipients, actor=author, thread=thread, post=post)


def notify_accepted(db: Session, *, post: Post, actor: User) -> None:
    if post.author is not None:
        notify(
            db, post.author, NotificationKind.ACCEPTED, actor=actor, thread=post.thread, post=post
        )


def notify_approved(db: Session, *, post: Post, actor: User) -> None:
    """A held post's author hears that it is public now."""
    if post.author is not None:
        notify(
            db,
            post.author,
            NotificationKind.APPROVED,
            actor=actor,
            thread=post.thread,
            post=post,
            data={"question": post.is_question},
        )


def milestone_reached(db: Session, post_id: int, milestone: int) -> None:
    """A vote took the post's score to `milestone`: the worker tells the author
    (send_milestone), so the vote's own transaction only records the fact."""
    outbox.enqueue(
        db,
        MILESTONE_EVENT,
        {"post_id": post_id, "milestone": milestone},
        dedupe_key=f"post:{post_id}:{milestone}",
    )


def send_milestone(db: Session, event: outbox.OutboxEvent) -> None:
    """The worker's side of milestone_reached. The post's row is locked so that two workers
    with events of the same post take turns, and the author hears of each milestone once."""
    post = db.scalar(select(Post).where(Post.id == event.payload.get("post_id")).with_for_update())
    if post is not None:
        notify_milestone(db, post=post, milestone=int(event.payload.get("milestone", 0)))


def notify_milestone(db: Session, *, post: Post, milestone: int) -> None:
    """Tell the author their post reached a score milestone, once per milestone."""
    if post.author is None:
        return
    earlier = db.scalars(
        select(Notification.data).where(
            Notification.post_id == post.id, Notification.kind == NotificationKind.VOTE_MILESTONE
        )
    )
    if any(item.get("milestone") == milestone for item in earlier):
        return
    notify(
        db,
        post.author,
        NotificationKind.VOTE_MILESTONE,
        actor=None,
        thread=post.thread,
        post=post,
        data={"milestone": milestone},
    )


# --- reading ---------------------------------------------------------------------------------


def only_shown(statement: Select[Any]) -> Select[Any]:
    """Notifications about content that is no longer visible (hidden, pending, deleted), or in
    a forum the recipient may not read (community.core.policy, "forum access"), are not shown
    nor e-mailed; moderation notices about one's own post always are."""
    return (
        statement.outerjoin(Post, Post.id == Notification.post_id)
        .outerjoin(Thread, Thread.id == Notification.thread_id)
        .outerjoin(Forum, Forum.id == Thread.forum_id)
        .where(
            or_(
                Notification.kind == NotificationKind.MODERATION,
                and_(
                    or_(Notification.post_id.is_(None), Post.visibility == Visibility.VISIBLE),
                    or_(Notification.thread_id.is_(None), Thread.visibility == Visibility.VISIBLE),
                    or_(Notification.thread_id.is_(None), readable_by_user(Notification.user_id)),
                ),
            )
        )
    )


def is_shown(db: Session, notification: Notification) -> bool:
    """Whether the notification may still be shown (or e-mailed): its content is visible."""
    found = db.scalar(only_shown(select(Notification.id).where(Notification.id == notification.id)))
    return found is not None


UserIdColumn = ColumnElement[int] | InstrumentedAttribute[int]


def _unread(user_id: int | UserIdColumn) -> Select[tuple[int]]:
    return only_shown(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )


def unread_count(db: Session, user_id: int) -> int:
    return db.scalar(_unread(user_id)) or 0


def unread_count_of(user_id: UserIdColumn) -> ScalarSelect[int]:
    """The unread count as a column of a query over users (the session load reads it in the
    same statement as the user)."""
    return _unread(user_id).scalar_subquery()


@dataclass
class NotificationPage:
    items: list[Notification]
    next_before: int | None


def list_for(
    db: Session, user_id: int, *, before: int | None = None, limit: int = 30, unread: bool = False
) -> NotificationPage:
    statement = only_shown(
        select(Notification)
        .where(Notification.user_id == user_id)
        .options(selectinload(Notification.actor), selectinload(Notification.thread))
        .order_by(Notification.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        statement = statement.where(Notification.id < before)
    if unread:
        statement = statement.where(Notification.read_at.is_(None))
    rows = list(db.scalars(statement))
    more = len(rows) > limit
    rows = rows[:limit]
    return NotificationPage(items=rows, next_before=rows[-1].id if more and rows else None)


def access_notification(db: Session, viewer: User, notification_id: int) -> Notification:
    """The viewer's own notification; anyone else's does not exist for them."""
    notification = db.get(Notification, notification_id)
    if notification is None or notification.user_id != viewer.id:
        raise NotFound()
    return notification


def mark_read(db: Session, viewer: User, notification_id: int) -> Notification:
    notification = access_notification(db, viewer, notification_id)
    if notification.read_at is None:
        notification.read_at = utcnow()
    return notification


def mark_all_read(db: Session, user_id: int) -> int:
    result = db.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _translated(data: dict[str, Any], values: dict[str, object]) -> str | None:
    """The stored message() in the active language, or None if the data holds none."""
    msgid = data.get("msgid")
    if not isinstance(msgid, str):
        return None
    params = data.get("params")
    for name, value in params.items() if isinstance(params, dict) else ():
        inner = value.get("msgid") if isinstance(value, dict) else None
        values[name] = _(inner) if isinstance(inner, str) else value
    for text in (_(msgid), msgid):
        try:
            return text % values
        except (KeyError, TypeError, ValueError):
            continue  # a translation that lost a placeholder: fall back to the original
    return msgid


def describe(notification: Notification) -> str:
    """One sentence in the active language for the list, the e-mail subject and the digest."""
    actor = notification.actor.display_name if notification.actor else _("Someone")
    title = notification.thread.title if notification.thread else ""
    values: dict[str, object] = {"actor": actor, "title": title}
    data = notification.data or {}
    stored = _translated(data, dict(values))
    if stored is not None:
        return stored
    kind = notification.kind
    if kind == NotificationKind.ANSWER:
        return _("%(actor)s answered your question “%(title)s”") % values
    if kind == NotificationKind.NEW_POST:
        return _("%(actor)s posted in “%(title)s”") % values
    if kind == NotificationKind.MENTION:
        return _("%(actor)s mentioned you in “%(title)s”") % values
    if kind == NotificationKind.ACCEPTED:
        return _("%(actor)s accepted your answer in “%(title)s”") % values
    if kind == NotificationKind.APPROVED:
        if data.get("question"):
            return (
                _("A moderator approved your question “%(title)s”: everyone can see it now")
                % values
            )
        return (
            _("A moderator approved your answer in “%(title)s”: everyone can see it now") % values
        )
    if kind == NotificationKind.MODERATION:
        # Rows written before messages were stored untranslated carry their text.
        return str(data.get("message", _("A moderator acted on your post.")))
    if kind == NotificationKind.EXPERT_INVITATION:
        return _("Your know-how could help: “%(title)s” has no answer yet") % values
    if kind == NotificationKind.SUPPORT:
        return str(data.get("message", _("Our support team is looking at “%(title)s”") % values))
    if kind == NotificationKind.PRIVATE_MESSAGE:
        # Never the message itself: it may hold personal data, and e-mails carry this sentence.
        if data.get("from_customer"):
            return _("%(actor)s replied in private about “%(title)s”") % values
        return _("The support team wrote to you in private about “%(title)s”") % values
    if kind == NotificationKind.KNOWN_ISSUE:
        return _("Fixed: “%(issue)s”") % {"issue": data.get("issue_title", "")}
    if kind == NotificationKind.FOLLOWED_FORUM:
        return _("%(actor)s asked “%(title)s” in a forum you follow") % values
    if kind == NotificationKind.FOLLOWED_TAG:
        return _("%(actor)s asked “%(title)s” with a tag you follow") % values
    milestone = data.get("milestone", 0)
    return _("Your post in “%(title)s” reached a score of %(milestone)s") % {
        "title": title,
        "milestone": milestone,
    }


_PATH_KINDS = frozenset(
    {
        NotificationKind.INSIGHTS,
        NotificationKind.PRIVATE_MESSAGE,
        NotificationKind.KNOWN_ISSUE,
        NotificationKind.BADGE,  # to the member's own profile, where badges are shown
    }
)


def target_path(notification: Notification) -> str:
    if notification.kind in _PATH_KINDS:
        # A page of this site the service wrote (the weekly summary, a private conversation, a
        # known issue), never user input.
        return str((notification.data or {}).get("path", "/notifications"))
    if notification.thread_id is None or notification.kind == NotificationKind.MODERATION:
        return "/notifications"
    anchor = f"#post-{notification.post_id}" if notification.post_id else ""
    return f"/t/{notification.thread_id}{anchor}"
