"""Flags and the review queues.

Every target has at most one open item per queue, however many flags or filter hits it
collects; the item lists every reason. Resolving an item is a conditional update (`WHERE status
= 'open'`), so when two moderators act at once exactly one wins and the other is told who
handled it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from community import visibility
from community.core import notifications
from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import Conflict, FormErrors, NotFound, PermissionDenied
from community.core.events import Submission
from community.core.i18n import gettext as _
from community.core.labels import N_, label, queue_label
from community.core.models import Brand, NotificationKind, Post, Thread, User, Visibility
from community.core.policy import (
    can_moderate,
    ensure_can_participate,
    ensure_post_visible,
    is_staff,
    staffed_brands,
)
from moderation import filters, trust
from moderation.models import (
    Flag,
    FlagReason,
    FlagStatus,
    ItemStatus,
    Queue,
    QueueItem,
)

SPAM_ON_SIGHT_LEVEL = 3


def _brand_id(post: Post) -> int:
    return post.thread.forum.brand_id


def _open_item(db: Session, queue: Queue, post: Post) -> QueueItem | None:
    return db.scalar(
        select(QueueItem).where(
            QueueItem.queue == queue,
            QueueItem.post_id == post.id,
            QueueItem.status == ItemStatus.OPEN,
        )
    )


def _item_for(db: Session, queue: Queue, post: Post) -> QueueItem:
    item = _open_item(db, queue, post)
    if item is not None:
        return item
    item = QueueItem(
        brand_id=_brand_id(post),
        queue=queue,
        post_id=post.id,
        user_id=post.author_id,
        reasons=[],
        flag_weight=0.0,
    )
    try:
        with db.begin_nested():
            db.add(item)
    except IntegrityError:  # someone opened it at the same moment: use theirs
        found = _open_item(db, queue, post)
        assert found is not None
        return found
    return item


def account_item(db: Session, brand_id: int, user: User) -> QueueItem:
    """The open reported-accounts item for `user`, opened if there is none."""
    item = db.scalar(
        select(QueueItem).where(
            QueueItem.queue == Queue.USERS,
            QueueItem.user_id == user.id,
            QueueItem.post_id.is_(None),
            QueueItem.status == ItemStatus.OPEN,
        )
    )
    if item is None:
        item = QueueItem(brand_id=brand_id, queue=Queue.USERS, user_id=user.id, reasons=[])
        db.add(item)
    return item


def hold(
    db: Session, post: Post, reasons: list[str], *, account_reasons: list[str] | None = None
) -> QueueItem:
    """A new post waits in the pending queue (it is kept, never lost). Reasons about the
    account itself (a burst from a new account) also put the account in front of moderators."""
    item = _item_for(db, Queue.PENDING, post)
    item.reasons = list(item.reasons) + reasons
    if account_reasons and post.author is not None:
        account = account_item(db, _brand_id(post), post.author)
        account.reasons = [*list(account.reasons), *account_reasons]
    record_audit(
        db,
        actor=None,
        action="post.held",
        target_type="post",
        target_id=post.id,
        after={"visibility": "pending"},
        reason="; ".join(reasons),
    )
    db.flush()
    return item


def screen_submission(db: Session, submission: Submission) -> None:
    """On post_submitted: screen a new post; what a filter catches waits in the pending queue."""
    post = submission.post
    screening = filters.screen(db, submission.author, submission.forum, submission.text, post=post)
    if screening.hits or screening.held:
        db.flush()  # a post screened before it was stored: the hits and the queue need its id
    filters.record_hits(db, screening, post)
    if screening.held:
        hold(db, post, screening.reasons, account_reasons=screening.account_reasons)
        submission.held = True


# --- flags -----------------------------------------------------------------------------------


def flag(
    db: Session,
    flagger: User,
    post: Post,
    reason: FlagReason,
    *,
    note: str | None = None,
    duplicate_of: Thread | None = None,
) -> Flag:
    ensure_can_participate(flagger)
    ensure_post_visible(flagger, post)
    if post.author_id == flagger.id:
        raise PermissionDenied(_("You cannot flag your own post."))
    if reason == FlagReason.OTHER and not (note or "").strip():
        raise FormErrors({"note": _("Say what is wrong.")})
    existing = db.scalar(
        select(Flag).where(
            Flag.flagger_id == flagger.id, Flag.post_id == post.id, Flag.status == FlagStatus.OPEN
        )
    )
    if existing is not None:
        raise Conflict(_("You already flagged this post; a moderator will look at it."))
    weight = trust.flag_weight(flagger, post.brand_id)
    created = Flag(
        post_id=post.id,
        flagger_id=flagger.id,
        reason=reason,
        note=(note or "").strip()[:500] or None,
        duplicate_of_id=duplicate_of.id if duplicate_of else None,
        weight=weight,
    )
    try:
        with db.begin_nested():
            db.add(created)
    except IntegrityError as exc:
        raise Conflict(_("You already flagged this post; a moderator will look at it.")) from exc
    item = _item_for(db, Queue.FLAGGED, post)
    item.flag_weight = float(item.flag_weight or 0) + weight
    item.reasons = [
        *list(item.reasons),
        _("flagged as %(reason)s by %(name)s (trust level %(level)d, weight %(weight)s)")
        % {
            "reason": label(f"flag:{reason.value}"),
            "name": flagger.username,
            "level": flagger.trust_level,
            "weight": f"{weight:g}",
        },
    ]
    brand = post.thread.forum.brand
    on_sight = reason == FlagReason.SPAM and (
        flagger.trust_level >= SPAM_ON_SIGHT_LEVEL or is_staff(flagger, brand.id)
    )
    if post.visibility == Visibility.VISIBLE and (
        on_sight or item.flag_weight >= brand.flag_hide_weight
    ):
        why = (
            _("hidden at once: spam flag from a trust-level-%(level)d member")
            % {"level": flagger.trust_level}
            if on_sight
            else _("hidden automatically: flag weight %(weight)s reached %(limit)s")
            % {"weight": f"{item.flag_weight:g}", "limit": f"{brand.flag_hide_weight:g}"}
        )
        item.reasons = [*list(item.reasons), why]
        item.auto_hidden = True
        visibility.set_visibility(db, post, Visibility.HIDDEN)
        record_audit(
            db,
            actor=None,
            action="post.auto_hidden",
            target_type="post",
            target_id=post.id,
            before={"visibility": "visible"},
            after={"visibility": "hidden"},
            reason=why,
        )
    db.flush()
    return created


def flags_by(db: Session, user: User, *, limit: int = 50) -> list[Flag]:
    """A flagger's own flags and their outcome."""
    return list(
        db.scalars(
            select(Flag).where(Flag.flagger_id == user.id).order_by(Flag.id.desc()).limit(limit)
        )
    )


