"""Asking, answering, editing and deleting; the forum listing with keyset pagination; loading a
thread page. Counters (forum, thread, tag) move by SQL increments so concurrent writers add up."""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Select, and_, func, or_, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session, joinedload, selectinload

from community import revisions, visibility
from community.core import events, indexing, language, notifications
from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.db import insert_missing
from community.core.errors import BadRequest, FormErrors, NotFound, PermissionDenied, ThreadMerged
from community.core.i18n import gettext as _
from community.core.markdown import HTML_VERSION
from community.core.models import (
    Forum,
    HelpfulMark,
    Post,
    PostComment,
    PostRevision,
    Tag,
    Thread,
    ThreadKind,
    ThreadStatus,
    ThreadWatch,
    User,
    Visibility,
    Vote,
    thread_tags,
)
from community.core.policy import (
    ThreadPermissions,
    can_redact,
    can_retag,
    ensure_can_change,
    ensure_can_participate,
    ensure_post_visible,
    ensure_thread_open_for,
    ensure_thread_visible,
    is_agent,
    is_staff,
)
from community.core.schemas import AnswerIn, AskIn, EditIn
from community.mentions import find_mentions, render_with_mentions

TITLE_MIN, TITLE_MAX = 10, 150
BODY_MAX = 30_000
TAGS_MAX = 5
# Every kind can be asked, praise included: triage files it as praise and keeps it out of the
# agents' queues (it needs no answer), which is the point of letting people say it.
ASKABLE_KINDS = (
    ThreadKind.QUESTION,
    ThreadKind.PROBLEM,
    ThreadKind.COMPLAINT,
    ThreadKind.IDEA,
    ThreadKind.PRAISE,
    ThreadKind.DISCUSSION,
)
_TAG = re.compile(r"^[^\W_][\w+#.-]{0,29}$")
_SPACES = re.compile(r"\s+")
PAGE_SIZE = 30

T = TypeVar("T")
Sort = Literal["activity", "newest", "unanswered", "top", "solved"]
SORTS: tuple[Sort, ...] = ("activity", "newest", "unanswered", "top", "solved")


# --- input rules -----------------------------------------------------------------------------


def clean_title(raw: str) -> str:
    title = unicodedata.normalize("NFC", _SPACES.sub(" ", raw)).strip()
    title = "".join(ch for ch in title if unicodedata.category(ch)[0] != "C")
    if len(title) < TITLE_MIN:
        raise FormErrors(
            {"title": _("Titles are at least %(min)d characters long.") % {"min": TITLE_MIN}}
        )
    if len(title) > TITLE_MAX:
        raise FormErrors(
            {"title": _("Titles are at most %(max)d characters long.") % {"max": TITLE_MAX}}
        )
    return title


def clean_body(raw: str, field_name: str = "body") -> str:
    body = raw.replace("\r\n", "\n").strip()
    if not body:
        raise FormErrors({field_name: _("Write something first.")})
    if len(body) > BODY_MAX:
        raise FormErrors(
            {field_name: _("Posts are at most %(max)d characters long.") % {"max": BODY_MAX}}
        )
    return body


def clean_tags(raw: list[str]) -> list[str]:
    names: list[str] = []
    for item in raw:
        name = unicodedata.normalize("NFKC", item).strip().lower().replace(" ", "-")
        if not name:
            continue
        if not _TAG.match(name):
            raise FormErrors(
                {"tags": _("Tags use letters, digits and + # . - (up to 30 characters).")}
            )
        if name not in names:
            names.append(name)
    if len(names) > TAGS_MAX:
        raise FormErrors({"tags": _("Use at most %(max)d tags.") % {"max": TAGS_MAX}})
    return names


def split_tags(text: str) -> list[str]:
    """Tags typed in one box, separated by commas or spaces."""
    return [part for part in re.split(r"[,\s]+", text) if part]


def _render(db: Session, source: str) -> tuple[str, list[User]]:
    return render_with_mentions(db, source)


# --- asking and answering --------------------------------------------------------------------


def _tags_for(db: Session, brand_id: int, names: list[str]) -> list[Tag]:
    """The brand's tags of these names, creating the missing ones (two askers may create the
    same new tag at once: the second uses the first's row)."""
    if not names:
        return []
    existing = {
        tag.name: tag
        for tag in db.scalars(select(Tag).where(Tag.brand_id == brand_id, Tag.name.in_(names)))
    }
    missing = [name for name in names if name not in existing]
    if missing:
        insert_missing(
            db, Tag, [{"brand_id": brand_id, "name": name, "thread_count": 0} for name in missing]
        )
        existing.update(
            (tag.name, tag)
            for tag in db.scalars(
                select(Tag).where(Tag.brand_id == brand_id, Tag.name.in_(missing))
            )
        )
    return [existing[name] for name in names]


