"""Counters on hot rows, added when the transaction commits rather than where the change is made.

Every new answer in a forum adds one to the forum's row, every vote moves its author's
reputation: recorded here and applied just before COMMIT (community.core.at_commit), answers in
the same forum or votes for the same author hold the row's lock for one statement, not for the
rest of the request. The rows are updated in a fixed order, so two transactions never wait for
each other in a cycle: a post's, a thread's and an author's rows first, then (after the outbox
events about them, community.core.at_commit) a forum's, the row every writer in the forum
shares, so that it is locked last and held shortest; by id within a table. It is also the order
in which the other writers lock them: a first answer changes its thread's status, and moving
or hiding a thread locks the thread, before the commit and its forum's counters.

Nothing is lost or counted twice: the increments are part of the transaction. Objects of these
rows loaded in the session get the committed totals (the UPDATE returns them), so rendering after
the commit needs no query. Inside the transaction, before the commit, the row still shows the
earlier totals.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, Update, bindparam, case, inspect, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from community.core.at_commit import COUNTERS_ORDER, SHARED_COUNTERS_ORDER, Deferred
from community.core.db import Base


@dataclass
class _Change:
    model: type[Base]
    row_id: int
    deltas: dict[str, int]
    latest: dict[str, datetime] = field(default_factory=dict)


def add_at_commit(
    db: Session,
    model: type[Base],
    row_id: int,
    *,
    latest: dict[str, datetime] | None = None,
    **deltas: int,
) -> None:
    """Add `deltas` to the row's integer columns at commit; the columns of `latest` become at
    least the given time (the later of the stored and the given one)."""
    deferred = _SHARED if model.__tablename__ in _SHARED_TABLES else _DEFERRED
    deferred.add(db, _Change(model, row_id, dict(deltas), dict(latest or {})))


def _totals(changes: list[_Change]) -> dict[tuple[str, int], _Change]:
    merged: dict[tuple[str, int], _Change] = {}
    for change in changes:
        key = (change.model.__tablename__, change.row_id)
        total = merged.setdefault(key, _Change(change.model, change.row_id, {}))
        for name, delta in change.deltas.items():
            total.deltas[name] = total.deltas.get(name, 0) + delta
        for name, moment in change.latest.items():
            total.latest[name] = max(total.latest.get(name, moment), moment)
    return merged


def _apply(db: Session, change: _Change) -> None:
    model = change.model
    moved = tuple(sorted(name for name, delta in change.deltas.items() if delta))
    latest = tuple(sorted(change.latest))
    if not moved and not latest:
        return
    params: dict[str, Any] = {"row_id": change.row_id}
    params.update((f"delta_{name}", change.deltas[name]) for name in moved)
    params.update((f"latest_{name}", change.latest[name]) for name in latest)
    row = db.execute(_increment(model, moved, latest), params).one_or_none()
    loaded = db.identity_map.get(inspect(model).identity_key_from_primary_key((change.row_id,)))
    if row is not None and loaded is not None:
        for name, value in zip(sorted(moved + latest), row, strict=True):
            set_committed_value(loaded, name, value)


@functools.cache
def _increment(model: type[Base], moved: tuple[str, ...], latest: tuple[str, ...]) -> Update:
    """The UPDATE for these columns, built once (every vote and answer sends one or two):
    parameters row_id, delta_<column>, latest_<column>; returns the new values by column name."""
    # On the table, not the mapped class: a plain UPDATE, without the ORM's bulk-update machinery
    # (the loaded object gets the new totals from RETURNING, above).
    table = cast(Table, model.__table__)
    values: dict[str, Any] = {name: table.c[name] + bindparam(f"delta_{name}") for name in moved}
    for name in latest:
        column = table.c[name]
        moment = bindparam(f"latest_{name}", type_=column.type)
        values[name] = case((column.is_(None) | (column < moment), moment), else_=column)
    return (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(values)
        .returning(*(table.c[name] for name in sorted(values)))
    )


# Rows every writer in a forum shares: sent after the outbox events, last before the COMMIT.
_SHARED_TABLES = frozenset({"forums"})
# Within the other counters: a thread's before its author's; tables not named come first.
_ORDER = ("threads", "users")


def _lock_order(item: tuple[tuple[str, int], _Change]) -> tuple[int, str, int]:
    (table, row_id), _change = item
    rank = _ORDER.index(table) + 1 if table in _ORDER else 0
    return rank, table, row_id


def _apply_all(db: Session, changes: list[_Change]) -> None:
    for _key, change in sorted(_totals(changes).items(), key=_lock_order):
        _apply(db, change)


_DEFERRED = Deferred("counters", _apply_all, order=COUNTERS_ORDER)
_SHARED = Deferred("counters.shared", _apply_all, order=SHARED_COUNTERS_ORDER)
