"""Reading threads: one thread's page (question, accepted answer pinned next, the rest by score
or date) and the forum listing with keyset pagination."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select, tuple_
from sqlalchemy.orm import (
    InstrumentedAttribute,
    Session,
    contains_eager,
    joinedload,
    selectinload,
)

from community.core.activity_models import HelpfulMark, ThreadWatch, Vote
from community.core.errors import BadRequest, NotFound
from community.core.i18n import gettext as _
from community.core.models import (
    Brand,
    Forum,
    Post,
    PostComment,
    Tag,
    Thread,
    ThreadKind,
    ThreadStatus,
    User,
    Visibility,
    thread_tags,
)
from community.core.policy import (
    Reader,
    ThreadPermissions,
    ensure_brand_shown,
    ensure_forum_readable,
    is_staff,
    member_access_levels,
    sees_members_view,
)

PAGE_SIZE = 30
Sort = Literal["activity", "newest", "unanswered", "top", "solved"]
SORTS: tuple[Sort, ...] = ("activity", "newest", "unanswered", "top", "solved")


# --- one thread's page -----------------------------------------------------------------------


@dataclass
class ThreadPage:
    thread: Thread
    question: Post
    accepted: Post | None
    answers: list[Post]
    my_votes: dict[int, int]
    helped: bool
    watching: bool
    permissions: ThreadPermissions
    answer_sort: str
    # Remarks under posts (imported from Stack Exchange), by post id, oldest first.
    comments: dict[int, list[PostComment]] = field(default_factory=dict)


# Whether a post has comments, beside it in the posts' statement (an index lookup per post).
_HAS_COMMENTS = exists().where(PostComment.post_id == Post.id).correlate(Post)


def comments_by_post(db: Session, post_ids: list[int]) -> dict[int, list[PostComment]]:
    comments: dict[int, list[PostComment]] = {}
    if not post_ids:
        return comments
    for comment in db.scalars(
        select(PostComment)
        .where(PostComment.post_id.in_(post_ids))
        .options(joinedload(PostComment.author))
        .order_by(PostComment.post_id, PostComment.id)
    ):
        comments.setdefault(comment.post_id, []).append(comment)
    return comments


def _viewer_posts(
    db: Session, user: User, thread: Thread
) -> tuple[list[Post], dict[int, int], bool, bool, list[int]]:
    """The posts a signed-in viewer sees with their own votes, helpful mark and watch, and
    which of them have comments, in one statement (the thread page's budget is six for
    everything)."""
    statement = (
        select(
            Post,
            Vote.value,
            exists().where(HelpfulMark.user_id == user.id, HelpfulMark.thread_id == thread.id),
            exists().where(ThreadWatch.user_id == user.id, ThreadWatch.thread_id == thread.id),
            _HAS_COMMENTS,
        )
        .outerjoin(Vote, and_(Vote.post_id == Post.id, Vote.user_id == user.id))
        .where(Post.thread_id == thread.id)
        .options(joinedload(Post.author))
        .order_by(Post.id)
    )
    if not is_staff(user, thread.brand_id):
        own_pending = and_(Post.visibility == Visibility.PENDING, Post.author_id == user.id)
        statement = statement.where(or_(Post.visibility == Visibility.VISIBLE, own_pending))
    rows = db.execute(statement).all()
    posts = [row[0] for row in rows]
    my_votes = {row[0].id: row[1] for row in rows if row[1] is not None}
    helped, watching = (bool(rows[0][2]), bool(rows[0][3])) if rows else (False, False)
    return posts, my_votes, helped, watching, [row[0].id for row in rows if row[4]]


# --- a signed-in viewer's marks on a thread --------------------------------------------------


@dataclass(frozen=True)
class ViewerMarks:
    """What of a thread is the viewer's own: votes on its posts, posts in it, a helpful
    mark, a watch. Without votes and posts, its cards look the same to every plain member."""

    voted: bool
    wrote: bool
    helped: bool
    watching: bool


def viewer_mark_columns(user: User) -> tuple[ColumnElement[bool], ...]:
    """ViewerMarks' values, in order, as columns correlated to the thread: the thread page
    reads them in the thread's own statement."""
    in_thread = Post.thread_id == Thread.id
    marks = (
        exists().where(Vote.user_id == user.id, Vote.post_id == Post.id, in_thread),
        exists().where(Post.author_id == user.id, in_thread),
        exists().where(HelpfulMark.user_id == user.id, HelpfulMark.thread_id == Thread.id),
        exists().where(ThreadWatch.user_id == user.id, ThreadWatch.thread_id == Thread.id),
    )
    return tuple(mark.correlate(Thread) for mark in marks)