def _checked(errors: dict[str, str], check: Callable[[], T], fallback: T) -> T:
    """Run one field's check, collecting its message so the form shows every problem at once."""
    try:
        return check()
    except FormErrors as exc:
        errors.update(exc.errors)
        return fallback


@dataclass(frozen=True, slots=True)
class CleanQuestion:
    title: str
    body: str
    tags: list[str]


def check_question(data: AskIn) -> tuple[CleanQuestion, dict[str, str]]:
    """The cleaned question and the message for every field that is not acceptable."""
    errors: dict[str, str] = {}
    title = _checked(errors, lambda: clean_title(data.title), "")
    body = _checked(errors, lambda: clean_body(data.body), "")
    tag_names: list[str] = _checked(errors, lambda: clean_tags(data.tags), [])
    if data.kind not in ASKABLE_KINDS:
        errors["kind"] = _("Choose one of the offered options.")
    return CleanQuestion(title=title, body=body, tags=tag_names), errors


def ask(db: Session, author: User, forum: Forum, data: AskIn, *, locale: str) -> Thread:
    """`locale` is the asker's interface language: the thread's language when its text does not
    say clearly which language it is written in."""
    ensure_can_participate(author)
    checked, errors = check_question(data)
    if errors:
        raise FormErrors(errors)
    title, body, tag_names = checked.title, checked.body, checked.tags
    now = utcnow()
    html, _mentioned = _render(db, body)
    thread = Thread(
        forum_id=forum.id,
        author_id=author.id,
        title=title,
        kind=data.kind,
        status=ThreadStatus.OPEN,
        visibility=Visibility.PENDING,
        locale=language.detect_post_language(title, html, fallback=locale),
        created_at=now,
        updated_at=now,
        last_activity_at=now,
    )
    thread.tags = _tags_for(db, forum.brand_id, tag_names)
    db.add(thread)
    db.flush()
    question = Post(
        thread_id=thread.id,
        author_id=author.id,
        is_question=True,
        body_source=body,
        body_html=html,
        html_version=HTML_VERSION,
        # Not counted anywhere until published (now, or when a moderator approves it).
        visibility=Visibility.PENDING,
        created_at=now,
        updated_at=now,
    )
    db.add(question)
    db.add(ThreadWatch(user_id=author.id, thread_id=thread.id))
    db.flush()
    submission = events.Submission(question, author, forum, f"{title}\n{body}")
    events.post_submitted.send(db, submission)
    if submission.held:
        indexing.thread_changed(db, thread.id)
    else:
        visibility.publish(db, question, author=author)
    return thread


def answer(db: Session, author: User, thread: Thread, data: AnswerIn) -> Post:
    ensure_can_participate(author)
    ensure_thread_visible(author, thread)
    ensure_thread_open_for(author, thread)
    if thread.visibility != Visibility.VISIBLE:
        raise PermissionDenied(_("This thread does not take answers."))
    body = clean_body(data.body)
    now = utcnow()
    html, _mentioned = _render(db, body)
    post = Post(
        thread_id=thread.id,
        author_id=author.id,
        body_source=body,
        body_html=html,
        html_version=HTML_VERSION,
        # Answers from the brand's support team carry the "official answer" badge.
        is_official=is_agent(author),
        visibility=Visibility.PENDING,
        created_at=now,
        updated_at=now,
    )
    db.add(post)
    db.flush()
    watch(db, author, thread)
    submission = events.Submission(post, author, thread.forum, body)
    events.post_submitted.send(db, submission)
    if not submission.held:
        visibility.publish(db, post, author=author)
    return post


def watch(db: Session, user: User, thread: Thread) -> None:
    """Idempotent, also when the same member answers or watches twice at the same moment."""
    if db.get(ThreadWatch, (user.id, thread.id)) is None:
        insert_missing(db, ThreadWatch, [{"user_id": user.id, "thread_id": thread.id}])


def unwatch(db: Session, user: User, thread: Thread) -> None:
    existing = db.get(ThreadWatch, (user.id, thread.id))
    if existing is not None:
        db.delete(existing)


def is_watching(db: Session, user_id: int | None, thread_id: int) -> bool:
    return user_id is not None and db.get(ThreadWatch, (user_id, thread_id)) is not None


# --- editing and deleting --------------------------------------------------------------------


def _snapshot(post: Post, number: int, editor_id: int | None, reason: str | None) -> PostRevision:
    thread = post.thread
    return PostRevision(
        post_id=post.id,
        number=number,
        editor_id=editor_id,
        title=thread.title if post.is_question else None,
        tags=" ".join(sorted(tag.name for tag in thread.tags)) if post.is_question else None,
        body_source=post.body_source,
        reason=reason,
    )


