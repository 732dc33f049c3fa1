"""A post's body fingerprint, indexed with its author: the repeat filter looks up an identical
post of the last day in one index probe, where it read and hashed every post the author wrote
that day (issue 14: a new answer from an active member). Posts of the last day get theirs now;
older ones are past the filter's window and keep none.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 02:30:00.000000
"""

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# community.threads.body_fingerprint and moderation.filters.REPEAT_WINDOW as of this revision.
_SPACES = re.compile(r"\s+")
REPEAT_WINDOW = timedelta(hours=24)


def _fingerprint(text: str) -> str:
    return hashlib.sha256(_SPACES.sub(" ", text.lower()).strip().encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_fingerprint", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_posts_author_fingerprint", ["author_id", "body_fingerprint"], unique=False
        )
    bind = op.get_bind()
    posts = sa.table(
        "posts",
        sa.column("id", sa.BigInteger()),
        sa.column("body_source", sa.Text()),
        sa.column("body_fingerprint", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    since = datetime.now(UTC) - REPEAT_WINDOW
    if bind.dialect.name == "sqlite":
        since = since.replace(tzinfo=None)  # stored as naive UTC text there
    recent = bind.execute(
        sa.select(posts.c.id, posts.c.body_source).where(posts.c.created_at >= since)
    ).all()
    if recent:
        bind.execute(
            posts.update()
            .where(posts.c.id == sa.bindparam("post_id"))
            .values(body_fingerprint=sa.bindparam("fingerprint")),
            [{"post_id": row.id, "fingerprint": _fingerprint(row.body_source)} for row in recent],
        )


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index("ix_posts_author_fingerprint")
        batch_op.drop_column("body_fingerprint")
