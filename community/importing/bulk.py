"""Bulk helpers the import steps share: batching, multi-row inserts that return ids, and the
Core tables behind the models (executemany UPDATEs bind by column name)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from community.core.models import Post, Tag, Thread

T = TypeVar("T")
THREADS = cast(Table, Thread.__table__)
POSTS = cast(Table, Post.__table__)
TAGS = cast(Table, Tag.__table__)


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def insert_ids(db: Session, model: type[Any], rows: list[dict[str, Any]]) -> list[int]:
    """Insert `rows` in one statement; their new ids, in the order of `rows`."""
    if not rows:
        return []
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list(db.scalars(statement, rows))
