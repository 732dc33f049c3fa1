"""The agent queue in its order from an index: each escalation stores the due time that
matters (`queue_due_at`: first response until support answered, then resolution with the ended
pauses), a partial index on the active ones reads a brand's queue in that order, and a partial
index on the threads not visible lets the queue leave those out without reading every visible
thread (1,199 active escalations among 30,000 threads: the queue's two queries went from 23 and
8 ms, each reading every visible thread, to 1-2 ms; docs/performance.md). /metrics' count of
the SLA breaches not met yet reads those from a partial index, not every breach recorded.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 02:00:00.000000
"""

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "status IN ('open', 'claimed', 'answered', 'waiting', 'handed_off')"
BATCH = 1000

escalations = sa.table(
    "escalations",
    sa.column("id", sa.BigInteger),
    sa.column("first_response_at", sa.DateTime(timezone=True)),
    sa.column("first_response_due_at", sa.DateTime(timezone=True)),
    sa.column("resolution_due_at", sa.DateTime(timezone=True)),
    sa.column("paused_seconds", sa.Integer),
    sa.column("queue_due_at", sa.DateTime(timezone=True)),
)


def _backfill() -> None:
    """crowdservice.models.queue_due for every row, in Python so both databases agree (SQLite
    keeps datetimes as text, without interval arithmetic)."""
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(
                escalations.c.id,
                escalations.c.first_response_at,
                escalations.c.first_response_due_at,
                escalations.c.resolution_due_at,
                escalations.c.paused_seconds,
            )
            .where(escalations.c.id > last)
            .order_by(escalations.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        values = [
            {
                "row_id": row.id,
                "due": row.first_response_due_at
                if row.first_response_at is None
                else row.resolution_due_at + timedelta(seconds=row.paused_seconds or 0),
            }
            for row in rows
        ]
        connection.execute(
            escalations.update()
            .where(escalations.c.id == sa.bindparam("row_id"))
            .values(queue_due_at=sa.bindparam("due")),
            values,
        )
        last = rows[-1].id


def upgrade() -> None:
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue_due_at", sa.DateTime(timezone=True), nullable=True))
    _backfill()
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.alter_column(
            "queue_due_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.create_index(
            "ix_escalations_queue_due",
            ["brand_id", "queue_due_at", "priority", "id"],
            unique=False,
            postgresql_where=sa.text(ACTIVE),
            sqlite_where=sa.text(ACTIVE),
        )
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_threads_not_visible",
            ["id"],
            unique=False,
            postgresql_where=sa.text("visibility <> 'visible'"),
            sqlite_where=sa.text("visibility <> 'visible'"),
        )
    with op.batch_alter_table("sla_breaches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sla_breaches_open",
            ["kind", "priority"],
            unique=False,
            postgresql_where=sa.text("met_at IS NULL"),
            sqlite_where=sa.text("met_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("sla_breaches", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_breaches_open")
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_index("ix_threads_not_visible")
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_index("ix_escalations_queue_due")
        batch_op.drop_column("queue_due_at")
