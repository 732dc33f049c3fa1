"""Storing the content parts of a source: users, tags, questions, answers, comments and vote
totals, a batch at a time.

Every step skips the records that already have an import key (so a run resumes) and those
whose parent did not come in, counting each reason in the part's report. Rows come in visible,
as they were public at the source, with no notifications, outbox events or screening; the
counters they affect are recounted once at the end (`counters.py`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from community.core.identity import USERNAME_MAX
from community.core.language import detect_post_language
from community.core.markdown import HTML_VERSION, render_markdown, sanitize_html
from community.core.models import (
    Post,
    PostComment,
    Tag,
    Thread,
    ThreadStatus,
    User,
    Visibility,
    thread_tags,
)
from community.importing.bulk import POSTS, THREADS, insert_ids
from community.importing.keys import RunKeys
from community.importing.records import (
    AnswerRecord,
    CommentRecord,
    QuestionRecord,
    UserRecord,
    VoteTotals,
)
from community.importing.report import PartReport
from community.threads import TAGS_MAX

_TAG = re.compile(r"^[^\W_][\w+#.-]{0,29}$")
# Trust levels for imported members, from the reputation their community gave them.
TRUST_BY_REPUTATION = ((1000, 2), (100, 1))


def clean_tag(raw: str) -> str | None:
    name = unicodedata.normalize("NFKC", raw).strip().lower().replace(" ", "-")
    return name if _TAG.match(name) else None


def trust_for(reputation: int) -> int:
    return next((level for floor, level in TRUST_BY_REPUTATION if reputation >= floor), 0)


def _username_base(display_name: str) -> str:
    ascii_name = (
        unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode("ascii")
    )
    base = re.sub(r"[^A-Za-z0-9]+", "", ascii_name)[:18]
    return base if len(base) >= 2 else "member"


def _free_username(db: Session, wanted: str, taken: set[str]) -> str:
    """`wanted`, or `wanted-2`, `wanted-3`, ... whichever no account has (another dump of the
    same network has the same names and ids: every site has "Community", id -1). `taken`
    already holds the accounts with the first-choice names of the batch."""
    if wanted.lower() not in taken:
        return wanted
    suffix = 2
    while True:
        candidate = f"{wanted[: USERNAME_MAX - 4]}-{suffix}"
        in_use = candidate.lower() in taken or db.scalar(
            select(User.id).where(User.username_key == candidate.lower())
        )
        if not in_use:
            return candidate
        suffix += 1


def _user_row(record: UserRecord, username: str) -> dict[str, Any]:
    return {
        "username": username,
        "username_key": username.lower(),
        "display_name": record.display_name,
        # No e-mail and no password: the account cannot sign in until it is claimed.
        "email": None,
        "email_key": None,
        "password_hash": None,
        "reputation": record.reputation,
        "trust_level": trust_for(record.reputation),
        "locale": record.locale,
        "created_at": record.created_at,
    }


def _post_row(
    thread_id: int,
    author_id: int | None,
    record: QuestionRecord | AnswerRecord,
    *,
    is_question: bool,
) -> dict[str, Any]:
    body = record.body_markdown
    if record.body_html is not None:
        html = sanitize_html(record.body_html)
    else:
        html = render_markdown(body) if body else ""
    return {
        "thread_id": thread_id,
        "author_id": author_id,
        "is_question": is_question,
        "body_source": body,
        "body_html": html,
        "html_version": HTML_VERSION,
        "score": record.score,
        "upvotes": 0,
        "downvotes": 0,
        "helpful_count": 0,
        "visibility": Visibility.VISIBLE,
        "is_official": False,
        "edit_count": 0,
        "hidden_by_suspension": False,
        "created_at": record.created_at,
        "updated_at": record.created_at,
    }


def _thread_row(
    forum_id: int, record: QuestionRecord, author_id: int | None, question: dict[str, Any]
) -> dict[str, Any]:
    # A source's locale is one guess for all its questions (a dump has none): each
    # question's own text says which language to index it in, when it says so clearly.
    locale = detect_post_language(record.title, question["body_html"], fallback=record.locale)
    return {
        "forum_id": forum_id,
        "author_id": author_id,
        "title": record.title,
        "kind": record.kind,
        "status": ThreadStatus.OPEN,
        "visibility": Visibility.VISIBLE,
        "locale": locale,
        "view_count": record.view_count,
        "score": record.score,
        "reply_count": 0,
        "helpful_count": 0,
        "usefulness": 0.0,
        "last_activity_at": max(record.last_activity_at, record.created_at),
        "created_at": record.created_at,
        "updated_at": record.created_at,
        "source_url": record.source_url,
    }


def _tags_of(records: list[QuestionRecord], report: PartReport) -> list[list[str]]:
    """Each question's tags as we name them, without the ones we cannot keep."""
    tag_names: list[list[str]] = []
    dropped_tags = 0
    for record in records:
        names: list[str] = []
        for raw in record.tags:
            name = clean_tag(raw)
            if name is None or len(names) >= TAGS_MAX:
                dropped_tags += 1
            elif name not in names:
                names.append(name)
        tag_names.append(names)
    report.note("tags left off (not allowed here, or over the limit)", dropped_tags)
    return tag_names


