"""Rows for the insights tests, inserted directly with the times a test chooses (the panels
read what the services would have stored; the services themselves are tested elsewhere)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from community.core.models import Brand, Forum, Post, Thread, User


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A moment of 2026 (November unless said), in UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def ask(
    db: Session,
    forum: Forum,
    author: User | None,
    created: datetime,
    *,
    title: str | None = None,
    **fields: object,
) -> tuple[Thread, Post]:
    """A thread and its question post."""
    author_id = author.id if author else None
    made = Thread(
        forum_id=forum.id, author_id=author_id, title=title or f"Question {created}",
        created_at=created, last_activity_at=created, updated_at=created, **fields,
    )  # fmt: skip
    db.add(made)
    db.flush()
    post = Post(thread_id=made.id, author_id=author_id, is_question=True, body_source="?",
                body_html="<p>?</p>", created_at=created)  # fmt: skip
    db.add(post)
    db.flush()
    return made, post


def question(
    db: Session, forum: Forum, author: User | None, created: datetime, **fields: object
) -> Thread:
    return ask(db, forum, author, created, **fields)[0]


def answer(db: Session, on: Thread, author: User, created: datetime, **fields: object) -> Post:
    made = Post(thread_id=on.id, author_id=author.id, body_source="!", body_html="<p>!</p>",
                created_at=created, **fields)  # fmt: skip
    db.add(made)
    db.flush()
    return made


def other_brand_forum(db: Session) -> Forum:
    """Another brand (Globex) with a forum, whose rows no Acme figure may count."""
    brand = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(brand)
    db.flush()
    made = Forum(brand_id=brand.id, slug="help", name="Help", description="")
    db.add(made)
    db.commit()
    return made
