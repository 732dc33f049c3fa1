"""Deflection measured by experiment (issue 15): a brand's holdout share and every ask-form
session with the group it was assigned to and whether it ended in a new question.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("holdout_percent", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "kb_ask_sessions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("brand_id", BIG_ID, nullable=False),
        sa.Column("visitor_key", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column(
            "arm",
            sa.Enum("suggestions", "holdout", name="askarm", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("holdout_percent", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("thread_id", BIG_ID, nullable=True),
        sa.Column("ended_with_thread_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_kb_ask_sessions_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["threads.id"],
            name=op.f("fk_kb_ask_sessions_thread_id_threads"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_ask_sessions")),
        sa.UniqueConstraint(
            "brand_id",
            "visitor_key",
            "number",
            name=op.f("uq_kb_ask_sessions_brand_id_visitor_key_number"),
        ),
    )
    with op.batch_alter_table("kb_ask_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_kb_ask_sessions_brand_started", ["brand_id", "started_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("kb_ask_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_kb_ask_sessions_brand_started")
    op.drop_table("kb_ask_sessions")
    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.drop_column("holdout_percent")
