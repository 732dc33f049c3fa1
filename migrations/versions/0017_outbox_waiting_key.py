"""One waiting outbox event per kind and dedupe key, as a partial unique index: a change finds
the waiting event with its INSERT (ON CONFLICT ... DO UPDATE, which also locks it) instead of a
locked SELECT and an INSERT (issue 14: a round trip less on every vote and answer). Waiting
duplicates that concurrent writers left behind are merged first: handlers re-read the current
state, so the earliest covers them all.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING_KEYED = "dedupe_key IS NOT NULL AND done_at IS NULL AND claimed_by IS NULL"


def upgrade() -> None:
    op.execute(
        "DELETE FROM outbox_events WHERE dedupe_key IS NOT NULL AND done_at IS NULL"
        " AND claimed_by IS NULL AND id > (SELECT min(earliest.id) FROM outbox_events earliest"
        " WHERE earliest.kind = outbox_events.kind"
        " AND earliest.dedupe_key = outbox_events.dedupe_key"
        " AND earliest.done_at IS NULL AND earliest.claimed_by IS NULL)"
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_pending_key")
        batch_op.create_index(
            "uq_outbox_events_waiting_key",
            ["kind", "dedupe_key"],
            unique=True,
            postgresql_where=sa.text(WAITING_KEYED),
            sqlite_where=sa.text(WAITING_KEYED),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("uq_outbox_events_waiting_key")
        batch_op.create_index(
            "ix_outbox_events_pending_key", ["kind", "dedupe_key", "done_at"], unique=False
        )
