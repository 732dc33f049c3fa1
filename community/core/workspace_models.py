"""Brand workspace tables: staff granted per brand, uploaded images, badges and follows.

Kept apart from community.core.models (brands, forums, users, threads, posts) so that module
stays readable; these tables only point at those ones.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import ClassVar

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from community.core.clock import utcnow
from community.core.db import Base, BigIntId, UTCDateTime, str_enum


class BrandRole(enum.StrEnum):
    """A staff role held in one brand. Site admins (`Role.ADMIN`) hold every one everywhere."""

    MODERATOR = "moderator"
    AGENT = "agent"
    BRAND_ADMIN = "brand_admin"  # the brand's settings, forums, look and staff; moderates too

    # What each policy question accepts (community.core.policy); filled in below. A brand admin
    # is to their brand what a site admin is to every brand.
    STAFF: ClassVar[frozenset[BrandRole]]
    MODERATORS: ClassVar[frozenset[BrandRole]]
    AGENTS: ClassVar[frozenset[BrandRole]]


BrandRole.STAFF = frozenset(BrandRole)
BrandRole.MODERATORS = frozenset({BrandRole.MODERATOR, BrandRole.BRAND_ADMIN})
BrandRole.AGENTS = frozenset({BrandRole.AGENT, BrandRole.BRAND_ADMIN})


class StaffGrant(Base):
    """A person's role in one brand: every permission check of that brand's content reads these."""

    __tablename__ = "staff_grants"
    __table_args__ = (UniqueConstraint("user_id", "brand_id", "role"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    role: Mapped[BrandRole] = mapped_column(str_enum(BrandRole))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UploadPurpose(enum.StrEnum):
    POST = "post"  # an image in a question, answer or comment
    ARTICLE = "article"  # an image in a KB article (agents)
    AVATAR = "avatar"
    LOGO = "logo"
    FAVICON = "favicon"


class Upload(Base):
    """An image as stored after re-encoding (never the bytes as sent). `key` is the random,
    unguessable name it is served under (/uploads/<key>); `post_id` is set when a post that
    shows it is saved, so the image is visible exactly to those who may see that post (a held
    post's images to its author and staff); an unattached upload only to its owner and staff."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    purpose: Mapped[UploadPurpose] = mapped_column(str_enum(UploadPurpose))
    content_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    original_name: Mapped[str] = mapped_column(String(200), default="")
    storage: Mapped[str] = mapped_column(String(10), default="local")  # "local" or "s3"
    post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserBadge(Base):
    """A milestone a member reached (first accepted answer, ten helpful marks, a trust level...);
    awarded once, kept when the figure later drops."""

    __tablename__ = "user_badges"
    __table_args__ = (UniqueConstraint("user_id", "badge"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    badge: Mapped[str] = mapped_column(String(40))
    awarded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ForumFollow(Base):
    """A member notified of every new thread in a forum, as for watched threads."""

    __tablename__ = "forum_follows"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    forum_id: Mapped[int] = mapped_column(
        ForeignKey("forums.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TagFollow(Base):
    """A member notified of every new thread with a tag."""

    __tablename__ = "tag_follows"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
