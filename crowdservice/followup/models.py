"""A thread's private conversation between its author and the brand's staff, and its messages.

The conversation is one per thread (closed and reopened rather than duplicated), so the thread
page and the agent workspace always point at one place. Messages live in their own table, never
in `posts`: nothing that reads posts (the thread page, search documents, KB promotion, the
article editor, revisions, exports) can reach them by accident.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from community.core.clock import utcnow
from community.core.db import Base, BigIntId, UTCDateTime
from community.core.models import Thread, User


class PrivateConversation(Base):
    __tablename__ = "private_conversations"
    __table_args__ = (Index("ix_private_conversations_brand", "brand_id", "last_message_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    thread_id: Mapped[int] = mapped_column(
        ForeignKey("threads.id", ondelete="CASCADE"), unique=True
    )
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    # The customer: the thread's author when the conversation was opened.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The public answer that told the thread how it ended, when the agent posted one.
    outcome_post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))

    thread: Mapped[Thread] = relationship()
    customer: Mapped[User | None] = relationship(foreign_keys=[customer_id])
    opened_by: Mapped[User | None] = relationship(foreign_keys=[opened_by_id])
    messages: Mapped[list[PrivateMessage]] = relationship(
        back_populates="conversation", order_by="PrivateMessage.id", cascade="all, delete-orphan"
    )

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class PrivateMessage(Base):
    __tablename__ = "private_messages"
    __table_args__ = (Index("ix_private_messages_conversation", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("private_conversations.id", ondelete="CASCADE")
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    # Sanitized HTML rendered from the Markdown body (community.core.markdown).
    body_html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    conversation: Mapped[PrivateConversation] = relationship(back_populates="messages")
    author: Mapped[User | None] = relationship()
