"""What an import run reports: per part, rows read, imported and skipped (with reasons), and
the seconds each step took. The run keeps it as its summary; the CLI and bench print it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# (label, position, size, rows): how far a part has got, for a progress bar.
ProgressFn = Callable[[str, int, int | None, int], None]


def no_progress(_label: str, _position: int, _size: int | None, _rows: int) -> None:
    return None


@dataclass
class PartReport:
    label: str
    read: int = 0
    imported: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    # What was left out of rows that were imported (a tag, say): not rows, so not in `read`.
    notes: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def note(self, what: str, count: int = 1) -> None:
        if count:
            self.notes[what] = self.notes.get(what, 0) + count


@dataclass
class ImportReport:
    source: str
    run_id: int
    brand: str
    forum: str
    parts: list[PartReport] = field(default_factory=list)
    rescored: int = 0
    triaged: int = 0
    indexed: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def part(self, label: str) -> PartReport:
        return next(part for part in self.parts if part.label == label)

    def as_dict(self) -> dict[str, Any]:
        return {
            "parts": [
                {
                    "label": p.label,
                    "read": p.read,
                    "imported": p.imported,
                    "skipped": p.skipped,
                    "notes": p.notes,
                }
                for p in self.parts
            ],
            "rescored": self.rescored,
            "triaged": self.triaged,
            "indexed": self.indexed,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }
