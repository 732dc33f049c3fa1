"""Crowd-service's background jobs: the escalation sweep (deadlines, reminders, hand-backs),
webhook deliveries and the admins' weekly insights summary."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from community.core.clock import utcnow
from community.core.db import begin_write
from community.core.jobs import Worker
from community.core.outbox import OutboxEvent
from crowdservice import webhooks as crowd_webhooks
from crowdservice.escalation_sweep import sweep
from crowdservice.insights.weekly import send_weekly_summaries
from crowdservice.known_issues import linking as known_issue_linking
from crowdservice.known_issues.notices import FIXED_EVENT, send_fix_notices

logger = logging.getLogger(__name__)


def register(worker: Worker) -> None:
    # Escalation deadlines are minutes long (P1: 10); a sweep every 30 s keeps them.
    worker.every("escalations", timedelta(seconds=30), escalation_sweep)
    # Looks hourly; sends once a week per brand (Monday morning UTC), so a worker that was
    # down on Monday still sends when it is back.
    worker.every("weekly insights", timedelta(hours=1), weekly_insights)
    crowd_webhooks.register(worker)
    # Known-issue matching: links each new question or problem to the issues it reports.
    known_issue_linking.register(worker)
    # Known issue fixed: tell the linked threads' authors and the followers.
    worker.register(FIXED_EVENT, known_issue_fixed)


def known_issue_fixed(db: Session, event: OutboxEvent) -> None:
    sent = send_fix_notices(db, int(event.payload["id"]))
    if sent:
        logger.info("known issue %s fixed: %d notices", event.payload["id"], sent)


def escalation_sweep(db: Session) -> None:
    begin_write(db)
    report = sweep(db)
    logger.debug("escalation sweep: %s", report)


def weekly_insights(db: Session) -> None:
    begin_write(db)
    made = send_weekly_summaries(db, now=utcnow())
    if made:
        logger.info("weekly insights: %d notifications", made)
