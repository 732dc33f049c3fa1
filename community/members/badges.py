"""Badges: milestones a member reached, awarded once and never taken back.

The definitions are data (BADGES): a key (stored in `user_badges.badge`), a name and a sentence
for the profile, and who qualifies as a query (for one member, or for everyone at once: the
backfill).

Live awards start from the domain events of the layers below (community.members.subscribers):
a question or answer announced by the worker, an accepted answer, a helpful mark, the tenth
upvote of an answer, a trust level reached. A handler only asks the worker to check the member
for the badges they do not hold yet (`check_later`: one lookup, and an outbox row only while the
badge is missing; the vote path pays nothing but at the tenth upvote); a minute later the
worker runs the badge's query for that member and awards it if it is earned (`check`). So a
held question counts once it is published, and a vote taken back at once awards nothing.

An award is one INSERT ... ON CONFLICT DO NOTHING on the (user, badge) unique key: two workers
that check the same milestone at once award it once, and only the one that inserted notifies
(in the app only: an e-mail per badge would be noise, see core.notifications.IN_APP_ONLY). A
figure that later drops (a vote retracted, a level lowered by a moderator) keeps the badge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import Select, func, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from community.core import events, notifications, outbox
from community.core.clock import utcnow
from community.core.db import insert_missing
from community.core.labels import N_
from community.core.models import NotificationKind, Post, Thread, User, Visibility
from community.core.workspace_models import UserBadge

BADGE_EVENT = "members.badge"
# Checks run a minute after the event: what triggered them has settled by then (an upvote
# taken back at once, an accepted answer changed for another awards nothing), and a badge is
# not news that must arrive within the second.
CHECK_DELAY = timedelta(minutes=1)
HELPFUL_MARKS = 10
ANSWER_UPVOTES = 10
TRUST_BADGE_LEVELS = (1, 2, 3)

UserIds = Select[Any]  # one column: user ids
# Who qualifies: every member (None), or only the member with this id.
Qualifies = Callable[[int | None], UserIds]


@dataclass(frozen=True)
class Badge:
    key: str
    name: str  # English, marked for translation (shown through _())
    description: str
    qualifies: Qualifies


def _visible_posts(only: int | None, *, question: bool) -> UserIds:
    statement = (
        select(Post.author_id)
        .join(Thread, Thread.id == Post.thread_id)
        .where(
            Post.is_question.is_(question),
            Post.visibility == Visibility.VISIBLE,
            Thread.visibility == Visibility.VISIBLE,
            Post.author_id.is_not(None),
        )
    )
    if not question:  # "someone's question": answering one's own earns nothing
        statement = statement.where(Thread.author_id.is_distinct_from(Post.author_id))
    if only is not None:
        return statement.where(Post.author_id == only).limit(1)
    return statement.distinct()


def _asked(only: int | None) -> UserIds:
    return _visible_posts(only, question=True)


def _answered(only: int | None) -> UserIds:
    return _visible_posts(only, question=False)


def _accepted(only: int | None) -> UserIds:
    # Accepting one's own answer earns nothing, as in reputation.
    accepted = aliased(Post)
    statement = (
        select(accepted.author_id)
        .join(Thread, Thread.accepted_post_id == accepted.id)
        .where(
            accepted.visibility == Visibility.VISIBLE,
            Thread.visibility == Visibility.VISIBLE,
            accepted.author_id.is_not(None),
            accepted.author_id != func.coalesce(Thread.accepted_by_id, -1),
        )
    )
    if only is not None:
        return statement.where(accepted.author_id == only).limit(1)
    return statement.distinct()


def _helped(only: int | None) -> UserIds:
    statement = select(Thread.author_id).where(
        Thread.visibility == Visibility.VISIBLE, Thread.author_id.is_not(None)
    )
    if only is not None:
        statement = statement.where(Thread.author_id == only)
    return statement.group_by(Thread.author_id).having(
        func.sum(Thread.helpful_count) >= HELPFUL_MARKS
    )


def _upvoted_answer(only: int | None) -> UserIds:
    statement = select(Post.author_id).where(
        Post.is_question.is_(False),
        Post.visibility == Visibility.VISIBLE,
        Post.upvotes >= ANSWER_UPVOTES,
        Post.author_id.is_not(None),
    )
    if only is not None:
        return statement.where(Post.author_id == only).limit(1)
    return statement.distinct()


def _trust(level: int) -> Qualifies:
    def qualifies(only: int | None) -> UserIds:
        statement = select(User.id).where(User.trust_level >= level)
        return statement if only is None else statement.where(User.id == only)

    return qualifies


def trust_key(level: int) -> str:
    return f"trust_level_{level}"


BADGES: tuple[Badge, ...] = (
    Badge("first_question", N_("First question"), N_("Asked a first question."), _asked),
    Badge("first_answer", N_("First answer"), N_("Answered someone's question."), _answered),
    Badge(
        "first_accepted_answer",
        N_("Problem solver"),
        N_("Wrote an answer that was accepted."),
        _accepted,
    ),
    Badge(
        "helpful_10",
        N_("Helpful question"),
        N_("Ten people marked their questions “this helped me too”."),
        _helped,
    ),
    Badge(
        "upvoted_answer_10",
        N_("Great answer"),
        N_("An answer with ten upvotes."),
        _upvoted_answer,
    ),
    Badge(trust_key(1), N_("Basic member"), N_("Reached trust level 1."), _trust(1)),
    Badge(trust_key(2), N_("Member"), N_("Reached trust level 2."), _trust(2)),
    Badge(trust_key(3), N_("Regular"), N_("Reached trust level 3."), _trust(3)),
)
BY_KEY = {badge.key: badge for badge in BADGES}


@dataclass(frozen=True)
class Earned:
    badge: Badge
    awarded_at: datetime


# --- awarding ------------------------------------------------------------------------------


def award(db: Session, user: User, key: str) -> bool:
    """Award the badge once; the member hears of it (in the app) only from the award that
    inserted it. True if it is new. Whether it is earned is the caller's to know."""
    badge = BY_KEY[key]
    added = insert_missing(
        db, UserBadge, [{"user_id": user.id, "badge": badge.key, "awarded_at": utcnow()}]
    )
    if not added:
        return False
    data = notifications.message(
        N_("You earned the badge “%(badge)s”"), badge=notifications.message(badge.name)
    )
    notifications.notify(
        db,
        user,
        NotificationKind.BADGE,
        actor=None,
        data=data | {"path": f"/u/{quote(user.username, safe='')}#badges"},
    )
    return True