@dataclass(frozen=True)
class ThreadFrame:
    """What a thread page shows around its post cards when the cards are shared."""

    permissions: ThreadPermissions
    helped: bool
    watching: bool


def shared_frame(user: User, thread: Thread, marks: ViewerMarks) -> ThreadFrame | None:
    """The page around shared cards, when this viewer sees the cards every plain member
    sees (no vote and no post of theirs in the thread); None when they need their own."""
    permissions = ThreadPermissions(user, thread)
    if not permissions.sees_members_view or marks.voted or marks.wrote:
        return None
    return ThreadFrame(permissions, marks.helped, marks.watching)


def members_class(user: User, marks: ViewerMarks) -> str:
    """What a plain member's whole thread page depends on besides the thread and the header's
    personal text: the role and trust level (curating, retagging), whether they are a verified
    customer (the forums they may read: a kept page is served without the route's checks) and
    the two buttons. Members of one class share the page (community.core.member_pages)."""
    reads = ",".join(sorted(member_access_levels(user)))
    marks_text = f"{int(marks.helped)}{int(marks.watching)}"
    return f"thread:{user.role.value}:{user.trust_level}:{reads}:{marks_text}"


def page_class(user: User, marks: ViewerMarks) -> str:
    """The class whose page this member gets: plain members share one (members_class); a member
    with a vote or a post in the thread gets a page of their own, kept for them alone (their id
    is in the class, so no other member's key can hold it) until a write changes it."""
    shared = members_class(user, marks)
    return f"own:{user.id}:{shared}" if marks.voted or marks.wrote else shared


_ROW_ID = re.compile(r"[0-9]{1,18}")


def classify_member(db: Session, user: User, params: Mapping[str, Any]) -> str | None:
    """The member's class on the thread page named by `params` (one statement: page_class), or
    None when their page is never kept. The thread's visibility plays no part: a kept page exists
    only if a member of the class was shown it under the current generation."""
    thread_id = str(params.get("thread_id", ""))
    if not _ROW_ID.fullmatch(thread_id) or not sees_members_view(user, None):
        return None
    row = db.execute(select(*viewer_mark_columns(user)).where(Thread.id == int(thread_id))).first()
    if row is None:
        return None
    voted, wrote, helped, watching = (bool(value) for value in row)
    marks = ViewerMarks(voted, wrote, helped, watching)
    return page_class(user, marks)


def answer_order(answer_sort: str) -> str:
    return "date" if answer_sort == "date" else "score"


def thread_page(
    db: Session, user: User | None, thread: Thread, *, answer_sort: str = "score"
) -> ThreadPage:
    """The question, the accepted answer pinned next, then the rest by score or by date."""
    my_votes: dict[int, int] = {}
    helped = watching = False
    if user is None:
        rows = db.execute(
            select(Post, _HAS_COMMENTS)
            .where(Post.thread_id == thread.id, Post.visibility == Visibility.VISIBLE)
            .options(joinedload(Post.author))
            .order_by(Post.id)
        ).all()
        posts = [row[0] for row in rows]
        commented = [row[0].id for row in rows if row[1]]
    else:
        posts, my_votes, helped, watching, commented = _viewer_posts(db, user, thread)
    question = next((post for post in posts if post.is_question), None)
    if question is None:
        raise NotFound()
    accepted = next((post for post in posts if post.id == thread.accepted_post_id), None)
    answers = [post for post in posts if not post.is_question and post is not accepted]
    answer_sort = answer_order(answer_sort)
    if answer_sort == "date":
        answers.sort(key=lambda post: (post.created_at, post.id))
    else:
        answers.sort(key=lambda post: (-post.score, post.created_at, post.id))
    return ThreadPage(
        thread=thread,
        question=question,
        accepted=accepted,
        answers=answers,
        my_votes=my_votes,
        helped=helped,
        watching=watching,
        permissions=ThreadPermissions(user, thread),
        answer_sort=answer_sort,
        # Most threads have none (comments come from imports): no statement for them.
        comments=comments_by_post(db, commented),
    )


# --- the forum listing -----------------------------------------------------------------------


@dataclass
class ThreadQuery:
    sort: Sort = "activity"
    tag: str | None = None
    status: ThreadStatus | None = None
    kind: ThreadKind | None = None
    cursor: str | None = None
    limit: int = PAGE_SIZE
    # Staff see pending, hidden and deleted threads too (marked as such) so they can act on
    # them; merged threads are only pointers and stay out.
    include_removed: bool = False


