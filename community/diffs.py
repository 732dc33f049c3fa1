"""Line diffs between consecutive revisions of a post, for the history page."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from community.revisions import ShownRevision


@dataclass
class RevisionEntry:
    revision: ShownRevision
    lines: list[tuple[str, str]] = field(default_factory=list)  # (kind, text)
    title_change: tuple[str, str] | None = None
    tags_change: tuple[str, str] | None = None


def diff_lines(before: str, after: str) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            lines.append(("hunk", "…"))
        elif line.startswith("+"):
            lines.append(("add", line[1:]))
        elif line.startswith("-"):
            lines.append(("del", line[1:]))
        else:
            lines.append(("ctx", line[1:]))
    return lines


def revision_diffs(history: list[ShownRevision]) -> list[RevisionEntry]:
    """Newest first; the oldest entry shows the original text in full. A version whose text
    the viewer may not see has no lines, and the version after it is shown in full rather
    than as a diff (whose removed lines would be the hidden text)."""
    entries: list[RevisionEntry] = []
    previous: ShownRevision | None = None
    for revision in history:
        entry = RevisionEntry(revision=revision)
        text = revision.body_source
        if text is not None and (previous is None or previous.body_source is None):
            entry.lines = [("ctx", line) for line in text.splitlines()]
        elif text is not None and previous is not None and previous.body_source is not None:
            entry.lines = diff_lines(previous.body_source, text)
            if (previous.title or "") != (revision.title or ""):
                entry.title_change = (previous.title or "", revision.title or "")
            if (previous.tags or "") != (revision.tags or ""):
                entry.tags_change = (previous.tags or "", revision.tags or "")
        entries.append(entry)
        previous = revision
    return list(reversed(entries))
