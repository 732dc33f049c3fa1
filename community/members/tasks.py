"""The members package's background jobs: checking members for the badges events asked about."""

from __future__ import annotations

from community.core.jobs import Worker
from community.members import badges


def register(worker: Worker) -> None:
    worker.register(badges.BADGE_EVENT, badges.check)
