"""Initial schema: brands, forums, users, sessions, threads, posts and the audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def Timestamp() -> sa.DateTime:  # noqa: N802 - reads like the column type it builds
    return sa.DateTime(timezone=True)


def Choice(*values: str, name: str) -> sa.Enum:  # noqa: N802
    return sa.Enum(*values, name=name, native_enum=False, length=20)


VISIBILITY = ("visible", "pending", "hidden", "deleted")


def upgrade() -> None:
    op.create_table(
        "brands",
        sa.Column("id", Id, nullable=False),
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("theme", Json, nullable=False),
        sa.Column("default_locale", sa.String(length=8), nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brands")),
        sa.UniqueConstraint("slug", name=op.f("uq_brands_slug")),
    )
    op.create_table(
        "users",
        sa.Column("id", Id, nullable=False),
        sa.Column("username", sa.String(length=30), nullable=False),
        sa.Column("username_key", sa.String(length=30), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("email_key", sa.String(length=254), nullable=True),
        sa.Column("display_name", sa.String(length=60), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column(
            "role", Choice("member", "moderator", "agent", "admin", name="role"), nullable=False
        ),
        sa.Column("trust_level", sa.SmallInteger(), nullable=False),
        sa.Column("reputation", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(length=20), nullable=True),
        sa.Column("locale", sa.String(length=8), nullable=True),
        sa.Column("suspended_until", Timestamp(), nullable=True),
        sa.Column("deactivated_at", Timestamp(), nullable=True),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("last_seen_at", Timestamp(), nullable=True),
        sa.Column("password_changed_at", Timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email_key", name=op.f("uq_users_email_key")),
        sa.UniqueConstraint("username_key", name=op.f("uq_users_username_key")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", Id, nullable=False),
        sa.Column("actor_id", Id, nullable=True),
        sa.Column("actor_role", sa.String(length=20), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target_type", sa.String(length=30), nullable=False),
        sa.Column("target_id", sa.String(length=40), nullable=False),
        sa.Column("before", Json, nullable=True),
        sa.Column("after", Json, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_audit_log_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_action"), "audit_log", ["action"])
    op.create_index(op.f("ix_audit_log_actor_id"), "audit_log", ["actor_id"])
    op.create_index(op.f("ix_audit_log_created_at"), "audit_log", ["created_at"])
    op.create_index("ix_audit_log_target", "audit_log", ["target_type", "target_id"])

    op.create_table(
        "forums",
        sa.Column("id", Id, nullable=False),
        sa.Column("brand_id", Id, nullable=False),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "moderation_policy",
            Choice("open", "premoderated", name="moderationpolicy"),
            nullable=False,
        ),
        sa.Column("thread_count", sa.Integer(), nullable=False),
        sa.Column("post_count", sa.Integer(), nullable=False),
        sa.Column("last_activity_at", Timestamp(), nullable=True),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_forums_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forums")),
        sa.UniqueConstraint("brand_id", "slug", name=op.f("uq_forums_brand_id_slug")),
    )
    op.create_index(op.f("ix_forums_brand_id"), "forums", ["brand_id"])

    op.create_table(
        "user_sessions",
        sa.Column("id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("last_seen_at", Timestamp(), nullable=False),
        sa.Column("expires_at", Timestamp(), nullable=False),
        sa.Column("revoked_at", Timestamp(), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
    )
    op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"])

    # threads.accepted_post_id -> posts.id closes a cycle; that key is added once posts exists.
    op.create_table(
        "threads",
        sa.Column("id", Id, nullable=False),
        sa.Column("forum_id", Id, nullable=False),
        sa.Column("author_id", Id, nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            Choice(
                "question",
                "problem",
                "complaint",
                "idea",
                "praise",
                "discussion",
                name="threadkind",
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            Choice(
                "open",
                "answered",
                "solved",
                "escalated",
                "closed",
                "locked",
                name="threadstatus",
            ),
            nullable=False,
        ),
        sa.Column("visibility", Choice(*VISIBILITY, name="visibility"), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("accepted_post_id", Id, nullable=True),
        sa.Column("view_count", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("reply_count", sa.Integer(), nullable=False),
        sa.Column("helpful_count", sa.Integer(), nullable=False),
        sa.Column("last_activity_at", Timestamp(), nullable=False),
        sa.Column("first_response_at", Timestamp(), nullable=True),
        sa.Column("interaction_type", sa.String(length=30), nullable=True),
        sa.Column("sentiment", sa.String(length=10), nullable=True),
        sa.Column("sentiment_score", sa.Double(), nullable=True),
        sa.Column("priority", sa.String(length=2), nullable=True),
        sa.Column("author_segment", sa.String(length=20), nullable=True),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("updated_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_threads_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["forum_id"], ["forums.id"], name=op.f("fk_threads_forum_id_forums"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_threads")),
    )
    op.create_index(op.f("ix_threads_author_id"), "threads", ["author_id"])
    op.create_index(
        "ix_threads_forum_listing", "threads", ["forum_id", "visibility", "last_activity_at", "id"]
    )

    op.create_table(
        "posts",
        sa.Column("id", Id, nullable=False),
        sa.Column("thread_id", Id, nullable=False),
        sa.Column("author_id", Id, nullable=True),
        sa.Column("is_question", sa.Boolean(), nullable=False),
        sa.Column("body_source", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("html_version", sa.SmallInteger(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("upvotes", sa.Integer(), nullable=False),
        sa.Column("downvotes", sa.Integer(), nullable=False),
        sa.Column("helpful_count", sa.Integer(), nullable=False),
        sa.Column("visibility", Choice(*VISIBILITY, name="visibility"), nullable=False),
        sa.Column("is_official", sa.Boolean(), nullable=False),
        sa.Column("edit_count", sa.Integer(), nullable=False),
        sa.Column("edited_at", Timestamp(), nullable=True),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("updated_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_posts_author_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["threads.id"],
            name=op.f("fk_posts_thread_id_threads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
    )
    op.create_index(op.f("ix_posts_author_id"), "posts", ["author_id"])
    op.create_index("ix_posts_thread_listing", "posts", ["thread_id", "visibility", "id"])

    with op.batch_alter_table("threads") as batch_op:
        batch_op.create_foreign_key(
            op.f("fk_threads_accepted_post_id_posts"),
            "posts",
            ["accepted_post_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("threads") as batch_op:
        batch_op.drop_constraint(op.f("fk_threads_accepted_post_id_posts"), type_="foreignkey")
    op.drop_table("posts")
    op.drop_table("threads")
    op.drop_table("user_sessions")
    op.drop_table("forums")
    op.drop_table("audit_log")
    op.drop_table("users")
    op.drop_table("brands")
