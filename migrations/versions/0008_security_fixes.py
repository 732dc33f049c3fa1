"""Security fixes (issue 11): the helpdesk call-backs seen recently, so a
repeated one is not applied again, and on escalations the timestamp of the call-back applied;
who redacted an earlier version of a post, and when.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 08:20:25.437719
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "helpdesk_callbacks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "webhook_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("message_key", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_helpdesk_callbacks_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_helpdesk_callbacks")),
        sa.UniqueConstraint(
            "webhook_id", "message_key", name=op.f("uq_helpdesk_callbacks_webhook_id_message_key")
        ),
    )
    with op.batch_alter_table("helpdesk_callbacks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_helpdesk_callbacks_sent_at"), ["sent_at"], unique=False
        )

    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ticket_sent_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("post_revisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column(
                "redacted_by_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_post_revisions_redacted_by_id_users"),
            "users",
            ["redacted_by_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("post_revisions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_post_revisions_redacted_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("redacted_by_id")
        batch_op.drop_column("redacted_at")

    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_column("ticket_sent_at")

    with op.batch_alter_table("helpdesk_callbacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_helpdesk_callbacks_sent_at"))

    op.drop_table("helpdesk_callbacks")
