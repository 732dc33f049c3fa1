"""Article views counted once per viewer and day (kb_article_views), as thread views are.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kb_article_views",
        sa.Column(
            "article_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("viewer_key", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["kb_articles.id"],
            name=op.f("fk_kb_article_views_article_id_kb_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "article_id", "viewer_key", "day", name=op.f("pk_kb_article_views")
        ),
    )
    with op.batch_alter_table("kb_article_views", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_article_views_day"), ["day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("kb_article_views", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_article_views_day"))
    op.drop_table("kb_article_views")
