"""Trust levels 0-4: earned automatically from activity, lowered or pinned by moderators.

Defaults (a brand may override any number in `brand.trust_thresholds`, keyed by level):

| level | days visited | threads read | posts | upvotes | accepted | age | flags upheld, 90 d |
|---|---|---|---|---|---|---|---|
| 1 basic | 1 | 5 | 0 | 0 | 0 | 1 day | any |
| 2 member | 10 | 50 | 5 | 5 | 0 | 14 days | at most 1 |
| 3 regular | 40 | 200 | 20 | 25 | 3 | 60 days | none |
| 4 leader | set by moderators only |

What each level may do: 0 posts first go to the pending queue, no links or images, slower rate
limits, flags weigh 0.5; 1 normal; 2 may edit tags, flags weigh 1.5; 3 may move threads and a
spam flag from them hides the post at once, flags weigh 2; 4 flags weigh 3, like staff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core import events
from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import FormErrors
from community.core.forms import whole_number
from community.core.i18n import gettext as _
from community.core.models import Brand, Post, Thread, User, Visibility
from community.core.policy import ensure_brand_admin, is_staff
from moderation.models import Flag, FlagStatus

DEFAULTS: dict[str, dict[str, int]] = {
    "1": {"days_visited": 1, "threads_read": 5, "posts": 0, "upvotes": 0, "accepted": 0,
          "account_days": 1, "max_flags_upheld": 1000},
    "2": {"days_visited": 10, "threads_read": 50, "posts": 5, "upvotes": 5, "accepted": 0,
          "account_days": 14, "max_flags_upheld": 1},
    "3": {"days_visited": 40, "threads_read": 200, "posts": 20, "upvotes": 25, "accepted": 3,
          "account_days": 60, "max_flags_upheld": 0},
}  # fmt: skip
FLAG_WEIGHT = {0: 0.5, 1: 1.0, 2: 1.5, 3: 2.0, 4: 3.0}
STAFF_FLAG_WEIGHT = 3.0
LINKS_ALLOWED = {0: 0, 1: 3, 2: 10}
MAX_AUTO_LEVEL = 3


@dataclass(frozen=True, slots=True)
class Activity:
    days_visited: int
    threads_read: int
    posts: int
    upvotes: int
    accepted: int
    account_days: int
    flags_upheld: int

    def as_dict(self) -> dict[str, int]:
        return {
            "days_visited": self.days_visited,
            "threads_read": self.threads_read,
            "posts": self.posts,
            "upvotes": self.upvotes,
            "accepted": self.accepted,
            "account_days": self.account_days,
            "flags_upheld": self.flags_upheld,
        }


def thresholds(brand: Brand | None) -> dict[str, dict[str, int]]:
    merged = {level: dict(values) for level, values in DEFAULTS.items()}
    custom: dict[str, Any] = (brand.trust_thresholds if brand else None) or {}
    for level, values in custom.items():
        if level in merged and isinstance(values, dict):
            merged[level].update({k: int(v) for k, v in values.items() if k in merged[level]})
    return merged


def activity(db: Session, user: User) -> Activity:
    visible_posts = (
        select(Post)
        .join(Thread, Thread.id == Post.thread_id)
        .where(
            Post.author_id == user.id,
            Post.visibility == Visibility.VISIBLE,
            Thread.visibility == Visibility.VISIBLE,
        )
        .subquery()
    )
    posts, upvotes = db.execute(
        select(func.count(), func.coalesce(func.sum(visible_posts.c.upvotes), 0)).select_from(
            visible_posts
        )
    ).one()
    accepted = db.scalar(
        select(func.count())
        .select_from(Thread)
        .join(Post, Post.id == Thread.accepted_post_id)
        .where(Post.author_id == user.id, Thread.visibility == Visibility.VISIBLE)
    )
    flags_upheld = db.scalar(
        select(func.count())
        .select_from(Flag)
        .join(Post, Post.id == Flag.post_id)
        .where(
            Post.author_id == user.id,
            Flag.status == FlagStatus.UPHELD,
            Flag.resolved_at >= utcnow() - timedelta(days=90),
        )
    )
    return Activity(
        days_visited=user.days_visited,
        threads_read=user.threads_read,
        posts=int(posts or 0),
        upvotes=int(upvotes or 0),
        accepted=int(accepted or 0),
        account_days=(utcnow() - user.created_at).days,
        flags_upheld=int(flags_upheld or 0),
    )


LEVELS = ("1", "2", "3")
THRESHOLD_KEYS = tuple(DEFAULTS["1"])
MAX_THRESHOLD = 100_000


def save_thresholds(
    db: Session, actor: User, brand: Brand, values: dict[str, list[str]], *, ip: str | None
) -> dict[str, dict[str, int]]:
    """An admin sets a brand's thresholds: each key gets one whole number per level 1-3."""
    ensure_brand_admin(actor, brand.id)
    chosen: dict[str, dict[str, int]] = {level: {} for level in LEVELS}
    for key in THRESHOLD_KEYS:
        numbers = values.get(key) or []
        if len(numbers) != len(LEVELS):
            raise FormErrors({key: _("Enter a whole number for each level.")})
        for level, number in zip(LEVELS, numbers, strict=True):
            chosen[level][key] = whole_number(
                number, field=key, low=0, high=MAX_THRESHOLD,
                message=_("Enter a whole number from 0 to %(max)d for each level.")
                % {"max": MAX_THRESHOLD},
            )  # fmt: skip
    before = thresholds(brand)
    brand.trust_thresholds = chosen
    record_audit(
        db,
        actor=actor,
        action="brand.trust_thresholds",
        target_type="brand",
        target_id=brand.id,
        before=before,
        after=chosen,
        ip=ip,
    )
    return chosen


