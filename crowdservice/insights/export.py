"""The panels as rows, for the CSV export: one file per panel, a `section` column saying which
part of the panel a row belongs to, the same numbers as the page and the JSON API."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from crowdservice.insights.service_levels import ServicePanel, Times
from crowdservice.insights.volume import VolumePanel

VOLUME_COLUMNS = ("section", "label", "threads", "answers")
SERVICE_COLUMNS = (
    "section", "priority", "count", "median_seconds", "p90_seconds", "target_seconds",
    "within", "counted", "pending", "share", "seconds_over", "still_missing",
)  # fmt: skip

Row = dict[str, object]


def volume_rows(panel: VolumePanel) -> list[Row]:
    rows: list[Row] = [
        {"section": "day", "label": day.day.isoformat(), "threads": day.threads,
         "answers": day.answers}
        for day in panel.days
    ]  # fmt: skip
    rows.append(
        {"section": "total", "label": "", "threads": panel.threads, "answers": panel.answers}
    )
    for section, shares in (
        ("forum", panel.by_forum),
        ("type", panel.by_type),
        ("sentiment", panel.by_sentiment),
        ("language", panel.by_language),
    ):
        rows += [{"section": section, "label": share.label, "threads": share.threads}
                 for share in shares]  # fmt: skip
    return rows


def _times(section: str, priority: str, value: Times) -> Row:
    return {
        "section": section,
        "priority": priority,
        "count": value.count,
        "median_seconds": value.median,
        "p90_seconds": value.p90,
    }


def service_rows(panel: ServicePanel) -> list[Row]:
    rows = [_times("first_response", "all", panel.first_response)]
    rows += [_times("first_response", key, value)
             for key, value in panel.first_response_by_priority.items()]  # fmt: skip
    rows += [
        {"section": "within_target", "priority": line.priority, "target_seconds":
         line.target_seconds, "within": line.within, "counted": line.counted,
         "pending": line.pending, "share": line.share}
        for line in panel.within_target
    ]  # fmt: skip
    rows.append(_times("resolution", "all", panel.resolution))
    rows += [_times("resolution", key, value)
             for key, value in panel.resolution_by_priority.items()]  # fmt: skip
    rows += [
        {"section": f"breach_{line.kind}", "priority": line.priority, "count": line.count,
         "seconds_over": line.seconds_over, "still_missing": line.still_missing}
        for line in panel.breaches
    ]  # fmt: skip
    rows += [{"section": f"open_{label}", "count": count} for label, count in panel.open_by_age]
    rows += [{"section": "load", "priority": name, "count": count} for name, count in panel.load]
    return rows


def to_csv(columns: Iterable[str], rows: list[Row]) -> str:
    """Empty cells for what a row does not have; numbers as Python writes them."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return out.getvalue()