def edit_post(db: Session, editor: User, post: Post, data: EditIn) -> Post:
    """Save a new version; the first edit also keeps the original as revision 1."""
    ensure_can_participate(editor)
    ensure_post_visible(editor, post)
    ensure_can_change(editor, post)
    thread = post.thread
    ensure_thread_open_for(editor, thread)
    own = post.author_id == editor.id
    if not own and not is_staff(editor):
        raise PermissionDenied(_("You can only edit your own posts."))
    reason = (data.reason or "").strip() or None
    if not own and not reason:
        raise FormErrors({"reason": _("Say why you are editing someone else's post.")})
    if data.redact_earlier and not can_redact(editor):
        raise PermissionDenied(_("Only staff can redact earlier versions."))
    body = clean_body(data.body)
    title = clean_title(data.title) if post.is_question and data.title is not None else None
    tag_names = clean_tags(data.tags) if post.is_question and data.tags is not None else None
    kind = data.kind if post.is_question else None
    if kind is not None and kind not in ASKABLE_KINDS:
        raise FormErrors({"kind": _("Choose one of the offered options.")})

    count = db.scalar(select(func.count()).where(PostRevision.post_id == post.id)) or 0
    if count == 0:
        original = _snapshot(post, 1, post.author_id, None)
        original.created_at = post.created_at
        db.add(original)
        count = 1
    before_mentions = {user.id for user in find_mentions(db, post.body_source)}
    html, mentioned = _render(db, body)
    post.body_source = body
    post.body_html = html
    post.html_version = HTML_VERSION
    post.edit_count = Post.edit_count + 1
    post.edited_at = post.updated_at = utcnow()
    if post.is_question:
        thread.updated_at = post.edited_at
    if title is not None:
        thread.title = title
    if post.is_question:
        # The language in which the question is indexed follows its text; unclear text keeps
        # what it had.
        thread.locale = language.detect_post_language(thread.title, html, fallback=thread.locale)
    if kind is not None:
        thread.kind = kind
    if tag_names is not None and tag_names != [tag.name for tag in thread.tags]:
        counted = thread.visibility == Visibility.VISIBLE
        if counted:
            visibility.count_tags(thread.tags, -1)
        thread.tags = _tags_for(db, thread.forum.brand_id, tag_names)
        if counted:
            visibility.count_tags(thread.tags, 1)
    db.flush()
    db.add(_snapshot(post, count + 1, editor.id, reason))
    if data.redact_earlier:
        revisions.redact_earlier(db, editor, post, reason=reason)
    if not own:
        record_audit(
            db,
            actor=editor,
            action="post.edited",
            target_type="post",
            target_id=post.id,
            reason=reason,
        )
    new_mentions = [user for user in mentioned if user.id not in before_mentions]
    notifications.notify_mentions(db, new_mentions, actor=editor, thread=thread, post=post)
    indexing.thread_changed(db, thread.id)
    return post


def retag(db: Session, editor: User, thread: Thread, tags: list[str]) -> Thread:
    """Replace a thread's tags (tag counters follow); others' retags are audited."""
    ensure_can_participate(editor)
    ensure_thread_visible(editor, thread)
    ensure_thread_open_for(editor, thread)
    if thread.visibility != Visibility.VISIBLE and not is_staff(editor):
        raise PermissionDenied(
            _("This post is waiting for a moderator; you can change it once it is published.")
        )
    if not can_retag(editor, thread):
        raise PermissionDenied(_("Members from trust level 2 can edit tags."))
    names = clean_tags(tags)
    before = [tag.name for tag in thread.tags]
    if names == before:
        return thread
    counted = thread.visibility == Visibility.VISIBLE
    if counted:
        visibility.count_tags(thread.tags, -1)
    thread.tags = _tags_for(db, thread.forum.brand_id, names)
    if counted:
        visibility.count_tags(thread.tags, 1)
    if editor.id != thread.author_id:
        record_audit(
            db,
            actor=editor,
            action="thread.retagged",
            target_type="thread",
            target_id=thread.id,
            before={"tags": before},
            after={"tags": names},
        )
    indexing.thread_changed(db, thread.id)
    db.flush()
    return thread


