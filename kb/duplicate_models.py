"""Possible duplicates for staff: the worker's suggestions that a new question may duplicate an
earlier thread, and what a moderator decided about each (kb.duplicates, kb.duplicate_review)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from community.core.clock import utcnow
from community.core.db import Base, BigIntId, UTCDateTime, str_enum
from community.core.models import Thread, User


class SuggestionStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED_AS_DUPLICATE = "closed_as_duplicate"
    DISMISSED = "dismissed"


class DuplicateSuggestion(Base):
    """`thread` may duplicate `candidate` (an earlier thread): the cosine of their vectors for
    `model` was at least that model's calibrated threshold. One row per pair, whatever the
    decision, so a dismissed pair is never suggested again."""

    __tablename__ = "duplicate_suggestions"
    __table_args__ = (
        UniqueConstraint("thread_id", "candidate_thread_id"),
        Index("ix_duplicate_suggestions_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    candidate_thread_id: Mapped[int] = mapped_column(
        ForeignKey("threads.id", ondelete="CASCADE"), index=True
    )
    # Cosine similarity of the two threads' vectors (kb.vectors), in [-1, 1].
    score: Mapped[float] = mapped_column(Float)
    # The model key the score was computed with (kb.vectors.ModelSpec.key).
    model: Mapped[str] = mapped_column(String(60))
    status: Mapped[SuggestionStatus] = mapped_column(
        str_enum(SuggestionStatus), default=SuggestionStatus.OPEN
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    thread: Mapped[Thread] = relationship(foreign_keys=[thread_id])
    candidate: Mapped[Thread] = relationship(foreign_keys=[candidate_thread_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])

    @property
    def percent(self) -> int:
        """The similarity as staff read it ("87%")."""
        return round(max(0.0, min(1.0, self.score)) * 100)
