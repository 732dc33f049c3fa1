"""Core tables: brands, forums, users and their sessions, threads and posts.

Columns follow ../shared/DESIGN.md section 4 so later features extend these tables rather than
rewrite them. Enumerations are stored as short strings (validated by SQLAlchemy) so adding a value
never needs a table rebuild on SQLite.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from community.core.account_models import ApiToken as ApiToken
from community.core.account_models import UserSession as UserSession
from community.core.clock import utcnow
from community.core.db import Base, BigIntId, JSONDocument, UTCDateTime, str_enum
from community.core.workspace_models import BrandRole


class Role(enum.StrEnum):
    """What an account may do beyond a member. Admins belong to every set below; moderators and
    agents are not supersets of each other. The sets are what community.core.policy reads: code
    elsewhere asks a policy predicate (is_staff, can_moderate, is_agent, is_admin)."""

    MEMBER = "member"
    MODERATOR = "moderator"
    AGENT = "agent"
    ADMIN = "admin"

    # Annotated without a value so that the enum does not take them for members; filled in
    # below, once the members exist.
    STAFF: ClassVar[frozenset[Role]]  # see hidden content, act on locked threads, edit any post
    MODERATORS: ClassVar[frozenset[Role]]  # review queue, sanctions, escalating, duplicates
    AGENTS: ClassVar[frozenset[Role]]  # escalations, curating the KB, official answers


Role.STAFF = frozenset({Role.MODERATOR, Role.AGENT, Role.ADMIN})
Role.MODERATORS = frozenset({Role.MODERATOR, Role.ADMIN})
Role.AGENTS = frozenset({Role.AGENT, Role.ADMIN})


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


class ForumAccess(enum.StrEnum):
    """Who may read a forum: everyone, verified customers (and staff), or the brand's staff only.
    Enforced by community.core.policy and every listing, page, API and search filter."""

    PUBLIC = "public"
    VERIFIED = "verified"
    STAFF = "staff"


class EmailPreference(enum.StrEnum):
    IMMEDIATE = "immediate"
    DAILY = "daily"
    OFF = "off"


class NotificationKind(enum.StrEnum):
    ANSWER = "answer"  # a new answer on your question
    NEW_POST = "new_post"  # a new answer on a thread you watch
    MENTION = "mention"
    ACCEPTED = "accepted"  # your answer was accepted
    VOTE_MILESTONE = "vote_milestone"
    MODERATION = "moderation"  # a moderator acted on your post or account
    APPROVED = "approved"  # a moderator published your held post
    EXPERT_INVITATION = "expert_invitation"  # asked to help with an unanswered question
    SUPPORT = "support"  # the support team took up (or answered) your thread
    INSIGHTS = "insights"  # the weekly summary, to a brand's admins
    PRIVATE_MESSAGE = "private_message"  # staff wrote in a thread's private follow-up
    KNOWN_ISSUE = "known_issue"  # a known issue you reported or follow was fixed
    BADGE = "badge"  # you earned a badge (community.members.badges)
    FOLLOWED_FORUM = "followed_forum"  # a new thread in a forum you follow
    FOLLOWED_TAG = "followed_tag"  # a new thread with a tag you follow


# Where a loaded User keeps its staff roles per brand (see User.brand_roles).
BRAND_ROLES_KEY = "_brand_roles"
NO_GRANTS: Mapping[int, frozenset[BrandRole]] = MappingProxyType({})


class Brand(Base):
    __tablename__ = "brands"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    theme: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    default_locale: Mapped[str] = mapped_column(String(8), default="en")
    # Usefulness (0-100) at which a solved thread becomes a community solution, and at which a
    # solution is suggested to agents for a curated article.
    solution_threshold: Mapped[float] = mapped_column(default=35.0)
    article_threshold: Mapped[float] = mapped_column(default=60.0)
    review_period_days: Mapped[int] = mapped_column(Integer, default=180)
    # Search synonyms, each group a list of words that mean the same ("wifi", "wi-fi", ...).
    synonyms: Mapped[list[list[str]]] = mapped_column(JSONDocument, default=list)
    # The sentence-embedding model of semantic search (kb.vectors): a name from
    # kb.embeddings' registry, "auto" or "off"; None means the site's SEARCH_MODEL. Its options
    # (an HTTP embedding service's address, ...) are in search_model_options.
    search_model: Mapped[str | None] = mapped_column(String(40), default=None)
    search_model_options: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    # Moderation: the summed flag weight that hides a post pending review, the trust-level
    # thresholds (moderation.trust.DEFAULTS when empty) and the code of conduct (Markdown).
    flag_hide_weight: Mapped[float] = mapped_column(default=3.0)
    trust_thresholds: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    code_of_conduct: Mapped[str] = mapped_column(Text, default="")
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0)  # ask-form holdout %, 0 = off
    # Brand workspace: where people write to the brand, the host name the brand is served on
    # (besides /b/<slug>), its footer links ([{"label", "url"}]) and its logo and favicon
    # (`uploads.key`, served under /uploads/). The colours are in `theme`. An archived brand's
    # pages are gone (404) but nothing is deleted.
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    host: Mapped[str | None] = mapped_column(String(253), unique=True)
    footer_links: Mapped[list[dict[str, str]]] = mapped_column(JSONDocument, default=list)
    logo_key: Mapped[str | None] = mapped_column(String(40))
    favicon_key: Mapped[str | None] = mapped_column(String(40))
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Sign-in rules: members without a confirmed e-mail address may not post here; moderators,
    # agents and admins need a second factor (TOTP) in their session for this brand's staff
    # pages; members sign in with a password, or only through the brand's single sign-on.
    require_verified_email: Mapped[bool] = mapped_column(Boolean, default=True)
    require_staff_two_factor: Mapped[bool] = mapped_column(Boolean, default=False)
    password_sign_in: Mapped[bool] = mapped_column(Boolean, default=True)
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
    access: Mapped[ForumAccess] = mapped_column(str_enum(ForumAccess), default=ForumAccess.PUBLIC)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
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
    # When the owner opened a link sent to `email` (None: not confirmed yet).
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    display_name: Mapped[str] = mapped_column(String(60))
    # None means "no usable password" (imported accounts until they reset it).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(str_enum(Role), default=Role.MEMBER)
    trust_level: Mapped[int] = mapped_column(SmallInteger, default=0)
    reputation: Mapped[int] = mapped_column(Integer, default=0)
    segment: Mapped[str | None] = mapped_column(String(20))
    locale: Mapped[str | None] = mapped_column(String(8))
    suspended_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspension_reason: Mapped[str | None] = mapped_column(String(300))
    # Silenced: may read and sign in, may not post, vote or flag.
    silenced_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by a moderator: automatic trust changes leave this account alone.
    trust_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    days_visited: Mapped[int] = mapped_column(Integer, default=0)
    # Crowd-service: a customer the brand has verified; experts who do not want invitations,
    # or are away until a date.
    verified_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    expert_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    vacation_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    threads_read: Mapped[int] = mapped_column(Integer, default=0)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_notifications: Mapped[EmailPreference] = mapped_column(
        str_enum(EmailPreference), default=EmailPreference.IMMEDIATE
    )
    # When the last daily digest went out; the next one is due a day later.
    digest_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The public profile: a short bio (plain text) and an uploaded avatar (`uploads.key`); with
    # none, pages draw a generated one.
    bio: Mapped[str] = mapped_column(String(500), default="")
    avatar_key: Mapped[str | None] = mapped_column(String(40))

    @property
    def brand_roles(self) -> Mapping[int, frozenset[BrandRole]]:
        """Staff roles per brand (brand id -> roles), read by community.core.policy. Not a
        column: the request's viewer loads them with the user (community.core.staff), so a
        row loaded any other way holds none and only its site-wide `role` counts."""
        roles: Mapping[int, frozenset[BrandRole]] = self.__dict__.get(BRAND_ROLES_KEY, NO_GRANTS)
        return roles


thread_tags = Table(
    "thread_tags",
    Base.metadata,
    Column("thread_id", ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("brand_id", "name"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(30))
    thread_count: Mapped[int] = mapped_column(Integer, default=0)


_HIDDEN = text("visibility <> 'visible'")


class Thread(Base):
    __tablename__ = "threads"
    __table_args__ = (
        Index("ix_threads_forum_listing", "forum_id", "visibility", "last_activity_at", "id"),
        Index("ix_threads_forum_newest", "forum_id", "visibility", "created_at", "id"),
        Index("ix_threads_forum_top", "forum_id", "visibility", "score", "id"),
        # The few threads not shown (pending, hidden, deleted): "on a visible thread" is then
        # checked against these, not by reading every visible thread (the agent queue).
        Index("ix_threads_not_visible", "id", postgresql_where=_HIDDEN, sqlite_where=_HIDDEN),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    forum_id: Mapped[int] = mapped_column(ForeignKey("forums.id", ondelete="CASCADE"))
    # The thread's brand, read with the thread (a primary-key lookup in the same statement):
    # every permission check on a thread or its posts is scoped to its brand's staff.
    brand_id: Mapped[int] = column_property(
        select(Forum.brand_id).where(Forum.id == forum_id).correlate_except(Forum).scalar_subquery()
    )
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
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_reason: Mapped[str | None] = mapped_column(String(20))
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("threads.id", ondelete="SET NULL")
    )
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("threads.id", ondelete="SET NULL")
    )
    view_count: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[int] = mapped_column(Integer, default=0)
    reply_count: Mapped[int] = mapped_column(Integer, default=0)
    helpful_count: Mapped[int] = mapped_column(Integer, default=0)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Support continued in private (crowdservice.followup): the page says so, without a query.
    private_followup_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Triage (crowd-service fills these; members never see them).
    interaction_type: Mapped[str | None] = mapped_column(String(30))
    sentiment: Mapped[str | None] = mapped_column(String(10))
    sentiment_score: Mapped[float | None] = mapped_column()
    priority: Mapped[str | None] = mapped_column(String(2))
    author_segment: Mapped[str | None] = mapped_column(String(20))
    # Service-level deadlines, stored when the thread is triaged or re-prioritised.
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The knowledge base's usefulness score (kb.scoring), kept current by the worker.
    usefulness: Mapped[float] = mapped_column(default=0.0)
    # Attribution for imported threads: the original page (CC BY-SA asks for a link).
    source_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the question's text, title, tags or kind last changed (not counters or votes).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    forum: Mapped[Forum] = relationship()
    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    duplicate_of: Mapped[Thread | None] = relationship(
        remote_side="Thread.id", foreign_keys=[duplicate_of_id]
    )
    tags: Mapped[list[Tag]] = relationship(secondary=thread_tags, order_by="Tag.name")
    posts: Mapped[list[Post]] = relationship(
        back_populates="thread",
        foreign_keys="Post.thread_id",
        order_by="Post.id",
        cascade="all, delete-orphan",
    )


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_thread_listing", "thread_id", "visibility", "id"),
        Index("ix_posts_author_fingerprint", "author_id", "body_fingerprint"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # The question is the thread's first post; answers follow.
    is_question: Mapped[bool] = mapped_column(Boolean, default=False)
    body_source: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    # community.threads.body_fingerprint(body_source): the repeat filter looks it up by index.
    body_fingerprint: Mapped[str | None] = mapped_column(String(64))
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
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Hidden only because its author is suspended: shown again when the suspension ends.
    hidden_by_suspension: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # When the text last changed (votes and counters leave it alone).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    thread: Mapped[Thread] = relationship(back_populates="posts", foreign_keys=[thread_id])
    author: Mapped[User | None] = relationship()

    @property
    def brand_id(self) -> int:
        """The post's brand: its thread's. The thread is nearly always in the session already
        (a page loads it before its posts), so this costs no query; a correlated subquery per
        post row cost a thread page about a millisecond."""
        return self.thread.brand_id


class PostComment(Base):
    """A short remark under a question or answer, as Stack Exchange sites have them. They arrive
    with imports; written remarks here are answers, so there is no form for these."""

    __tablename__ = "post_comments"
    __table_args__ = (Index("ix_post_comments_post", "post_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Shown when the author's account no longer exists (the source kept only a name).
    author_name: Mapped[str | None] = mapped_column(String(60))
    body_html: Mapped[str] = mapped_column(Text)
    score: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User | None] = relationship()


class PostRevision(Base):
    """One saved version of a post. Written on the first edit (the original) and every edit."""

    __tablename__ = "post_revisions"
    __table_args__ = (UniqueConstraint("post_id", "number"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    title: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[str | None] = mapped_column(String(200))
    body_source: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Staff hid this version's text (personal data): only staff see it, marked.
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redacted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    editor: Mapped[User | None] = relationship(foreign_keys=[editor_id])


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_unread", "user_id", "read_at", "id"),
        # Milestone checks and post deletions look notifications up by post.
        Index("ix_notifications_post_kind", "post_id", "kind"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(str_enum(NotificationKind))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    thread_id: Mapped[int | None] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    thread: Mapped[Thread | None] = relationship()