def delete_post(db: Session, actor: User, post: Post, *, reason: str | None = None) -> None:
    """Soft delete. Deleting the question deletes the thread; an asker cannot delete a
    question others have answered (their answers would vanish with it)."""
    ensure_can_participate(actor)
    ensure_post_visible(actor, post)
    thread = post.thread
    permissions = ThreadPermissions(actor, thread)
    if post.visibility == Visibility.DELETED:
        return
    ensure_can_change(actor, post)
    if not permissions.can_edit(post):
        raise PermissionDenied(_("You can only delete your own posts."))
    if not permissions.can_delete(post):
        raise PermissionDenied(_("You cannot delete a question that has answers."))
    visibility.set_visibility(db, post, Visibility.DELETED)
    if post.author_id != actor.id:
        record_audit(
            db,
            actor=actor,
            action="thread.deleted" if post.is_question else "post.deleted",
            target_type="post",
            target_id=post.id,
            reason=reason,
        )
    db.flush()


# --- loading ---------------------------------------------------------------------------------


# A thread merged into one that was later merged itself points along a chain; a few hops is
# already unusual, and the cap keeps a corrupt cycle from looping.
MERGE_HOPS = 10


def merged_into(db: Session, user: User | None, thread: Thread) -> Thread | None:
    """Where a merged thread's content lives now, if `user` may see it there."""
    target: Thread | None = thread
    for _hop in range(MERGE_HOPS):
        if target is None or target.merged_into_id is None:
            break
        target = db.get(Thread, target.merged_into_id)
    if target is None or target.merged_into_id is not None or target.id == thread.id:
        return None
    try:
        ensure_thread_visible(user, target)
    except NotFound:
        return None
    return target


def access_thread(db: Session, user: User | None, thread_id: int) -> Thread:
    """The thread if `user` may see it. A merged thread is only a pointer: ThreadMerged names
    its target (for those who may see that), else it is not found."""
    thread = db.scalar(
        select(Thread)
        .where(Thread.id == thread_id)
        .options(
            selectinload(Thread.tags),
            joinedload(Thread.forum).joinedload(Forum.brand),
            # The closed note links the original of a duplicate.
            joinedload(Thread.duplicate_of),
        )
    )
    if thread is None:
        raise NotFound()
    if thread.merged_into_id is not None:
        target = merged_into(db, user, thread)
        if target is None:
            raise NotFound()
        raise ThreadMerged(target.id, _("This thread was merged into another one."))
    ensure_thread_visible(user, thread)
    return thread


def access_post(db: Session, user: User | None, post_id: int) -> Post:
    post = db.get(Post, post_id)
    if post is None:
        raise NotFound()
    ensure_post_visible(user, post)
    return post


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


def comments_by_post(db: Session, post_ids: list[int]) -> dict[int, list[PostComment]]:
    comments: dict[int, list[PostComment]] = {}
    if not post_ids:
        return comments
    for comment in db.scalars(
        select(PostComment)
        .where(PostComment.post_id.in_(post_ids))
        .options(selectinload(PostComment.author))
        .order_by(PostComment.post_id, PostComment.id)
    ):
        comments.setdefault(comment.post_id, []).append(comment)
    return comments


def thread_page(
    db: Session, user: User | None, thread: Thread, *, answer_sort: str = "score"
) -> ThreadPage:
    """The question, the accepted answer pinned next, then the rest by score or by date."""
    statement = select(Post).where(Post.thread_id == thread.id).options(selectinload(Post.author))
    if user is None:
        statement = statement.where(Post.visibility == Visibility.VISIBLE)
    elif not is_staff(user):
        own_pending = and_(Post.visibility == Visibility.PENDING, Post.author_id == user.id)
        statement = statement.where(or_(Post.visibility == Visibility.VISIBLE, own_pending))
    posts = list(db.scalars(statement.order_by(Post.id)))
    question = next((post for post in posts if post.is_question), None)
    if question is None:
        raise NotFound()
    accepted = next((post for post in posts if post.id == thread.accepted_post_id), None)
    answers = [post for post in posts if not post.is_question and post is not accepted]
    if answer_sort == "date":
        answers.sort(key=lambda post: (post.created_at, post.id))
    else:
        answer_sort = "score"
        answers.sort(key=lambda post: (-post.score, post.created_at, post.id))
    my_votes: dict[int, int] = {}
    helped = watching = False
    if user is not None:
        ids = [post.id for post in posts]
        rows = db.execute(
            select(Vote.post_id, Vote.value).where(Vote.user_id == user.id, Vote.post_id.in_(ids))
        )
        my_votes = dict(rows.all())
        helped = (
            db.scalar(
                select(HelpfulMark.id).where(
                    HelpfulMark.user_id == user.id, HelpfulMark.thread_id == thread.id
                )
            )
            is not None
        )
        watching = is_watching(db, user.id, thread.id)
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
        comments=comments_by_post(db, [post.id for post in posts]),
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
    statement = statement.options(selectinload(Thread.author), selectinload(Thread.tags))
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
