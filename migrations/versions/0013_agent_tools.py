"""Agent tools (issue 19): a thread's private follow-up and its messages, a brand's saved
replies, and known-issue announcements with their updates, linked threads, followers and the
ask-form sessions they were matched in.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 21:16:58.726104
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "known_issues",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("brand_id", BIG_ID, nullable=False),
        sa.Column("title", sa.String(length=160), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("summary_html", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "investigating",
                "identified",
                "fixed",
                name="knownissuestatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("match_terms", JSON_DOCUMENT, nullable=False),
        sa.Column("forum_ids", JSON_DOCUMENT, nullable=False),
        sa.Column("tags", JSON_DOCUMENT, nullable=False),
        sa.Column("created_by_id", BIG_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fixed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("article_id", BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["kb_articles.id"],
            name=op.f("fk_known_issues_article_id_kb_articles"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_known_issues_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_known_issues_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_known_issues")),
    )
    with op.batch_alter_table("known_issues", schema=None) as batch_op:
        batch_op.create_index("ix_known_issues_brand_open", ["brand_id", "closed_at"], unique=False)

    op.create_table(
        "private_conversations",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("thread_id", BIG_ID, nullable=False),
        sa.Column("brand_id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=True),
        sa.Column("opened_by_id", BIG_ID, nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by_id", BIG_ID, nullable=True),
        sa.Column("outcome_post_id", BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_private_conversations_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["closed_by_id"],
            ["users.id"],
            name=op.f("fk_private_conversations_closed_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["users.id"],
            name=op.f("fk_private_conversations_customer_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["opened_by_id"],
            ["users.id"],
            name=op.f("fk_private_conversations_opened_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["outcome_post_id"],
            ["posts.id"],
            name=op.f("fk_private_conversations_outcome_post_id_posts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["threads.id"],
            name=op.f("fk_private_conversations_thread_id_threads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_private_conversations")),
        sa.UniqueConstraint("thread_id", name=op.f("uq_private_conversations_thread_id")),
    )
    with op.batch_alter_table("private_conversations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_private_conversations_brand", ["brand_id", "last_message_at"], unique=False
        )

    op.create_table(
        "saved_replies",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("brand_id", BIG_ID, nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "action",
            sa.Enum(
                "answer",
                "ask_details",
                "resolve",
                name="suggestedaction",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("kb_article_id", BIG_ID, nullable=True),
        sa.Column("usage_count", sa.Integer(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", BIG_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_saved_replies_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_saved_replies_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["kb_article_id"],
            ["kb_articles.id"],
            name=op.f("fk_saved_replies_kb_article_id_kb_articles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_replies")),
        sa.UniqueConstraint(
            "brand_id", "locale", "title", name=op.f("uq_saved_replies_brand_id_locale_title")
        ),
    )
    with op.batch_alter_table("saved_replies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_saved_replies_brand_id"), ["brand_id"], unique=False)

    op.create_table(
        "known_issue_followers",
        sa.Column("known_issue_id", BIG_ID, nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["known_issue_id"],
            ["known_issues.id"],
            name=op.f("fk_known_issue_followers_known_issue_id_known_issues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_known_issue_followers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("known_issue_id", "user_id", name=op.f("pk_known_issue_followers")),
    )
    with op.batch_alter_table("known_issue_followers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_known_issue_followers_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "known_issue_impressions",
        sa.Column("known_issue_id", BIG_ID, nullable=False),
        sa.Column("ask_session_id", BIG_ID, nullable=False),
        sa.Column("shown", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ask_session_id"],
            ["kb_ask_sessions.id"],
            name=op.f("fk_known_issue_impressions_ask_session_id_kb_ask_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["known_issue_id"],
            ["known_issues.id"],
            name=op.f("fk_known_issue_impressions_known_issue_id_known_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "known_issue_id", "ask_session_id", name=op.f("pk_known_issue_impressions")
        ),
    )
    with op.batch_alter_table("known_issue_impressions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_known_issue_impressions_ask_session_id"),
            ["ask_session_id"],
            unique=False,
        )

    op.create_table(
        "known_issue_threads",
        sa.Column("known_issue_id", BIG_ID, nullable=False),
        sa.Column("thread_id", BIG_ID, nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("linked_by_id", BIG_ID, nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["known_issue_id"],
            ["known_issues.id"],
            name=op.f("fk_known_issue_threads_known_issue_id_known_issues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["linked_by_id"],
            ["users.id"],
            name=op.f("fk_known_issue_threads_linked_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["threads.id"],
            name=op.f("fk_known_issue_threads_thread_id_threads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("known_issue_id", "thread_id", name=op.f("pk_known_issue_threads")),
    )
    with op.batch_alter_table("known_issue_threads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_known_issue_threads_thread_id"), ["thread_id"], unique=False
        )

    op.create_table(
        "known_issue_updates",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("known_issue_id", BIG_ID, nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "investigating",
                "identified",
                "fixed",
                name="knownissuestatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("author_id", BIG_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_known_issue_updates_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["known_issue_id"],
            ["known_issues.id"],
            name=op.f("fk_known_issue_updates_known_issue_id_known_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_known_issue_updates")),
    )
    with op.batch_alter_table("known_issue_updates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_known_issue_updates_known_issue_id"), ["known_issue_id"], unique=False
        )

    op.create_table(
        "private_messages",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("conversation_id", BIG_ID, nullable=False),
        sa.Column("author_id", BIG_ID, nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_private_messages_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["private_conversations.id"],
            name=op.f("fk_private_messages_conversation_id_private_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_private_messages")),
    )
    with op.batch_alter_table("private_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_private_messages_conversation", ["conversation_id", "id"], unique=False
        )

    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("private_followup_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_column("private_followup_at")

    with op.batch_alter_table("private_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_private_messages_conversation")

    op.drop_table("private_messages")
    with op.batch_alter_table("known_issue_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_known_issue_updates_known_issue_id"))

    op.drop_table("known_issue_updates")
    with op.batch_alter_table("known_issue_threads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_known_issue_threads_thread_id"))

    op.drop_table("known_issue_threads")
    with op.batch_alter_table("known_issue_impressions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_known_issue_impressions_ask_session_id"))

    op.drop_table("known_issue_impressions")
    with op.batch_alter_table("known_issue_followers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_known_issue_followers_user_id"))

    op.drop_table("known_issue_followers")
    with op.batch_alter_table("saved_replies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_replies_brand_id"))

    op.drop_table("saved_replies")
    with op.batch_alter_table("private_conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_private_conversations_brand")

    op.drop_table("private_conversations")
    with op.batch_alter_table("known_issues", schema=None) as batch_op:
        batch_op.drop_index("ix_known_issues_brand_open")

    op.drop_table("known_issues")