def earned_level(stats: Activity, rules: dict[str, dict[str, int]]) -> int:
    level = 0
    for candidate in range(1, MAX_AUTO_LEVEL + 1):
        need = rules[str(candidate)]
        if (
            stats.days_visited >= need["days_visited"]
            and stats.threads_read >= need["threads_read"]
            and stats.posts >= need["posts"]
            and stats.upvotes >= need["upvotes"]
            and stats.accepted >= need["accepted"]
            and stats.account_days >= need["account_days"]
            and stats.flags_upheld <= need["max_flags_upheld"]
        ):
            level = candidate
        else:
            break
    return level


def promote_if_earned(db: Session, user: User, brand: Brand | None) -> int | None:
    """Raise the user's trust level to what their activity earned (never lowers it: that is a
    moderator's decision). Returns the new level, or None when nothing changed."""

    if user.trust_locked or user.trust_level >= MAX_AUTO_LEVEL:
        return None
    stats = activity(db, user)
    level = earned_level(stats, thresholds(brand))
    if level <= user.trust_level:
        return None
    before = user.trust_level
    user.trust_level = level
    record_audit(
        db,
        actor=None,
        action="trust.promoted",
        target_type="user",
        target_id=user.id,
        before={"trust_level": before},
        after={"trust_level": level},
        reason="automatic: " + ", ".join(f"{k} {v}" for k, v in stats.as_dict().items()),
    )
    events.trust_level_changed.send(db, user)
    return level


def promote_active_members(db: Session, *, since: timedelta = timedelta(days=1)) -> int:
    """The periodic sweep: members seen lately get the level their activity has earned."""

    # One brand per community today; its thresholds apply to every member.
    brand = db.scalar(select(Brand).order_by(Brand.id).limit(1))
    candidates = db.scalars(
        select(User)
        .where(
            User.last_seen_at >= utcnow() - since,
            User.trust_locked.is_(False),
            User.trust_level < MAX_AUTO_LEVEL,
            User.deactivated_at.is_(None),
        )
        .order_by(User.id)
        .limit(1000)
    )
    return sum(1 for user in candidates if promote_if_earned(db, user, brand) is not None)


def flag_weight(user: User, brand_id: int) -> float:
    if is_staff(user, brand_id):
        return STAFF_FLAG_WEIGHT
    return FLAG_WEIGHT.get(user.trust_level, 1.0)


def links_allowed(user: User, brand_id: int) -> int | None:
    """How many links a post may carry in the brand (None: no limit)."""
    if is_staff(user, brand_id):
        return None
    return LINKS_ALLOWED.get(user.trust_level)
