"""Line diffs between consecutive revisions of a post, for the history page."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from community.models import PostRevision


@dataclass
class RevisionEntry:
    revision: PostRevision
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


def revision_diffs(history: list[PostRevision]) -> list[RevisionEntry]:
    """Newest first; the oldest entry shows the original text in full."""
    entries: list[RevisionEntry] = []
    previous: PostRevision | None = None
    for revision in history:
        entry = RevisionEntry(revision=revision)
        if previous is None:
            entry.lines = [("ctx", line) for line in revision.body_source.splitlines()]
        else:
            entry.lines = diff_lines(previous.body_source, revision.body_source)
            if (previous.title or "") != (revision.title or ""):
                entry.title_change = (previous.title or "", revision.title or "")
            if (previous.tags or "") != (revision.tags or ""):
                entry.tags_change = (previous.tags or "", revision.tags or "")
        entries.append(entry)
        previous = revision
    return list(reversed(entries))