# --- the queues ------------------------------------------------------------------------------


def counts(db: Session, brand_id: int) -> dict[Queue, int]:
    rows = db.execute(
        select(QueueItem.queue, func.count())
        .where(QueueItem.brand_id == brand_id, QueueItem.status == ItemStatus.OPEN)
        .group_by(QueueItem.queue)
    ).all()
    found = {Queue(queue): int(count) for queue, count in rows}
    return {queue: found.get(queue, 0) for queue in Queue}


def open_items(db: Session, brand_id: int, queue: Queue, *, limit: int = 50) -> list[QueueItem]:
    return list(
        db.scalars(
            select(QueueItem)
            .where(
                QueueItem.brand_id == brand_id,
                QueueItem.queue == queue,
                QueueItem.status == ItemStatus.OPEN,
            )
            .options(
                selectinload(QueueItem.post).selectinload(Post.thread).selectinload(Thread.forum),
                selectinload(QueueItem.post).selectinload(Post.author),
                selectinload(QueueItem.user),
            )
            .order_by(QueueItem.flag_weight.desc(), QueueItem.id)
            .limit(limit)
        )
    )


def open_items_by_id(db: Session, viewer: User, item_ids: list[int]) -> list[QueueItem]:
    """The items among `item_ids` still waiting (a bulk action's selection), at most 100, of
    the brands `viewer` moderates (another brand's items do not exist for them)."""
    if not item_ids:
        return []
    statement = select(QueueItem).where(
        QueueItem.id.in_(item_ids[:100]), QueueItem.status == ItemStatus.OPEN
    )
    brands = staffed_brands(viewer)
    if brands is not None:
        statement = statement.where(QueueItem.brand_id.in_(brands))
    items = db.scalars(
        statement.options(
            selectinload(QueueItem.post).selectinload(Post.thread), selectinload(QueueItem.user)
        ).order_by(QueueItem.id)
    )
    return [item for item in items if can_moderate(viewer, item.brand_id)]


@dataclass
class AuthorHistory:
    posts: int
    hidden_or_deleted: int
    flags_upheld: int
    trust_level: int
    account_days: int
    suspended: bool


def author_history(db: Session, user: User) -> AuthorHistory:
    return author_histories(db, [user])[user.id]