@dataclass
class ThreadListing:
    items: list[Thread]
    next_cursor: str | None
    query: ThreadQuery = field(default_factory=ThreadQuery)


def _sort_columns(sort: Sort) -> tuple[InstrumentedAttribute[Any], InstrumentedAttribute[int]]:
    if sort in ("newest", "unanswered"):
        return (Thread.created_at, Thread.id)
    if sort == "top":
        return (Thread.score, Thread.id)
    return (Thread.last_activity_at, Thread.id)


def encode_cursor(sort: Sort, thread: Thread) -> str:
    key: object
    if sort in ("newest", "unanswered"):
        key = thread.created_at.isoformat()
    elif sort == "top":
        key = thread.score
    else:
        key = thread.last_activity_at.isoformat()
    raw = json.dumps([sort, key, thread.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(sort: Sort, cursor: str) -> tuple[object, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        cursor_sort, key, thread_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if cursor_sort != sort or not isinstance(thread_id, int):
            raise ValueError("cursor for another sort")
        if sort == "top":
            if not isinstance(key, int):
                raise ValueError("bad score")
            return key, thread_id
        parsed = datetime.fromisoformat(str(key))
        if parsed.tzinfo is None:
            raise ValueError("naive time")
        return parsed, thread_id
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(_("That page link is not valid any more."), code="bad_cursor") from exc


def forum_by_slugs(
    db: Session, brand_slug: str, forum_slug: str, viewer: Reader | None = None
) -> Forum:
    """A brand's forum with its brand, in one statement (a page's budget is six). An archived
    brand's forums are gone but for site admins; an archived forum's page stays (its threads
    keep their addresses). A forum the viewer may not read is not found either."""
    forum = db.scalar(
        select(Forum)
        .join(Forum.brand)
        .where(Brand.slug == brand_slug, Forum.slug == forum_slug)
        .options(contains_eager(Forum.brand))
    )
    if forum is None:
        raise NotFound()
    ensure_brand_shown(forum.brand, viewer)
    ensure_forum_readable(viewer, forum)
    return forum


def list_threads(db: Session, forum: Forum, query: ThreadQuery) -> ThreadListing:
    """Keyset pagination: each page continues after the last row of the previous one, so
    page 1,000 costs what page 1 costs."""
    if query.sort not in SORTS:
        raise BadRequest(_("Unknown sort order."), code="bad_sort")
    limit = max(1, min(query.limit, 100))
    key_column, id_column = _sort_columns(query.sort)
    statement: Select[Thread] = select(Thread).where(Thread.forum_id == forum.id)
    if query.include_removed:
        statement = statement.where(Thread.merged_into_id.is_(None))
    else:
        statement = statement.where(Thread.visibility == Visibility.VISIBLE)
    if query.sort == "unanswered":
        statement = statement.where(Thread.reply_count == 0, Thread.status != ThreadStatus.SOLVED)
    if query.sort == "solved":
        statement = statement.where(Thread.status == ThreadStatus.SOLVED)
    if query.status is not None:
        statement = statement.where(Thread.status == query.status)
    if query.kind is not None:
        statement = statement.where(Thread.kind == query.kind)
    if query.tag:
        tag_id = db.scalar(
            select(Tag.id).where(Tag.brand_id == forum.brand_id, Tag.name == query.tag.lower())
        )
        if tag_id is None:
            return ThreadListing(items=[], next_cursor=None, query=query)
        statement = statement.join(
            thread_tags,
            and_(thread_tags.c.thread_id == Thread.id, thread_tags.c.tag_id == tag_id),
        )
    if query.cursor:
        key, last_id = decode_cursor(query.sort, query.cursor)
        statement = statement.where(
            or_(
                key_column < key,
                and_(key_column == key, id_column < last_id),
            )
            if db.get_bind().dialect.name == "sqlite"
            else tuple_(key_column, id_column) < tuple_(key, last_id)
        )
    statement = statement.order_by(key_column.desc(), id_column.desc()).limit(limit + 1)
    statement = statement.options(joinedload(Thread.author), selectinload(Thread.tags))
    rows = list(db.scalars(statement))
    next_cursor = encode_cursor(query.sort, rows[limit - 1]) if len(rows) > limit else None
    return ThreadListing(items=rows[:limit], next_cursor=next_cursor, query=query)


def popular_tags(db: Session, brand_id: int, *, limit: int = 20) -> list[Tag]:
    return list(
        db.scalars(
            select(Tag)
            .where(Tag.brand_id == brand_id, Tag.thread_count > 0)
            .order_by(Tag.thread_count.desc(), Tag.name)
            .limit(limit)
        )
    )