def check_later(db: Session, user_id: int | None, *keys: str) -> None:
    """Have the worker check the member for those of these badges they do not hold yet, a
    moment from now (CHECK_DELAY)."""
    if user_id is None or not keys:
        return
    held = set(
        db.scalars(
            select(UserBadge.badge).where(UserBadge.user_id == user_id, UserBadge.badge.in_(keys))
        )
    )
    for key in keys:
        if key not in held:
            outbox.enqueue(db, BADGE_EVENT, {"user_id": user_id, "badge": key}, delay=CHECK_DELAY)


def check(db: Session, event: outbox.OutboxEvent) -> None:
    """The worker's side of check_later: award the badge if the member has earned it now."""
    badge = BY_KEY.get(str(event.payload.get("badge")))
    user = db.get(User, event.payload.get("user_id"))
    if badge is None or user is None or user.deactivated_at is not None:
        return
    # Checked again since queued: another check may have awarded it in between.
    held = select(UserBadge.id).where(UserBadge.user_id == user.id, UserBadge.badge == badge.key)
    if db.scalar(held) is None and db.scalar(badge.qualifies(user.id)) is not None:
        award(db, user, badge.key)


def earned(db: Session, user_id: int) -> list[Earned]:
    """The member's badges in the order of BADGES (keys no longer defined are left out)."""
    rows = db.execute(
        select(UserBadge.badge, UserBadge.awarded_at).where(UserBadge.user_id == user_id)
    ).all()
    awarded = {key: at for key, at in rows if key in BY_KEY}
    return [Earned(badge, awarded[badge.key]) for badge in BADGES if badge.key in awarded]


def backfill(db: Session) -> dict[str, int]:
    """Award every badge to every member who has earned it already (existing members, imported
    communities), without notifications: one INSERT ... SELECT per badge. Run again, it adds
    only what is new. Returns how many each badge gained."""
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    gained: dict[str, int] = {}
    now = utcnow()
    for badge in BADGES:
        earners = badge.qualifies(None).subquery()
        rows = select(
            earners.c[0], literal(badge.key), literal(now, UserBadge.awarded_at.type)
        ).where(true())  # SQLite parses INSERT ... SELECT ... ON CONFLICT only after a WHERE
        statement = (
            insert(UserBadge)
            .from_select(["user_id", "badge", "awarded_at"], rows)
            .on_conflict_do_nothing()
            .returning(UserBadge.id)
        )
        gained[badge.key] = len(db.execute(statement).all())
    db.flush()
    return gained


# --- what the events ask for --------------------------------------------------------------


def on_post_announced(db: Session, post: Post) -> None:
    """A question or answer the worker announced (visible now)."""
    check_later(db, post.author_id, "first_question" if post.is_question else "first_answer")


def on_accepted(db: Session, acceptance: events.Acceptance) -> None:
    check_later(db, acceptance.post.author_id, "first_accepted_answer")


def on_helpful_marked(db: Session, thread: Thread) -> None:
    check_later(db, thread.author_id, "helpful_10")


def on_answer_upvoted(db: Session, post: Post) -> None:
    """At the vote that takes the answer to ten upvotes: each vote moves the count by one and
    reads it back in the same statement, so exactly one vote sees ten (a vote retracted and
    given again sees it again: the check is idempotent). Answers that had ten before badges
    existed get theirs from the backfill. Every other vote costs nothing here."""
    if post.upvotes == ANSWER_UPVOTES:
        check_later(db, post.author_id, "upvoted_answer_10")


def on_trust_level_changed(db: Session, user: User) -> None:
    reached = [level for level in TRUST_BADGE_LEVELS if user.trust_level >= level]
    check_later(db, user.id, *(trust_key(level) for level in reached))
