"""Core tables: brands, forums, users and their sessions, threads and posts.

Columns follow ../shared/DESIGN.md section 4 so later features extend these tables rather than
rewrite them. Enumerations are stored as short strings (validated by SQLAlchemy) so adding a value
never needs a table rebuild on SQLite.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from community.clock import utcnow
from community.db import Base, BigIntId, UTCDateTime

JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def str_enum(enum_class: type[enum.StrEnum]) -> Enum:
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        validate_strings=True,
        length=20,
        values_callable=lambda members: [member.value for member in members],
    )


class Role(enum.StrEnum):
    MEMBER = "member"
    MODERATOR = "moderator"
    AGENT = "agent"
    ADMIN = "admin"


class ThreadKind(enum.StrEnum):
    QUESTION = "question"
    PROBLEM = "problem"
    COMPLAINT = "complaint"
    IDEA = "idea"
    PRAISE = "praise"
    DISCUSSION = "discussion"


class ThreadStatus(enum.StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    SOLVED = "solved"
    ESCALATED = "escalated"
    CLOSED = "closed"
    LOCKED = "locked"


class Visibility(enum.StrEnum):
    VISIBLE = "visible"
    PENDING = "pending"
    HIDDEN = "hidden"
    DELETED = "deleted"


class ModerationPolicy(enum.StrEnum):
    OPEN = "open"
    PREMODERATED = "premoderated"


class Brand(Base):
    __tablename__ = "brands"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    theme: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    default_locale: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    forums: Mapped[list[Forum]] = relationship(
        back_populates="brand", order_by="Forum.position", cascade="all, delete-orphan"
    )


class Forum(Base):
    __tablename__ = "forums"
    __table_args__ = (UniqueConstraint("brand_id", "slug"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    moderation_policy: Mapped[ModerationPolicy] = mapped_column(
        str_enum(ModerationPolicy), default=ModerationPolicy.OPEN
    )
    # Denormalised counters, kept by the services that add or hide content.
    thread_count: Mapped[int] = mapped_column(Integer, default=0)
    post_count: Mapped[int] = mapped_column(Integer, default=0)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    brand: Mapped[Brand] = relationship(back_populates="forums")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    # As typed (PRECIS case-preserved) for display; the key (case-mapped) is what must be unique.
    username: Mapped[str] = mapped_column(String(30))
    username_key: Mapped[str] = mapped_column(String(30), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    email_key: Mapped[str | None] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(60))
    # None means "no usable password" (imported accounts until they reset it).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(str_enum(Role), default=Role.MEMBER)
    trust_level: Mapped[int] = mapped_column(SmallInteger, default=0)
    reputation: Mapped[int] = mapped_column(Integer, default=0)
    segment: Mapped[str | None] = mapped_column(String(20))
    locale: Mapped[str | None] = mapped_column(String(8))
    suspended_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.MODERATOR, Role.AGENT, Role.ADMIN)


class UserSession(Base):
    """A server-side login session. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))

    user: Mapped[User] = relationship()


class Thread(Base):
    __tablename__ = "threads"
    __table_args__ = (
        Index("ix_threads_forum_listing", "forum_id", "visibility", "last_activity_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    forum_id: Mapped[int] = mapped_column(ForeignKey("forums.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ThreadKind] = mapped_column(str_enum(ThreadKind), default=ThreadKind.QUESTION)
    status: Mapped[ThreadStatus] = mapped_column(str_enum(ThreadStatus), default=ThreadStatus.OPEN)
    visibility: Mapped[Visibility] = mapped_column(str_enum(Visibility), default=Visibility.VISIBLE)
    locale: Mapped[str] = mapped_column(String(8), default="en")
    accepted_post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="SET NULL", use_alter=True)
    )
    view_count: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[int] = mapped_column(Integer, default=0)
    reply_count: Mapped[int] = mapped_column(Integer, default=0)
    helpful_count: Mapped[int] = mapped_column(Integer, default=0)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Triage (crowd-service fills these; members never see them).
    interaction_type: Mapped[str | None] = mapped_column(String(30))
    sentiment: Mapped[str | None] = mapped_column(String(10))
    sentiment_score: Mapped[float | None] = mapped_column()
    priority: Mapped[str | None] = mapped_column(String(2))
    author_segment: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    forum: Mapped[Forum] = relationship()
    author: Mapped[User | None] = relationship()
    posts: Mapped[list[Post]] = relationship(
        back_populates="thread",
        foreign_keys="Post.thread_id",
        order_by="Post.id",
        cascade="all, delete-orphan",
    )


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_thread_listing", "thread_id", "visibility", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # The question is the thread's first post; answers follow.
    is_question: Mapped[bool] = mapped_column(Boolean, default=False)
    body_source: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    # Which sanitizer policy produced body_html, so a policy change can re-render old posts.
    html_version: Mapped[int] = mapped_column(SmallInteger, default=1)
    score: Mapped[int] = mapped_column(Integer, default=0)
    upvotes: Mapped[int] = mapped_column(Integer, default=0)
    downvotes: Mapped[int] = mapped_column(Integer, default=0)
    helpful_count: Mapped[int] = mapped_column(Integer, default=0)
    visibility: Mapped[Visibility] = mapped_column(str_enum(Visibility), default=Visibility.VISIBLE)
    is_official: Mapped[bool] = mapped_column(Boolean, default=False)
    edit_count: Mapped[int] = mapped_column(Integer, default=0)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    thread: Mapped[Thread] = relationship(back_populates="posts", foreign_keys=[thread_id])
    author: Mapped[User | None] = relationship()
