"""New threads that report a known issue are linked to it (KnownIssueThread, linked_by None), so
that their authors hear when it is fixed.

When a question or problem becomes visible (events.post_published for its first post: at
creation, or when a moderator approves a held one) an outbox job carrying the thread's id is
recorded; the worker matches the thread's title (and, for match terms, the start of its
question) against the brand's open issues whose scope covers the thread
(crowdservice.known_issues.matching) and links the matches. A held thread is linked when it
is approved, never while hidden. An issue already fixed but still open links new threads too
(nobody is notified at once: the fix notice has gone out). Linking again changes nothing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from community.core import outbox
from community.core.db import insert_missing
from community.core.jobs import Worker
from community.core.models import Forum, Post, Thread, ThreadKind, Visibility
from crowdservice.known_issues.matching import applies_to, match_issues
from crowdservice.known_issues.models import KnownIssue, KnownIssueThread
from crowdservice.known_issues.service import open_issues
from kb.documents import plain_text

LINK_THREAD = "known_issues.link_thread"
# What customers report a problem as; ideas, praise and discussions are not reports.
LINKED_KINDS = frozenset({ThreadKind.QUESTION, ThreadKind.PROBLEM})
# The start of the question is searched for match terms ("error 502" is often in the body).
QUESTION_CHARS = 1000


def on_published(db: Session, post: Post) -> None:
    """A post became visible: a question or problem's first post asks for the link check, when
    its brand has an open known issue (most of the time none is open: one indexed query, no
    job). An issue published later is not matched against threads asked before it."""
    if not post.is_question:
        return
    thread = post.thread
    if thread.kind not in LINKED_KINDS or not has_open_issue(db, thread.forum_id):
        return
    outbox.enqueue(
        db,
        LINK_THREAD,
        {"thread_id": post.thread_id},
        dedupe_key=f"thread:{post.thread_id}",
    )


def has_open_issue(db: Session, forum_id: int) -> bool:
    """Whether the forum's brand has a known issue not closed (one indexed query)."""
    found = db.scalar(
        select(KnownIssue.id)
        .join(Forum, Forum.brand_id == KnownIssue.brand_id)
        .where(Forum.id == forum_id, KnownIssue.closed_at.is_(None))
        .limit(1)
    )
    return found is not None


def _linkable(db: Session, thread_id: int) -> Thread | None:
    """The thread with its forum and tags, if it is a visible question or problem."""
    thread = db.scalars(
        select(Thread)
        .where(Thread.id == thread_id)
        .options(selectinload(Thread.tags), selectinload(Thread.forum))
    ).first()
    if thread is None or thread.visibility != Visibility.VISIBLE:
        return None
    return thread if thread.kind in LINKED_KINDS else None


def _question_text(db: Session, thread: Thread) -> str:
    question = db.scalars(
        select(Post).where(Post.thread_id == thread.id, Post.is_question.is_(True)).limit(1)
    ).first()
    return plain_text(question.body_html, QUESTION_CHARS) if question is not None else ""


def link_thread(db: Session, thread_id: int, *, default_model: str) -> list[int]:
    """Link the thread to the open issues it reports; returns the ids newly linked."""
    thread = _linkable(db, thread_id)
    if thread is None:
        return []
    brand = thread.forum.brand
    tag_names = [tag.name for tag in thread.tags]
    issues = [
        issue
        for issue in open_issues(db, brand.id)
        if applies_to(issue, thread.forum_id, tag_names)
    ]
    matched = match_issues(
        issues,
        thread.title,
        brand=brand,
        default_model=default_model,
        body=_question_text(db, thread) if issues else "",
    )
    known = set(
        db.scalars(
            select(KnownIssueThread.known_issue_id).where(KnownIssueThread.thread_id == thread.id)
        )
    )
    wanted = [match.issue.id for match in matched if match.issue.id not in known]
    # Insert-or-skip: an agent linking the same pair meanwhile wins and keeps their name on it.
    insert_missing(
        db,
        KnownIssueThread,
        [{"known_issue_id": issue_id, "thread_id": thread.id} for issue_id in wanted],
    )
    return wanted


def register(worker: Worker) -> None:
    default_model = worker.settings.search_model

    def handle(db: Session, event: outbox.OutboxEvent) -> None:
        link_thread(db, int(event.payload["thread_id"]), default_model=default_model)

    worker.register(LINK_THREAD, handle)
