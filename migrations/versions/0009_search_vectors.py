"""Semantic search (issue 12): each brand's sentence-embedding model and its options, and the
document vectors kept per model.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 10:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_model", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column(
                "search_model_options",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=False,
                server_default="{}",
            )
        )
    op.create_table(
        "search_vectors",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("brand_id", BIG_ID, nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_search_vectors_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_vectors")),
        sa.UniqueConstraint("subject", "model", name=op.f("uq_search_vectors_subject_model")),
    )
    with op.batch_alter_table("search_vectors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_search_vectors_brand_id"), ["brand_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("search_vectors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_vectors_brand_id"))
    op.drop_table("search_vectors")
    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.drop_column("search_model_options")
        batch_op.drop_column("search_model")
