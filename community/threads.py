"""Asking and answering, watching, the input rules every post follows, and loading a thread or
post the viewer may see. Editing and deleting are in `thread_editing`; the forum listing and a
thread's page in `thread_reading`. Counters (forum, thread, tag) move by SQL increments so
concurrent writers add up."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Result, Row, Select, bindparam, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from community import visibility
from community.core import events, indexing, language, uploads
from community.core.activity_models import ThreadWatch
from community.core.clock import utcnow
from community.core.db import insert_missing
from community.core.errors import FormErrors, NotFound, PermissionDenied, ThreadMerged
from community.core.i18n import gettext as _
from community.core.markdown import HTML_VERSION
from community.core.models import (
    Forum,
    Post,
    Tag,
    Thread,
    ThreadKind,
    ThreadStatus,
    User,
    Visibility,
)
from community.core.policy import (
    ensure_brand_shown,
    ensure_can_participate,
    ensure_forum_readable,
    ensure_post_visible,
    ensure_thread_open_for,
    ensure_thread_visible,
    is_agent,
)
from community.core.policy_identity import ensure_address_confirmed_for
from community.core.schemas import AnswerIn, AskIn
from community.mentions import render_with_mentions

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

T = TypeVar("T")


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


def body_fingerprint(text: str) -> str:
    """The same for texts that differ only in case and spacing (the repeat filter's test)."""
    return hashlib.sha256(_SPACES.sub(" ", text.lower()).strip().encode()).hexdigest()


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


def tags_for(db: Session, brand_id: int, names: list[str]) -> list[Tag]:
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
    ensure_forum_readable(author, forum)  # asking in a forum one cannot read: no such forum
    ensure_address_confirmed_for(author, forum)
    checked, errors = check_question(data)
    if forum.archived_at is not None:  # its threads stay readable; new ones go elsewhere
        errors["forum"] = _("This forum is archived and takes no new questions.")
    if errors:
        raise FormErrors(errors)
    title, body, tag_names = checked.title, checked.body, checked.tags
    now = utcnow()
    html, _mentioned = _render(db, body)
    thread = Thread(
        forum_id=forum.id,
        brand_id=forum.brand_id,  # read by permission checks before the row is reloaded
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
    thread.tags = tags_for(db, forum.brand_id, tag_names)
    db.add(thread)
    db.flush()
    question = Post(
        thread_id=thread.id,
        author_id=author.id,
        is_question=True,
        body_source=body,
        body_fingerprint=body_fingerprint(body),
        body_html=html,
        html_version=HTML_VERSION,
        # Not counted anywhere until published (now, or when a moderator approves it).
        visibility=Visibility.PENDING,
        created_at=now,
        updated_at=now,
    )
    set_committed_value(question, "thread", thread)  # its brand is the thread's (Post.brand_id)
    db.add(question)
    db.add(ThreadWatch(user_id=author.id, thread_id=thread.id))
    db.flush()
    uploads.attach_to_post(db, question, [author.id])  # its pictures: seen as it is, held too
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
    ensure_forum_readable(author, thread.forum)
    ensure_address_confirmed_for(author, thread.forum)
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
        body_fingerprint=body_fingerprint(body),
        body_html=html,
        html_version=HTML_VERSION,
        # Answers from the brand's support team carry the "official answer" badge.
        is_official=is_agent(author, thread.brand_id),
        visibility=Visibility.PENDING,
        created_at=now,
        updated_at=now,
    )
    # The thread and the author as if loaded with the post (handlers read them before it is
    # stored), not as relationship changes the flush would have to work through.
    set_committed_value(post, "thread", thread)
    set_committed_value(post, "author", author)
    db.add(post)
    submission = events.Submission(post, author, thread.forum, body)
    # Screened before it is stored (a filter that holds it stores it as pending), so a post that
    # passes is inserted visible: one INSERT, not an INSERT and an UPDATE.
    with db.no_autoflush:
        events.post_submitted.send(db, submission)
    if not submission.held:
        visibility.publish(db, post, author=author)
    uploads.attach_to_post(db, post, [author.id])  # its pictures: seen as it is, held too
    watch(db, author, thread)
    return post


def watch(db: Session, user: User, thread: Thread) -> None:
    """Idempotent, also when the same member answers or watches twice at the same moment: one
    INSERT that leaves an existing watch alone."""
    insert_missing(db, ThreadWatch, [{"user_id": user.id, "thread_id": thread.id}])


def unwatch(db: Session, user: User, thread: Thread) -> None:
    existing = db.get(ThreadWatch, (user.id, thread.id))
    if existing is not None:
        db.delete(existing)


def is_watching(db: Session, user_id: int | None, thread_id: int) -> bool:
    return user_id is not None and db.get(ThreadWatch, (user_id, thread_id)) is not None


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
        ensure_forum_readable(user, target.forum)
    except NotFound:
        return None
    return target


def access_thread(db: Session, user: User | None, thread_id: int) -> Thread:
    """The thread if `user` may see it. A merged thread is only a pointer: ThreadMerged names
    its target (for those who may see that), else it is not found."""
    return access_thread_with(db, user, thread_id)[0]


def thread_to_answer(db: Session, user: User, thread_id: int) -> Thread:
    """access_thread for a new answer: the thread with its forum and brand only (its tags and
    the original of a duplicate are for its page), so the read costs less."""
    return _accessed(db, user, db.execute(_THREAD_TO_ANSWER, {"thread_id": thread_id}))[0]


def _thread_statement(*extra: ColumnElement[Any]) -> Select[Any]:
    """A thread with what its pages and its writes use (parameter thread_id)."""
    return (
        select(Thread, *extra)
        .where(Thread.id == bindparam("thread_id"))
        .options(
            joinedload(Thread.tags),
            joinedload(Thread.forum).joinedload(Forum.brand),
            # The closed note links the original of a duplicate (if its forum may be read).
            joinedload(Thread.duplicate_of).joinedload(Thread.forum),
        )
    )


# Built once: every answer, vote on a thread and thread page loads a thread (building the
# statement and its cache key costs more than running it).
_THREAD = _thread_statement()
_THREAD_TO_ANSWER = (
    select(Thread)
    .where(Thread.id == bindparam("thread_id"))
    .options(joinedload(Thread.forum).joinedload(Forum.brand))
)


def access_thread_with(
    db: Session, user: User | None, thread_id: int, *extra: ColumnElement[Any]
) -> tuple[Thread, Row[Any]]:
    """access_thread, and in the same statement the values of `extra`: columns correlated to
    the thread that a page shows beside it (the KB's banner on the thread page)."""
    # One statement (tags joined too): the thread page's budget is six for everything.
    statement = _thread_statement(*extra) if extra else _THREAD
    return _accessed(db, user, db.execute(statement, {"thread_id": thread_id}).unique())


def _accessed(db: Session, user: User | None, result: Result[Any]) -> tuple[Thread, Row[Any]]:
    row = result.one_or_none()
    if row is None:
        raise NotFound()
    thread: Thread = row[0]
    ensure_brand_shown(thread.forum.brand, user)  # an archived brand's threads are gone
    ensure_forum_readable(user, thread.forum)  # before the merge: not even that it was merged
    if thread.merged_into_id is not None:
        target = merged_into(db, user, thread)
        if target is None:
            raise NotFound()
        raise ThreadMerged(target.id, _("This thread was merged into another one."))
    ensure_thread_visible(user, thread)
    return thread, row


def access_post(db: Session, user: User | None, post_id: int) -> Post:
    post = db.get(Post, post_id)
    if post is None:
        raise NotFound()
    ensure_brand_shown(post.thread.forum.brand, user)
    ensure_forum_readable(user, post.thread.forum)
    ensure_post_visible(user, post)
    return post