@dataclass
class ContentWriter:
    """Stores content parts into one forum; `tag_ids` are the brand's tags by name, and grow
    as the parts bring new ones."""

    keys: RunKeys
    forum_id: int
    brand_id: int
    tag_ids: dict[str, int]

    def users(self, db: Session, batch: list[UserRecord], report: PartReport) -> None:
        known = self.keys.known(db, "user", (record.external_id for record in batch))
        fresh = [record for record in batch if record.external_id not in known]
        report.skip("already imported", len(batch) - len(fresh))
        if not fresh:
            return
        wanted = [f"{_username_base(r.display_name)}-{abs(r.external_id)}" for r in fresh]
        taken = set(
            db.scalars(
                select(User.username_key).where(
                    User.username_key.in_([name.lower() for name in wanted])
                )
            )
        )
        rows = []
        for record, first_choice in zip(fresh, wanted, strict=True):
            username = _free_username(db, first_choice, taken)
            taken.add(username.lower())
            rows.append(_user_row(record, username))
        ids = insert_ids(db, User, rows)
        pairs = [(r.external_id, i) for r, i in zip(fresh, ids, strict=True)]
        self.keys.keep(db, "user", pairs, None)
        report.imported += len(ids)

    def tags(self, db: Session, batch: list[str], report: PartReport) -> None:
        names: list[str] = []
        for raw in batch:
            name = clean_tag(raw)
            if name is None:
                report.skip("tag name not allowed here")
            elif name in self.tag_ids or name in names:
                report.skip("already present")
            else:
                names.append(name)
        self._create_tags(db, names)
        report.imported += len(names)

    def _create_tags(self, db: Session, names: list[str]) -> None:
        if not names:
            return
        rows = [{"brand_id": self.brand_id, "name": name, "thread_count": 0} for name in names]
        for name, tag_id in zip(names, insert_ids(db, Tag, rows), strict=True):
            self.tag_ids[name] = tag_id

    def questions(self, db: Session, batch: list[QuestionRecord], report: PartReport) -> None:
        known = self.keys.known(db, "question", (record.external_id for record in batch))
        fresh = [record for record in batch if record.external_id not in known]
        report.skip("already imported", len(batch) - len(fresh))
        if not fresh:
            return
        authors = self.keys.authors(db, fresh)
        tag_names = _tags_of(fresh, report)
        self._create_tags(db, sorted({n for names in tag_names for n in names} - set(self.tag_ids)))
        authors_of = [authors.get(r.author_external_id or 0) for r in fresh]
        questions = [
            _post_row(0, author_id, r, is_question=True)
            for r, author_id in zip(fresh, authors_of, strict=True)
        ]
        thread_rows = [
            _thread_row(self.forum_id, r, author_id, question)
            for r, author_id, question in zip(fresh, authors_of, questions, strict=True)
        ]
        thread_ids = insert_ids(db, Thread, thread_rows)
        for row, thread_id in zip(questions, thread_ids, strict=True):
            row["thread_id"] = thread_id
        db.execute(insert(Post), questions)
        self._link_tags(db, tag_names, thread_ids)
        self.keys.keep(
            db,
            "question",
            [(r.external_id, i) for r, i in zip(fresh, thread_ids, strict=True)],
            [r.accepted_answer_external_id for r in fresh],
        )
        report.imported += len(thread_ids)

    def _link_tags(self, db: Session, tag_names: list[list[str]], thread_ids: list[int]) -> None:
        links = [
            {"thread_id": thread_id, "tag_id": self.tag_ids[name]}
            for names, thread_id in zip(tag_names, thread_ids, strict=True)
            for name in names
        ]
        if links:
            db.execute(insert(thread_tags), links)

    def answers(self, db: Session, batch: list[AnswerRecord], report: PartReport) -> None:
        known = self.keys.known(db, "answer", (record.external_id for record in batch))
        threads = self.keys.known(db, "question", (r.question_external_id for r in batch))
        fresh: list[AnswerRecord] = []
        for record in batch:
            if record.external_id in known:
                report.skip("already imported")
            elif record.question_external_id not in threads:
                report.skip("question not imported")
            else:
                fresh.append(record)
        if not fresh:
            return
        authors = self.keys.authors(db, fresh)
        post_ids = insert_ids(
            db,
            Post,
            [
                _post_row(
                    threads[r.question_external_id],
                    authors.get(r.author_external_id or 0),
                    r,
                    is_question=False,
                )
                for r in fresh
            ],
        )
        self.keys.keep(
            db,
            "answer",
            [(r.external_id, i) for r, i in zip(fresh, post_ids, strict=True)],
            [r.question_external_id for r in fresh],
        )
        _move_activity(db, fresh, threads)
        report.imported += len(post_ids)

    def comments(self, db: Session, batch: list[CommentRecord], report: PartReport) -> None:
        known = self.keys.known(db, "comment", (record.external_id for record in batch))
        posts = self.keys.posts_of(db, (record.post_external_id for record in batch))
        fresh: list[CommentRecord] = []
        for record in batch:
            if record.external_id in known:
                report.skip("already imported")
            elif record.post_external_id not in posts:
                report.skip("post not imported")
            elif not record.text:
                report.skip("empty comment")
            else:
                fresh.append(record)
        if not fresh:
            return
        authors = self.keys.authors(db, fresh)
        ids = insert_ids(
            db,
            PostComment,
            [
                {
                    "post_id": posts[r.post_external_id][0],
                    "author_id": authors.get(r.author_external_id or 0),
                    "author_name": r.author_name,
                    "body_html": render_markdown(r.text),
                    "score": r.score,
                    "created_at": r.created_at,
                }
                for r in fresh
            ],
        )
        pairs = [(r.external_id, i) for r, i in zip(fresh, ids, strict=True)]
        self.keys.keep(db, "comment", pairs, None)
        report.imported += len(ids)

    def votes(self, db: Session, batch: list[VoteTotals], report: PartReport) -> None:
        posts = self.keys.posts_of(db, (record.post_external_id for record in batch))
        rows = []
        for record in batch:
            found = posts.get(record.post_external_id)
            if found is None:
                report.skip("post not imported (or deleted at the source)", record.up + record.down)
            elif not found[1]:
                report.skip("post imported by an earlier run (kept)", record.up + record.down)
            else:
                rows.append({"post": found[0], "up": record.up, "down": record.down})
                report.imported += record.up + record.down
        if rows:
            db.execute(
                update(POSTS)
                .where(POSTS.c.id == bindparam("post"))
                .values(upvotes=bindparam("up"), downvotes=bindparam("down")),
                rows,
            )


def _move_activity(db: Session, answers: list[AnswerRecord], threads: dict[int, int]) -> None:
    """A newer dump can bring answers to threads imported before: their activity moves on."""
    latest: dict[int, datetime] = {}
    for record in answers:
        thread_id = threads[record.question_external_id]
        latest[thread_id] = max(latest.get(thread_id, record.created_at), record.created_at)
    db.execute(
        update(THREADS)
        .where(
            THREADS.c.id == bindparam("thread"),
            THREADS.c.last_activity_at < bindparam("at"),
        )
        .values(last_activity_at=bindparam("at")),
        [{"thread": thread_id, "at": at} for thread_id, at in latest.items()],
    )