def author_histories(db: Session, users: list[User]) -> dict[int, AuthorHistory]:
    """Each author's history by user id, in three queries however many authors a queue shows."""
    ids = {user.id for user in users}
    if not ids:
        return {}
    posts = _counts_by_author(
        db, select(Post.author_id, func.count()).where(Post.author_id.in_(ids))
    )
    removed = _counts_by_author(
        db,
        select(Post.author_id, func.count()).where(
            Post.author_id.in_(ids), Post.visibility.in_([Visibility.HIDDEN, Visibility.DELETED])
        ),
    )
    upheld = _counts_by_author(
        db,
        select(Post.author_id, func.count())
        .select_from(Flag)
        .join(Post, Post.id == Flag.post_id)
        .where(Post.author_id.in_(ids), Flag.status == FlagStatus.UPHELD),
    )
    now = utcnow()
    return {
        user.id: AuthorHistory(
            posts=posts.get(user.id, 0),
            hidden_or_deleted=removed.get(user.id, 0),
            flags_upheld=upheld.get(user.id, 0),
            trust_level=user.trust_level,
            account_days=(now - user.created_at).days,
            suspended=user.suspended_until is not None and user.suspended_until > now,
        )
        for user in users
    }


def _counts_by_author(db: Session, statement: Select[int | None, int]) -> dict[int, int]:
    rows = db.execute(statement.group_by(Post.author_id)).all()
    return {int(author_id): int(count) for author_id, count in rows if author_id is not None}


def access_item(db: Session, viewer: User, item_id: int) -> QueueItem:
    """A review queue item, for moderators and admins; for anyone else it does not exist."""
    # The role check comes first, so nobody else learns which ids exist.
    if not can_moderate(viewer):
        raise NotFound()
    # With what the confirmation page shows: the post, its thread's title, the member.
    item = db.get(
        QueueItem,
        item_id,
        options=[
            selectinload(QueueItem.post).selectinload(Post.thread),
            selectinload(QueueItem.user),
        ],
    )
    if item is None or not can_moderate(viewer, item.brand_id):
        raise NotFound()
    return item


def claim_resolution(db: Session, moderator: User, item: QueueItem, resolution: str) -> None:
    """Mark the item resolved, unless someone else got there first (then 409, naming them)."""
    result = db.execute(
        update(QueueItem)
        .where(QueueItem.id == item.id, QueueItem.status == ItemStatus.OPEN)
        .values(
            status=ItemStatus.RESOLVED,
            resolved_at=utcnow(),
            resolved_by_id=moderator.id,
            resolution=resolution,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        db.refresh(item)
        who = item.resolved_by.display_name if item.resolved_by else _("someone")
        raise Conflict(
            _("Already handled by %(name)s (%(what)s).")
            % {
                "name": who,
                "what": queue_label("resolution", item.queue.value, item.resolution or ""),
            }
        )
    db.refresh(item)


def close_flags(db: Session, post: Post, status: FlagStatus) -> list[Flag]:
    flags = list(
        db.scalars(select(Flag).where(Flag.post_id == post.id, Flag.status == FlagStatus.OPEN))
    )
    for item in flags:
        item.status = status
        item.resolved_at = utcnow()
    return flags


def tell_author(
    db: Session, post: Post | None, user: User | None, message: dict[str, object], actor: User
) -> None:
    """A moderation notice; `message` is notifications.message(), translated when read."""
    recipient = user or (post.author if post else None)
    if recipient is None:
        return
    notifications.notify(
        db,
        recipient,
        NotificationKind.MODERATION,
        actor=actor,
        thread=post.thread if post else None,
        post=post,
        data=message,
    )


def tell_flaggers(db: Session, flags: list[Flag], upheld: bool, actor: User) -> None:
    """Flaggers see the outcome of what they reported."""
    for item in flags:
        message = notifications.message(
            N_("Thanks: your flag was upheld and the post was dealt with.")
            if upheld
            else N_("A moderator reviewed your flag and left the post up.")
        )
        notifications.notify(
            db,
            item.flagger,
            NotificationKind.MODERATION,
            actor=actor,
            post=db.get(Post, item.post_id),
            data=message,
        )


def save_moderation_settings(
    db: Session,
    admin: User,
    brand: Brand,
    *,
    flag_hide_weight: str,
    code_of_conduct: str,
    ip: str | None = None,
) -> None:
    """An admin sets the flag weight that hides a post (0.5 to 100) and the code of conduct."""
    try:
        weight = float(flag_hide_weight)
    except ValueError as exc:
        raise FormErrors({"flag_hide_weight": _("Enter a number.")}) from exc
    if not 0.5 <= weight <= 100:
        raise FormErrors(
            {
                "flag_hide_weight": _("Enter a number from %(low)s to %(high)s.")
                % {"low": "0.5", "high": "100"}
            }
        )
    before = {"flag_hide_weight": brand.flag_hide_weight}
    brand.flag_hide_weight = weight
    brand.code_of_conduct = code_of_conduct[:20_000]
    record_audit(
        db,
        actor=admin,
        action="brand.moderation_settings",
        target_type="brand",
        target_id=brand.id,
        before=before,
        after={"flag_hide_weight": weight},
        ip=ip,
    )
