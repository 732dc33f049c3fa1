"""Knowledge-base tables: community solutions (promoted solved threads), agent-curated articles
with versions, credits and reader feedback, the promote-to-article queue, search analytics."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from community.core.clock import utcnow
from community.core.db import Base, BigIntId, JSONDocument, UTCDateTime, str_enum
from community.core.models import Brand, Forum, Thread, User


class ArticleStatus(enum.StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class CandidateStatus(enum.StrEnum):
    SUGGESTED = "suggested"
    PROMOTED = "promoted"
    DISMISSED = "dismissed"


class Solution(Base):
    """A solved thread the crowd proved useful, shown in the KB as a community solution."""

    __tablename__ = "kb_solutions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    thread_id: Mapped[int] = mapped_column(
        ForeignKey("threads.id", ondelete="CASCADE"), unique=True
    )
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    score_at_promotion: Mapped[float] = mapped_column(Float)
    promoted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Unset while the thread still qualifies; set when it stopped (hidden, unaccepted...).
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    thread: Mapped[Thread] = relationship()


class Article(Base):
    __tablename__ = "kb_articles"
    __table_args__ = (Index("ix_kb_articles_brand_status", "brand_id", "status"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    forum_id: Mapped[int | None] = mapped_column(ForeignKey("forums.id", ondelete="SET NULL"))
    source_thread_id: Mapped[int | None] = mapped_column(
        ForeignKey("threads.id", ondelete="SET NULL"), index=True
    )
    # How many answers the source thread had when promoted: more later means "needs review".
    source_reply_count: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500), default="")
    body_source: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    tags: Mapped[str] = mapped_column(String(200), default="")
    locale: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[ArticleStatus] = mapped_column(
        str_enum(ArticleStatus), default=ArticleStatus.DRAFT
    )
    obsolete: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    helpful_yes: Mapped[int] = mapped_column(Integer, default=0)
    helpful_no: Mapped[int] = mapped_column(Integer, default=0)
    view_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    brand: Mapped[Brand] = relationship()
    forum: Mapped[Forum | None] = relationship()
    owner: Mapped[User | None] = relationship()
    source_thread: Mapped[Thread | None] = relationship()
    credits: Mapped[list[ArticleCredit]] = relationship(
        cascade="all, delete-orphan", order_by="ArticleCredit.id"
    )

    @property
    def is_live(self) -> bool:
        return self.status == ArticleStatus.PUBLISHED and not self.obsolete

    @property
    def tag_list(self) -> list[str]:
        return [tag for tag in self.tags.split() if tag]


class ArticleVersion(Base):
    __tablename__ = "kb_article_versions"
    __table_args__ = (UniqueConstraint("article_id", "number"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500), default="")
    body_source: Mapped[str] = mapped_column(Text)
    tags: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[ArticleStatus] = mapped_column(str_enum(ArticleStatus))
    note: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    editor: Mapped[User | None] = relationship()


class ArticleCredit(Base):
    """Whose community answer an article was built from (shown on the article)."""

    __tablename__ = "kb_article_credits"
    __table_args__ = (UniqueConstraint("article_id", "post_id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))

    user: Mapped[User | None] = relationship()


class ArticleFeedback(Base):
    """ "Was this helpful?": one answer per person (or anonymous visitor) per article per day."""

    __tablename__ = "kb_feedback"
    __table_args__ = (UniqueConstraint("article_id", "visitor_key", "day"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    visitor_key: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date)
    helpful: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ArticleView(Base):
    """Who viewed an article on which day (a keyed hash, see community.core.viewcount), so a view
    counts once per viewer per article per day. Pruned after two days."""

    __tablename__ = "kb_article_views"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="CASCADE"), primary_key=True
    )
    viewer_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)


class PromotionCandidate(Base):
    """A community solution strong enough to become a curated article (the agents' queue)."""

    __tablename__ = "kb_promotion_candidates"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    thread_id: Mapped[int] = mapped_column(
        ForeignKey("threads.id", ondelete="CASCADE"), unique=True
    )
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    status: Mapped[CandidateStatus] = mapped_column(
        str_enum(CandidateStatus), default=CandidateStatus.SUGGESTED
    )
    article_id: Mapped[int | None] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    thread: Mapped[Thread] = relationship()


class SearchQuery(Base):
    """Every search people ran, with how many results it had (zero means a content gap)."""

    __tablename__ = "kb_search_queries"
    __table_args__ = (Index("ix_kb_search_queries_brand_time", "brand_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    query: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(20))
    locale: Mapped[str] = mapped_column(String(8))
    result_count: Mapped[int] = mapped_column(Integer)
    degraded: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeflectionEvent(Base):
    """Someone writing a question opened a suggested answer. If they then post no question
    within the window, the KB deflected it (counted by analytics, not stored as a verdict)."""

    __tablename__ = "kb_deflection_events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    visitor_key: Mapped[str] = mapped_column(String(32))
    query: Mapped[str] = mapped_column(String(200))
    entry_type: Mapped[str] = mapped_column(String(20))
    entry_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AskArm(enum.StrEnum):
    """Which group of the deflection experiment an ask-form session is in."""

    SUGGESTIONS = "suggestions"
    HOLDOUT = "holdout"  # shown no suggestions


class AskSession(Base):
    """One visitor writing a question on one brand's ask form: a session lasts while the title
    is being typed, ending 30 minutes after the last suggestion request or when the visitor
    posts a question (kb.ask_sessions). The group it was assigned to and its outcome are kept,
    so the deflection figure can be recomputed from these rows alone."""

    __tablename__ = "kb_ask_sessions"
    __table_args__ = (
        # The visitor's n-th session in the brand: two requests at once cannot open two.
        UniqueConstraint("brand_id", "visitor_key", "number"),
        Index("ix_kb_ask_sessions_brand_started", "brand_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    # community.core.viewcount.viewer_key: a hash, never an address.
    visitor_key: Mapped[str] = mapped_column(String(32))
    number: Mapped[int] = mapped_column(Integer)
    arm: Mapped[AskArm] = mapped_column(str_enum(AskArm))
    # The brand's holdout share when the session was assigned.
    holdout_percent: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The outcome: the question posted in the session. The time stays if the thread is deleted.
    thread_id: Mapped[int | None] = mapped_column(ForeignKey("threads.id", ondelete="SET NULL"))
    ended_with_thread_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class SearchVector(Base):
    """A document's sentence embedding for one model, kept so that re-indexing a thread (a vote,
    an edit of another post) re-sends its vector instead of computing it again, and so that a
    new model or a lost index catches up from here. `subject` is "thread:<id>" (the thread and
    its KB solution share it) or "article:<id>"; `text_hash` says which text it was made from."""

    __tablename__ = "search_vectors"
    __table_args__ = (UniqueConstraint("subject", "model"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(40))
    # The model's key in the brand's indexes (kb.vectors.ModelSpec.key).
    model: Mapped[str] = mapped_column(String(60))
    text_hash: Mapped[str] = mapped_column(String(64))
    # float32, little-endian, unit length.
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
