"""Possible duplicates for staff: when a new question gets its first vector, the worker looks
for the threads it may duplicate. (Built in the duplicates branch.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from community.outbox import OutboxEvent
from kb.search import SearchEngine
from kb.vectors import FIRST_THREAD_VECTOR

if TYPE_CHECKING:
    from community.worker import Worker


def register(worker: Worker, engine: SearchEngine) -> None:
    def on_first_vector(_db: Session, _event: OutboxEvent) -> None:
        return None

    worker.register(FIRST_THREAD_VECTOR, on_first_vector)
