"""Moderation: flags, review queues, blocked patterns and their hits, warnings; suspension,
silencing and trust fields on users; closing, duplicates and merges on threads; brand
moderation settings.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 07:48:16.985719
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blocked_patterns",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pattern", sa.String(length=200), nullable=False),
        sa.Column("is_regex", sa.Boolean(), nullable=False),
        sa.Column(
            "mode",
            sa.Enum("enforce", "log_only", name="filtermode", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_blocked_patterns_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_blocked_patterns_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocked_patterns")),
    )
    with op.batch_alter_table("blocked_patterns", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_blocked_patterns_brand_id"), ["brand_id"], unique=False
        )

    op.create_table(
        "user_warnings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "moderator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["moderator_id"],
            ["users.id"],
            name=op.f("fk_user_warnings_moderator_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_warnings_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_warnings")),
    )
    with op.batch_alter_table("user_warnings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_warnings_user_id"), ["user_id"], unique=False)

    op.create_table(
        "filter_hits",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "pattern_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("excerpt", sa.String(length=300), nullable=False),
        sa.Column("enforced", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pattern_id"],
            ["blocked_patterns.id"],
            name=op.f("fk_filter_hits_pattern_id_blocked_patterns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_filter_hits_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filter_hits")),
    )
    with op.batch_alter_table("filter_hits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_filter_hits_pattern_id"), ["pattern_id"], unique=False)

    op.create_table(
        "flags",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "flagger_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "reason",
            sa.Enum(
                "spam",
                "offensive",
                "off_topic",
                "duplicate",
                "needs_agent",
                "other",
                name="flagreason",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column(
            "duplicate_of_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "upheld", "rejected", name="flagstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["duplicate_of_id"],
            ["threads.id"],
            name=op.f("fk_flags_duplicate_of_id_threads"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["flagger_id"], ["users.id"], name=op.f("fk_flags_flagger_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_flags_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flags")),
    )
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flags_post_id"), ["post_id"], unique=False)
        batch_op.create_index(
            "uq_flags_open_per_flagger",
            ["flagger_id", "post_id"],
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )

    op.create_table(
        "moderation_items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "queue",
            sa.Enum("pending", "flagged", "users", name="queue", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "status",
            sa.Enum("open", "resolved", name="itemstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "reasons", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("flag_weight", sa.Float(), nullable=False),
        sa.Column("auto_hidden", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "resolved_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("resolution", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_moderation_items_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_moderation_items_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"],
            ["users.id"],
            name=op.f("fk_moderation_items_resolved_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_moderation_items_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_items")),
    )
    with op.batch_alter_table("moderation_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_moderation_items_open", ["brand_id", "queue", "status", "id"], unique=False
        )
        batch_op.create_index(
            "uq_moderation_items_open_target",
            ["queue", "post_id", "user_id"],
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )

    op.create_index("ix_notifications_post_kind", "notifications", ["post_id", "kind"])

    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("flag_hide_weight", sa.Double(), nullable=False, server_default="3")
        )
        batch_op.add_column(
            sa.Column(
                "trust_thresholds",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=False,
                server_default="{}",
            )
        )
        batch_op.add_column(
            sa.Column("code_of_conduct", sa.Text(), nullable=False, server_default="")
        )

    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_reason", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column(
                "duplicate_of_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "merged_into_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_threads_duplicate_of_id_threads"),
            "threads",
            ["duplicate_of_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_threads_merged_into_id_threads"),
            "threads",
            ["merged_into_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "hidden_by_suspension", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suspension_reason", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("silenced_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("trust_locked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("days_visited", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("threads_read", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    op.drop_index("ix_notifications_post_kind", table_name="notifications")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_column("hidden_by_suspension")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("threads_read")
        batch_op.drop_column("days_visited")
        batch_op.drop_column("trust_locked")
        batch_op.drop_column("silenced_until")
        batch_op.drop_column("suspension_reason")

    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_threads_merged_into_id_threads"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_threads_duplicate_of_id_threads"), type_="foreignkey"
        )
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("duplicate_of_id")
        batch_op.drop_column("closed_reason")

    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.drop_column("code_of_conduct")
        batch_op.drop_column("trust_thresholds")
        batch_op.drop_column("flag_hide_weight")

    with op.batch_alter_table("moderation_items", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_moderation_items_open_target",
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )
        batch_op.drop_index("ix_moderation_items_open")

    op.drop_table("moderation_items")
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_flags_open_per_flagger",
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )
        batch_op.drop_index(batch_op.f("ix_flags_post_id"))

    op.drop_table("flags")
    with op.batch_alter_table("filter_hits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_filter_hits_pattern_id"))

    op.drop_table("filter_hits")
    with op.batch_alter_table("user_warnings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_warnings_user_id"))

    op.drop_table("user_warnings")
    with op.batch_alter_table("blocked_patterns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blocked_patterns_brand_id"))

    op.drop_table("blocked_patterns")
