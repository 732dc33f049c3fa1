"""Every insights panel by the name the API and the CSV export use: how to compute it and how
to write it as rows. The page, `/api/v1/analytics/<brand>/<panel>` and `<panel>.csv` all go
through this table, so a panel added here is in all three."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from community.core.models import Brand
from crowdservice.insights import (
    announcements,
    crowd,
    deflection,
    export,
    gaps,
    health,
    self_service,
    service_levels,
    volume,
)
from crowdservice.insights.period import InsightsFilter


@dataclass(frozen=True, slots=True)
class Panel:
    compute: Callable[[Session, Brand, InsightsFilter, datetime], Any]
    rows: Callable[[Any], list[dict[str, object]]]
    columns: Sequence[str]


PANELS: dict[str, Panel] = {
    "service": Panel(
        lambda db, brand, period, now: service_levels.service_panel(db, brand, period, now=now),
        export.service_rows,
        export.SERVICE_COLUMNS,
    ),
    "volume": Panel(
        lambda db, brand, period, _now: volume.volume(db, brand, period),
        export.volume_rows,
        export.VOLUME_COLUMNS,
    ),
    "self-service": Panel(
        lambda db, brand, period, now: self_service.self_service_panel(db, brand, period, now=now),
        self_service.self_service_rows,
        self_service.SELF_SERVICE_COLUMNS,
    ),
    "crowd": Panel(
        lambda db, brand, period, now: crowd.crowd_panel(db, brand, period, now=now),
        crowd.crowd_rows,
        crowd.CROWD_COLUMNS,
    ),
    "health": Panel(
        lambda db, brand, period, now: health.health_panel(db, brand, period, now=now),
        health.health_rows,
        health.HEALTH_COLUMNS,
    ),
    "deflection": Panel(
        lambda db, brand, period, now: deflection.deflection_panel(db, brand, period, now=now),
        deflection.deflection_rows,
        deflection.DEFLECTION_COLUMNS,
    ),
    "announcements": Panel(
        lambda db, brand, period, now: announcements.announcements_panel(
            db, brand, period, now=now
        ),
        announcements.announcements_rows,
        announcements.ANNOUNCEMENTS_COLUMNS,
    ),
    "gaps": Panel(
        lambda db, brand, period, now: gaps.gaps_panel(db, brand, period, now=now),
        gaps.gaps_rows,
        gaps.GAPS_COLUMNS,
    ),
}


def compute_all(
    db: Session, brand: Brand, period: InsightsFilter, *, now: datetime
) -> dict[str, Any]:
    return {name: panel.compute(db, brand, period, now) for name, panel in PANELS.items()}
