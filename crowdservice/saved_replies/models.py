"""A brand's saved replies (reply templates)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from community.core.clock import utcnow
from community.core.db import Base, BigIntId, UTCDateTime, str_enum


class SuggestedAction(enum.StrEnum):
    """What the agent workspace does with the reply when the agent sends it."""

    ANSWER = "answer"  # an official answer
    ASK_DETAILS = "ask_details"  # ask the author for details: the resolution clock pauses
    RESOLVE = "resolve"  # answer, then resolve the escalation


class SavedReply(Base):
    __tablename__ = "saved_replies"
    __table_args__ = (UniqueConstraint("brand_id", "locale", "title"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    # The language the reply is written in ("en", "es"): the workspace offers the thread's first.
    locale: Mapped[str] = mapped_column(String(8))
    # Markdown with placeholders such as {author_name}, {thread_title}, {kb_link}.
    body: Mapped[str] = mapped_column(Text)
    action: Mapped[SuggestedAction] = mapped_column(
        str_enum(SuggestedAction), default=SuggestedAction.ANSWER
    )
    # The article {kb_link} points at; without one, the KB entry most similar to the thread.
    kb_article_id: Mapped[int | None] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="SET NULL")
    )
    usage_count: Mapped[int] = mapped_column(Integer, default=0)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
