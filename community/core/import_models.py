"""What an import leaves behind: a key per imported record (what makes re-running safe) and a
row per run with its summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from community.core.clock import utcnow
from community.core.db import Base, BigIntId, JSONDocument, UTCDateTime


class ImportRun(Base):
    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    source: Mapped[str] = mapped_column(String(120))
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    forum_id: Mapped[int] = mapped_column(ForeignKey("forums.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Per part: rows read, imported, skipped by reason.
    summary: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)


class ImportKey(Base):
    """Record `external_id` of `kind` from `source` is our row `local_id`.

    `ref_external_id` keeps the one source reference resolved later: a question's accepted
    answer. `run_id` says which run brought it, so per-run steps touch only new rows.
    """

    __tablename__ = "import_keys"
    __table_args__ = (Index("ix_import_keys_run", "run_id", "kind"),)

    source: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    external_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    local_id: Mapped[int] = mapped_column(BigInteger)
    ref_external_id: Mapped[int | None] = mapped_column(BigInteger)
    run_id: Mapped[int] = mapped_column(Integer)
