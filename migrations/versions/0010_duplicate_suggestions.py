"""Possible duplicates for staff (issue 12): the worker's suggestions that a new question may
duplicate an earlier thread, and the moderator's decision on each.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:33:21.888348
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "duplicate_suggestions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("thread_id", BIG_ID, nullable=False),
        sa.Column("candidate_thread_id", BIG_ID, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "closed_as_duplicate",
                "dismissed",
                name="suggestionstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", BIG_ID, nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["candidate_thread_id"],
            ["threads.id"],
            name=op.f("fk_duplicate_suggestions_candidate_thread_id_threads"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
            name=op.f("fk_duplicate_suggestions_decided_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["threads.id"],
            name=op.f("fk_duplicate_suggestions_thread_id_threads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_suggestions")),
        sa.UniqueConstraint(
            "thread_id",
            "candidate_thread_id",
            name=op.f("uq_duplicate_suggestions_thread_id_candidate_thread_id"),
        ),
    )
    with op.batch_alter_table("duplicate_suggestions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_duplicate_suggestions_candidate_thread_id"),
            ["candidate_thread_id"],
            unique=False,
        )
        batch_op.create_index("ix_duplicate_suggestions_status", ["status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("duplicate_suggestions", schema=None) as batch_op:
        batch_op.drop_index("ix_duplicate_suggestions_status")
        batch_op.drop_index(batch_op.f("ix_duplicate_suggestions_candidate_thread_id"))
    op.drop_table("duplicate_suggestions")
