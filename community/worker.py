"""The worker process: the core's job runner with every package's jobs registered.

`community worker` runs it as its own process; embedded mode runs it on a thread inside
`community serve` (start_in_background).
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from community import tasks as community_tasks
from community.accounts import sso as accounts_sso
from community.accounts import tasks as accounts_tasks
from community.core import jobs
from community.core.jobs import start_in_background
from community.core.settings import Settings
from community.members import tasks as members_tasks
from community.wiring import subscribe_all
from crowdservice import tasks as crowdservice_tasks
from kb import tasks as kb_tasks
from moderation import tasks as moderation_tasks

__all__ = ["Worker", "start_in_background"]


class Worker(jobs.Worker):
    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        worker_id: str | None = None,
    ) -> None:
        super().__init__(settings, session_factory, worker_id=worker_id)
        # A job that calls a service sends the same domain events as a request does.
        subscribe_all()
        community_tasks.register(self)  # notification e-mails, daily digests
        moderation_tasks.register(self)  # trust levels, suspensions
        # Search indexing, vectors, possible duplicates, search-model changes.
        self.indexer = kb_tasks.register(self)
        self.search = self.indexer.engine
        crowdservice_tasks.register(self)  # escalation sweep, webhook deliveries
        members_tasks.register(self)  # badges
        accounts_sso.register(self)  # "your account was linked to single sign-on" e-mails
        accounts_tasks.register(self)  # reset, confirmation and change-of-address e-mails
