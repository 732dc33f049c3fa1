"""Moderation's background jobs: raising trust levels and ending expired suspensions."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from community.core.db import begin_write
from community.core.jobs import Worker
from moderation import accounts, trust

logger = logging.getLogger(__name__)


def register(worker: Worker) -> None:
    worker.every("trust and suspensions", timedelta(minutes=10), sweep)


def sweep(db: Session) -> None:
    begin_write(db)
    promoted = trust.promote_active_members(db)
    ended = accounts.end_expired_suspensions(db)
    if promoted or ended:
        logger.info("trust levels raised: %d; suspensions ended: %d", promoted, ended)
