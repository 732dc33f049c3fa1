"""Knowledge base: community solutions, articles with versions, credits and feedback, the
promotion queue, search analytics, usefulness scores, outbox dedupe keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 07:16:14.807348
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kb_deflection_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("visitor_key", sa.String(length=32), nullable=False),
        sa.Column("query", sa.String(length=200), nullable=False),
        sa.Column("entry_type", sa.String(length=20), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_kb_deflection_events_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_kb_deflection_events_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_deflection_events")),
    )
    with op.batch_alter_table("kb_deflection_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_kb_deflection_events_brand_id"), ["brand_id"], unique=False
        )

    op.create_table(
        "kb_search_queries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("query", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("result_count", sa.Integer(), nullable=False),
        sa.Column("degraded", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_kb_search_queries_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_kb_search_queries_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_search_queries")),
    )
    with op.batch_alter_table("kb_search_queries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_kb_search_queries_brand_time", ["brand_id", "created_at"], unique=False
        )

    op.create_table(
        "kb_articles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("forum_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "source_thread_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("source_reply_count", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("body_source", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("tags", sa.String(length=200), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "in_review",
                "published",
                "archived",
                name="articlestatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("obsolete", sa.Boolean(), nullable=False),
        sa.Column("owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("last_verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("helpful_yes", sa.Integer(), nullable=False),
        sa.Column("helpful_no", sa.Integer(), nullable=False),
        sa.Column("view_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_kb_articles_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["forum_id"],
            ["forums.id"],
            name=op.f("fk_kb_articles_forum_id_forums"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_kb_articles_owner_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["source_thread_id"],
            ["threads.id"],
            name=op.f("fk_kb_articles_source_thread_id_threads"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_articles")),
    )
    with op.batch_alter_table("kb_articles", schema=None) as batch_op:
        batch_op.create_index("ix_kb_articles_brand_status", ["brand_id", "status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_kb_articles_source_thread_id"), ["source_thread_id"], unique=False
        )

    op.create_table(
        "kb_solutions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "thread_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("score_at_promotion", sa.Float(), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_kb_solutions_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["threads.id"],
            name=op.f("fk_kb_solutions_thread_id_threads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_solutions")),
        sa.UniqueConstraint("thread_id", name=op.f("uq_kb_solutions_thread_id")),
    )
    with op.batch_alter_table("kb_solutions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_solutions_brand_id"), ["brand_id"], unique=False)

    op.create_table(
        "kb_article_credits",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "article_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["kb_articles.id"],
            name=op.f("fk_kb_article_credits_article_id_kb_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_kb_article_credits_post_id_posts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_kb_article_credits_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_article_credits")),
        sa.UniqueConstraint(
            "article_id", "post_id", name=op.f("uq_kb_article_credits_article_id_post_id")
        ),
    )
    op.create_table(
        "kb_article_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "article_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("editor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("body_source", sa.Text(), nullable=False),
        sa.Column("tags", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "in_review",
                "published",
                "archived",
                name="articlestatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["kb_articles.id"],
            name=op.f("fk_kb_article_versions_article_id_kb_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["editor_id"],
            ["users.id"],
            name=op.f("fk_kb_article_versions_editor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_article_versions")),
        sa.UniqueConstraint(
            "article_id", "number", name=op.f("uq_kb_article_versions_article_id_number")
        ),
    )
    op.create_table(
        "kb_feedback",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "article_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("visitor_key", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["kb_articles.id"],
            name=op.f("fk_kb_feedback_article_id_kb_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_kb_feedback_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_feedback")),
        sa.UniqueConstraint(
            "article_id",
            "visitor_key",
            "day",
            name=op.f("uq_kb_feedback_article_id_visitor_key_day"),
        ),
    )
    with op.batch_alter_table("kb_feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_feedback_created_at"), ["created_at"], unique=False)

    op.create_table(
        "kb_promotion_candidates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "thread_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column(
            "reasons", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "status",
            sa.Enum(
                "suggested",
                "promoted",
                "dismissed",
                name="candidatestatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "article_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["kb_articles.id"],
            name=op.f("fk_kb_promotion_candidates_article_id_kb_articles"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_kb_promotion_candidates_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["threads.id"],
            name=op.f("fk_kb_promotion_candidates_thread_id_threads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_promotion_candidates")),
        sa.UniqueConstraint("thread_id", name=op.f("uq_kb_promotion_candidates_thread_id")),
    )
    with op.batch_alter_table("kb_promotion_candidates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_kb_promotion_candidates_brand_id"), ["brand_id"], unique=False
        )

    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("solution_threshold", sa.Double(), nullable=False, server_default="35")
        )
        batch_op.add_column(
            sa.Column("article_threshold", sa.Double(), nullable=False, server_default="60")
        )
        batch_op.add_column(
            sa.Column("review_period_days", sa.Integer(), nullable=False, server_default="180")
        )
        batch_op.add_column(
            sa.Column(
                "synonyms",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=False,
                server_default="[]",
            )
        )

    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=80), nullable=True))
        batch_op.create_index(
            "ix_outbox_events_pending_key", ["kind", "dedupe_key", "done_at"], unique=False
        )

    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("usefulness", sa.Double(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_column("usefulness")

    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_pending_key")
        batch_op.drop_column("dedupe_key")

    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.drop_column("synonyms")
        batch_op.drop_column("review_period_days")
        batch_op.drop_column("article_threshold")
        batch_op.drop_column("solution_threshold")

    with op.batch_alter_table("kb_promotion_candidates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_promotion_candidates_brand_id"))

    op.drop_table("kb_promotion_candidates")
    with op.batch_alter_table("kb_feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_feedback_created_at"))

    op.drop_table("kb_feedback")
    op.drop_table("kb_article_versions")
    op.drop_table("kb_article_credits")
    with op.batch_alter_table("kb_solutions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_solutions_brand_id"))

    op.drop_table("kb_solutions")
    with op.batch_alter_table("kb_articles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_articles_source_thread_id"))
        batch_op.drop_index("ix_kb_articles_brand_status")

    op.drop_table("kb_articles")
    with op.batch_alter_table("kb_search_queries", schema=None) as batch_op:
        batch_op.drop_index("ix_kb_search_queries_brand_time")

    op.drop_table("kb_search_queries")
    with op.batch_alter_table("kb_deflection_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_deflection_events_brand_id"))

    op.drop_table("kb_deflection_events")
