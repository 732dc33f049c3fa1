"""The worker's side of a change of a brand's semantic search model (kb.search_model): the
brand's indexes get the new model's embedders and lose the old ones. Meilisearch cannot add a
`userProvided` embedder to an index whose documents have no vectors for it, so Indexer's
ensure_brand then builds the brand's indexes anew beside the live ones and swaps them in
(searchers never see an empty index); the vector events queued with the change send each
document again with its new vector. Until then a document is found by its words."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from community.core.jobs import Worker
from community.core.models import Brand
from community.core.outbox import OutboxEvent
from kb.search_model import MODEL_CHANGED
from kb.tasks import Indexer


class ModelChange:
    def __init__(self, indexer: Indexer, session_factory: sessionmaker[Session]) -> None:
        self.indexer = indexer
        self.session_factory = session_factory

    def run(self, brand_ids: list[int]) -> None:
        for brand_id in brand_ids:
            with self.session_factory() as db:
                brand = db.get(Brand, brand_id)
                if brand is None:
                    continue
                db.expunge(brand)
            self.indexer.ensure_brand(brand, force=True)


def register(worker: Worker, indexer: Indexer) -> None:
    change = ModelChange(indexer, worker.session_factory)

    def on_changed(_db: Session, events: list[OutboxEvent]) -> Callable[[], None]:
        brand_ids = sorted({int(event.payload["brand_id"]) for event in events})
        return lambda: change.run(brand_ids)

    worker.register_batch(MODEL_CHANGED, on_changed)
