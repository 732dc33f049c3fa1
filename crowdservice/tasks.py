"""Crowd-service's background jobs: the escalation sweep (deadlines, reminders, hand-backs) and
webhook deliveries."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from community.core.db import begin_write
from community.core.jobs import Worker
from crowdservice import webhooks as crowd_webhooks
from crowdservice.escalation_sweep import sweep

logger = logging.getLogger(__name__)


def register(worker: Worker) -> None:
    # Escalation deadlines are minutes long (P1: 10); a sweep every 30 s keeps them.
    worker.every("escalations", timedelta(seconds=30), escalation_sweep)
    crowd_webhooks.register(worker)


def escalation_sweep(db: Session) -> None:
    begin_write(db)
    report = sweep(db)
    logger.debug("escalation sweep: %s", report)
