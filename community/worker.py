"""The worker process: the core's job runner with every package's jobs registered.

`community worker` runs it as its own process; embedded mode runs it on a thread inside
`community serve` (start_in_background).
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from community import tasks as community_tasks
from community.core import jobs
from community.core.jobs import start_in_background
from community.core.settings import Settings
from community.wiring import subscribe_all
from crowdservice import tasks as crowdservice_tasks
from kb import search_model_tasks as kb_search_model_tasks
from kb import tasks as kb_tasks
from kb.search import SearchEngine
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
        subscribe_all()  # jobs publish domain events too (a sweep closing a thread)
        community_tasks.register(self)  # notification e-mails, daily digests
        moderation_tasks.register(self)  # trust levels, suspensions
        self.search = SearchEngine(settings)
        self.indexer = kb_tasks.register(self, self.search)
        kb_search_model_tasks.register(self, self.indexer)
        crowdservice_tasks.register(self)  # escalation sweep, webhook deliveries
