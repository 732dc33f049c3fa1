"""Known issues, their updates, the threads linked to them, the members following them, and
which ask-form sessions they were matched in (their deflection is measured from those)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from community.core.clock import utcnow
from community.core.db import Base, BigIntId, JSONDocument, UTCDateTime, str_enum
from community.core.models import Thread, User


class KnownIssueStatus(enum.StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    FIXED = "fixed"


class KnownIssue(Base):
    __tablename__ = "known_issues"
    __table_args__ = (Index("ix_known_issues_brand_open", "brand_id", "closed_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(160))
    # Markdown, and its sanitized HTML: what customers should know (or do) meanwhile.
    summary: Mapped[str] = mapped_column(Text, default="")
    summary_html: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[KnownIssueStatus] = mapped_column(
        str_enum(KnownIssueStatus), default=KnownIssueStatus.INVESTIGATING
    )
    # Words and phrases customers use for the problem ("502", "can't sign in"): a typed title
    # or a new thread containing one matches (besides meaning, when the brand has a model).
    match_terms: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    # Where it applies: forum ids and tag names; both empty means the whole brand.
    forum_ids: Mapped[list[int]] = mapped_column(JSONDocument, default=list)
    tags: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fixed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Closed: no longer announced (the banner goes); its summary may become a KB article.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    article_id: Mapped[int | None] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="SET NULL")
    )

    updates: Mapped[list[KnownIssueUpdate]] = relationship(
        back_populates="known_issue",
        order_by="KnownIssueUpdate.id",
        cascade="all, delete-orphan",
    )

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class KnownIssueUpdate(Base):
    """A dated update: the status it set and what changed."""

    __tablename__ = "known_issue_updates"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    known_issue_id: Mapped[int] = mapped_column(
        ForeignKey("known_issues.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[KnownIssueStatus] = mapped_column(str_enum(KnownIssueStatus))
    body: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    known_issue: Mapped[KnownIssue] = relationship(back_populates="updates")
    author: Mapped[User | None] = relationship()


class KnownIssueThread(Base):
    """A thread that reports the known issue: linked by the worker when it matched on
    publishing, or by an agent. Its author is told once when the issue is fixed."""

    __tablename__ = "known_issue_threads"

    known_issue_id: Mapped[int] = mapped_column(
        ForeignKey("known_issues.id", ondelete="CASCADE"), primary_key=True
    )
    thread_id: Mapped[int] = mapped_column(
        ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # None: linked automatically when the thread was published.
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    thread: Mapped[Thread] = relationship()


class KnownIssueFollower(Base):
    """A member who asked to be told when the issue is fixed (instead of asking)."""

    __tablename__ = "known_issue_followers"

    known_issue_id: Mapped[int] = mapped_column(
        ForeignKey("known_issues.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class KnownIssueImpression(Base):
    """An ask-form session (kb_ask_sessions) whose typed title matched the known issue, and
    whether the issue was shown (held-out sessions are matched but shown nothing): the
    announcement's deflection is these sessions' outcomes, the measure used for suggestions."""

    __tablename__ = "known_issue_impressions"

    known_issue_id: Mapped[int] = mapped_column(
        ForeignKey("known_issues.id", ondelete="CASCADE"), primary_key=True
    )
    ask_session_id: Mapped[int] = mapped_column(
        ForeignKey("kb_ask_sessions.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    shown: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
