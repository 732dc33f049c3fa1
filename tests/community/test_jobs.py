"""The job runner knows no job: each package's tasks.register(worker) adds its own, and the
worker process (community.worker) registers them all."""

from __future__ import annotations

from sqlalchemy import Engine

from community.accounts.registration import (
    CHANGE_JOB,
    CHANGE_NOTICE_JOB,
    CONFIRM_JOB,
    RESET_JOB,
    SIGN_UP_JOB,
)
from community.accounts.sso import LINKED_EVENT
from community.core import jobs
from community.core.db import make_session_factory
from community.core.indexing import (
    ARTICLE_CHANGED,
    BRAND_SEARCH_SETTINGS,
    SCOPE_CHANGED,
    THREAD_CHANGED,
)
from community.core.notifications import EMAIL_EVENT, MILESTONE_EVENT
from community.core.settings import Settings
from community.members.badges import BADGE_EVENT
from community.visibility import ANNOUNCE_EVENT
from community.worker import Worker
from crowdservice.known_issues.linking import LINK_THREAD
from crowdservice.known_issues.notices import FIXED_EVENT
from kb.search_model import MODEL_CHANGED
from kb.vectors import FIRST_THREAD_VECTOR, VECTORS_NEEDED


def test_the_core_job_runner_starts_without_jobs(settings: Settings, engine: Engine) -> None:
    runner = jobs.Worker(settings, make_session_factory(engine))

    assert (runner.handlers, runner.batch_handlers, runner.periodic) == ({}, {}, [])


def test_the_worker_process_has_every_packages_jobs(settings: Settings, engine: Engine) -> None:
    worker = Worker(settings, make_session_factory(engine))

    assert set(worker.handlers) == {
        EMAIL_EVENT,
        MILESTONE_EVENT,
        ANNOUNCE_EVENT,
        FIXED_EVENT,
        LINK_THREAD,
        BADGE_EVENT,
        RESET_JOB,
        SIGN_UP_JOB,
        CONFIRM_JOB,
        CHANGE_JOB,
        CHANGE_NOTICE_JOB,
        LINKED_EVENT,
    }
    assert set(worker.batch_handlers) == {
        THREAD_CHANGED,
        ARTICLE_CHANGED,
        BRAND_SEARCH_SETTINGS,
        VECTORS_NEEDED,
        FIRST_THREAD_VECTOR,
        MODEL_CHANGED,
        SCOPE_CHANGED,
    }
    assert [task.name for task in worker.periodic] == [
        "digests",
        "trust and suspensions",
        "escalations",
        "weekly insights",
        "webhook deliveries",
        "expired sign-in records",
    ]
