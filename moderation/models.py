"""Moderation tables: flags, the review queue, warnings and trust. The audit log is in
community.core.audit (every layer writes to it)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from community.core.clock import utcnow
from community.core.db import Base, BigIntId, JSONDocument, UTCDateTime, str_enum
from community.core.models import Post, User


class FlagReason(enum.StrEnum):
    SPAM = "spam"
    OFFENSIVE = "offensive"
    OFF_TOPIC = "off_topic"
    DUPLICATE = "duplicate"
    NEEDS_AGENT = "needs_agent"
    OTHER = "other"


class FlagStatus(enum.StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    REJECTED = "rejected"


class Queue(enum.StrEnum):
    PENDING = "pending"  # held before anyone saw it: new accounts, filter hits
    FLAGGED = "flagged"  # reported by members
    USERS = "users"  # accounts reported or caught by burst rules


class ItemStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class FilterMode(enum.StrEnum):
    ENFORCE = "enforce"  # hold matching posts for review
    LOG_ONLY = "log_only"  # only record what it would have caught


class Flag(Base):
    __tablename__ = "flags"
    __table_args__ = (
        # One open flag per person and post (closed ones stay as history).
        Index(
            "uq_flags_open_per_flagger",
            "flagger_id",
            "post_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    flagger_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[FlagReason] = mapped_column(str_enum(FlagReason))
    note: Mapped[str | None] = mapped_column(String(500))
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("threads.id", ondelete="SET NULL")
    )
    weight: Mapped[float] = mapped_column(Float)
    status: Mapped[FlagStatus] = mapped_column(str_enum(FlagStatus), default=FlagStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    flagger: Mapped[User] = relationship(foreign_keys=[flagger_id])


class QueueItem(Base):
    """One item per target and queue however many flags or filter hits it collected."""

    __tablename__ = "moderation_items"
    __table_args__ = (
        Index(
            "uq_moderation_items_open_target",
            "queue",
            "post_id",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_moderation_items_open", "brand_id", "queue", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    queue: Mapped[Queue] = mapped_column(str_enum(Queue))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    # The account concerned: the post's author, or the reported user.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[ItemStatus] = mapped_column(str_enum(ItemStatus), default=ItemStatus.OPEN)
    reasons: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    flag_weight: Mapped[float] = mapped_column(Float, default=0.0)
    auto_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolution: Mapped[str | None] = mapped_column(String(40))

    post: Mapped[Post | None] = relationship()
    user: Mapped[User | None] = relationship(foreign_keys=[user_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])


class BlockedPattern(Base):
    __tablename__ = "blocked_patterns"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    pattern: Mapped[str] = mapped_column(String(200))
    is_regex: Mapped[bool] = mapped_column(Boolean, default=False)
    mode: Mapped[FilterMode] = mapped_column(str_enum(FilterMode), default=FilterMode.ENFORCE)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FilterHit(Base):
    """What a filter matched, enforced or not (log-only filters report from here)."""

    __tablename__ = "filter_hits"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    pattern_id: Mapped[int] = mapped_column(
        ForeignKey("blocked_patterns.id", ondelete="CASCADE"), index=True
    )
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    excerpt: Mapped[str] = mapped_column(String(300))
    enforced: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccountWarning(Base):
    __tablename__ = "user_warnings"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    moderator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
