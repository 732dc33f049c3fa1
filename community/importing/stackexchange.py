"""Reading a Stack Exchange data dump (Posts.xml, Users.xml, Votes.xml, Comments.xml,
PostLinks.xml, Tags.xml, and PostHistory.xml when the dump has it) as a stream of records.

Every file is read with lxml's iterparse and each row is cleared once read, so memory stays
flat whatever the file size; the one exception is Votes.xml, whose rows are summed per post
(a counter per voted post, not per vote) because the dump is not ordered by post, and
PostHistory.xml, of which only each question's last close or reopen is kept. Before any
record is produced, `validate()` reads every file once: a missing file or malformed XML stops
the import with the file and line, before anything is written.

Bodies are HTML in the dump; they become Markdown (our storage format, so they can be edited
like any post) through html-to-markdown, and the dump's HTML, run through our sanitizer, is what
pages show until someone edits the post.
A row that cannot be read (a missing id, a broken date) is skipped and counted, not fatal.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TypeVar

from html_to_markdown import convert
from lxml import etree

from community.importing.records import (
    AnswerRecord,
    Closure,
    CommentRecord,
    DuplicateLink,
    Part,
    QuestionRecord,
    Skips,
    UserRecord,
    VoteTotals,
)

FILES = ("Users.xml", "Tags.xml", "Posts.xml", "Comments.xml", "Votes.xml", "PostLinks.xml")
# Older dumps come without it: they import as before, with no closures but duplicates.
OPTIONAL_FILES = ("PostHistory.xml",)
QUESTION, ANSWER = "1", "2"
VOTE_ACCEPTED, VOTE_UP, VOTE_DOWN, VOTE_FAVOURITE = "1", "2", "3", "5"
VOTE_BOUNTY = frozenset({"8", "9"})
LINK_DUPLICATE = "3"
HISTORY_CLOSED, HISTORY_REOPENED = "10", "11"
# A close event's reason id (its Comment) -> our `closed_reason`. 1-10 are the older dumps'.
CLOSE_REASONS = {
    "101": "duplicate",
    "1": "duplicate",
    "102": "off_topic",
    "2": "off_topic",
    "103": "unclear",
    "4": "unclear",
    "104": "too_broad",
    "105": "opinion",
    "3": "opinion",
    "7": "too_localized",
    "10": "general_reference",
}
CLOSE_REASON_OTHER = "other"
TITLE_MAX = 200
NAME_MAX = 60
_TAG_SPLIT = re.compile(r"[<>|]+")
_SITE = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
R = TypeVar("R")


class DumpError(Exception):
    """The dump cannot be imported as it is (a missing file, malformed XML)."""


class BadRow(Exception):
    """One row lacks what it needs; it is skipped and counted."""


class _Tracked:
    """A binary file that remembers how far it has been read, for the progress bar."""

    def __init__(self, path: Path) -> None:
        self.file: IO[bytes] = path.open("rb")
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        self.position += len(chunk)
        return chunk

    def close(self) -> None:
        self.file.close()


def _rows(path: Path, tracked: _Tracked) -> Iterator[etree._Element]:
    try:
        # No DTDs, no entity expansion, no network: a hostile dump cannot reach files or hosts
        # or blow up memory through entities.
        rows = etree.iterparse(
            tracked, tag="row", resolve_entities=False, no_network=True, load_dtd=False,
            huge_tree=True,
        )  # fmt: skip
        for _event, element in rows:
            yield element
            element.clear()
            parent = element.getparent()
            while parent is not None and element.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as exc:
        raise DumpError(f"{path.name}: line {exc.lineno}: {exc.msg}") from None
    finally:
        tracked.close()


def _int(row: etree._Element, name: str) -> int:
    value = row.get(name)
    if value is None:
        raise BadRow(f"missing {name}")
    try:
        return int(value)
    except ValueError:
        raise BadRow(f"bad {name}") from None


def _optional_int(row: etree._Element, name: str) -> int | None:
    return _int(row, name) if row.get(name) not in (None, "") else None


def _date(row: etree._Element, name: str) -> datetime:
    value = row.get(name)
    if not value:
        raise BadRow(f"missing {name}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRow(f"bad {name}") from None
    # Dump dates are UTC without a zone.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _text(value: str | None, limit: int) -> str:
    text = unicodedata.normalize("NFC", " ".join((value or "").split()))
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    return text[:limit]


def to_markdown(body_html: str) -> str:
    if not body_html.strip():
        return ""
    return (convert(body_html).content or "").strip()


def split_tags(raw: str | None) -> list[str]:
    """`<wine><storage>` (older dumps) or `|wine|storage|` (newer ones) as a list."""
    return [name for name in _TAG_SPLIT.split(raw or "") if name]


class StackExchangeDump:
    """A dump directory as a `Source`. `limit` keeps the first N questions (and what hangs
    off them: the writer skips answers, comments and votes whose post was not imported)."""

    def __init__(self, directory: Path, *, site: str | None = None, limit: int | None = None):
        self.directory = directory
        self.site_label = site or directory.resolve().name
        self.name = f"stackexchange:{self.site_label}"
        self.limit = limit

    def validate(self) -> None:
        """Read every file once; raise DumpError naming the file (and line) if any is bad."""
        if not self.directory.is_dir():
            raise DumpError(f"{self.directory}: no such directory")
        for name in FILES + OPTIONAL_FILES:
            path = self.directory / name
            if not path.is_file():
                if name in OPTIONAL_FILES:
                    continue
                raise DumpError(f"{name}: missing from {self.directory}")
            rows = 0
            for _row in _rows(path, _Tracked(path)):
                rows += 1
            if rows == 0 and path.stat().st_size == 0:
                raise DumpError(f"{name}: line 1: the file is empty")

    def _part(
        self, label: str, file: str, convert_row: Callable[[etree._Element, Skips], R | None]
    ) -> Part[R]:
        path = self.directory / file
        tracked = _Tracked(path)
        skips = Skips()

        def records() -> Iterator[R]:
            for row in _rows(path, tracked):
                try:
                    record = convert_row(row, skips)
                except BadRow as exc:
                    skips.add(f"unreadable row ({exc})")
                    continue
                if record is not None:
                    yield record

        return Part(
            label=label,
            records=records(),
            size=path.stat().st_size,
            position=lambda: tracked.position,
            skips=skips,
        )

    def users(self) -> Part[UserRecord]:
        def convert_row(row: etree._Element, _skips: Skips) -> UserRecord:
            external_id = _int(row, "Id")
            return UserRecord(
                external_id=external_id,
                display_name=_text(row.get("DisplayName"), NAME_MAX) or f"user{external_id}",
                reputation=_optional_int(row, "Reputation") or 0,
                created_at=_date(row, "CreationDate"),
            )

        return self._part("Users.xml", "Users.xml", convert_row)

    def tags(self) -> Part[str]:
        def convert_row(row: etree._Element, _skips: Skips) -> str:
            name = row.get("TagName")
            if not name:
                raise BadRow("missing TagName")
            return str(name)

        return self._part("Tags.xml", "Tags.xml", convert_row)

    def _source_url(self, question_id: int) -> str | None:
        if not _SITE.match(self.site_label):
            return None
        return f"https://{self.site_label}/q/{question_id}"

    def questions(self) -> Part[QuestionRecord]:
        taken = 0

        def convert_row(row: etree._Element, skips: Skips) -> QuestionRecord | None:
            nonlocal taken
            if row.get("PostTypeId") != QUESTION:
                return None
            if self.limit is not None and taken >= self.limit:
                skips.add("beyond --limit")
                return None
            external_id = _int(row, "Id")
            created_at = _date(row, "CreationDate")
            record = QuestionRecord(
                external_id=external_id,
                author_external_id=_optional_int(row, "OwnerUserId"),
                title=_text(row.get("Title"), TITLE_MAX) or f"Question {external_id}",
                body_markdown=to_markdown(row.get("Body") or ""),
                tags=split_tags(row.get("Tags")),
                view_count=max(_optional_int(row, "ViewCount") or 0, 0),
                score=_optional_int(row, "Score") or 0,
                created_at=created_at,
                last_activity_at=(
                    _date(row, "LastActivityDate") if row.get("LastActivityDate") else created_at
                ),
                accepted_answer_external_id=_optional_int(row, "AcceptedAnswerId"),
                source_url=self._source_url(external_id),
                body_html=row.get("Body") or "",
            )
            taken += 1
            return record

        return self._part("Posts.xml (questions)", "Posts.xml", convert_row)

    def answers(self) -> Part[AnswerRecord]:
        def convert_row(row: etree._Element, skips: Skips) -> AnswerRecord | None:
            kind = row.get("PostTypeId")
            if kind == QUESTION:
                return None
            if kind != ANSWER:
                skips.add("tag wikis and other post types (not Q&A)")
                return None
            return AnswerRecord(
                external_id=_int(row, "Id"),
                question_external_id=_int(row, "ParentId"),
                author_external_id=_optional_int(row, "OwnerUserId"),
                body_markdown=to_markdown(row.get("Body") or ""),
                score=_optional_int(row, "Score") or 0,
                created_at=_date(row, "CreationDate"),
                body_html=row.get("Body") or "",
            )

        return self._part("Posts.xml (answers)", "Posts.xml", convert_row)

    def comments(self) -> Part[CommentRecord]:
        def convert_row(row: etree._Element, _skips: Skips) -> CommentRecord:
            return CommentRecord(
                external_id=_int(row, "Id"),
                post_external_id=_int(row, "PostId"),
                author_external_id=_optional_int(row, "UserId"),
                author_name=_text(row.get("UserDisplayName"), NAME_MAX) or None,
                text=(row.get("Text") or "").strip(),
                score=_optional_int(row, "Score") or 0,
                created_at=_date(row, "CreationDate"),
            )

        return self._part("Comments.xml", "Comments.xml", convert_row)

    def votes(self) -> Part[VoteTotals]:
        path = self.directory / "Votes.xml"
        tracked = _Tracked(path)
        skips = Skips()

        def records() -> Iterator[VoteTotals]:
            totals: dict[int, list[int]] = {}
            for row in _rows(path, tracked):
                kind = row.get("VoteTypeId")
                if kind not in (VOTE_UP, VOTE_DOWN):
                    skips.add(_ignored_vote(kind))
                    continue
                try:
                    post_id = _int(row, "PostId")
                except BadRow as exc:
                    skips.add(f"unreadable row ({exc})")
                    continue
                counts = totals.setdefault(post_id, [0, 0])
                counts[0 if kind == VOTE_UP else 1] += 1
            for post_id in sorted(totals):
                up, down = totals[post_id]
                yield VoteTotals(post_external_id=post_id, up=up, down=down)

        return Part(
            label="Votes.xml",
            records=records(),
            size=path.stat().st_size,
            position=lambda: tracked.position,
            skips=skips,
        )

    def duplicates(self) -> Part[DuplicateLink]:
        def convert_row(row: etree._Element, skips: Skips) -> DuplicateLink | None:
            if row.get("LinkTypeId") != LINK_DUPLICATE:
                skips.add("related links (not duplicates)")
                return None
            return DuplicateLink(
                duplicate_external_id=_int(row, "PostId"),
                original_external_id=_int(row, "RelatedPostId"),
            )

        return self._part("PostLinks.xml", "PostLinks.xml", convert_row)

    def closures(self) -> Part[Closure]:
        """Each post's last close or reopen (by date, then event id), in post order. Close
        events are on questions only; the importer skips ids it has no question for."""
        path = self.directory / "PostHistory.xml"
        skips = Skips()
        if not path.is_file():
            return Part(
                label="PostHistory.xml", records=iter(()), size=0, position=lambda: 0, skips=skips
            )
        tracked = _Tracked(path)

        def records() -> Iterator[Closure]:
            last: dict[int, tuple[datetime, int, str | None]] = {}
            for row in _rows(path, tracked):
                kind = row.get("PostHistoryTypeId")
                if kind not in (HISTORY_CLOSED, HISTORY_REOPENED):
                    continue  # edits and other events: not rows we read, so not skips
                try:
                    post_id, event_id = _int(row, "PostId"), _int(row, "Id")
                    at = _date(row, "CreationDate")
                except BadRow as exc:
                    skips.add(f"unreadable row ({exc})")
                    continue
                reason = None
                if kind == HISTORY_CLOSED:
                    code = (row.get("Comment") or "").strip()
                    reason = CLOSE_REASONS.get(code, CLOSE_REASON_OTHER)
                if post_id in last:
                    skips.add("earlier close or reopen (the last one decides)")
                    if (at, event_id) < last[post_id][:2]:
                        continue
                last[post_id] = (at, event_id, reason)
            for post_id in sorted(last):
                yield Closure(question_external_id=post_id, reason=last[post_id][2])

        return Part(
            label="PostHistory.xml",
            records=records(),
            size=path.stat().st_size,
            position=lambda: tracked.position,
            skips=skips,
        )


def _ignored_vote(kind: str | None) -> str:
    if kind == VOTE_ACCEPTED:
        return "acceptance votes (taken from the question instead)"
    if kind == VOTE_FAVOURITE:
        return "favourites (ignored)"
    if kind in VOTE_BOUNTY:
        return "bounties (ignored)"
    return "other vote types (ignored)"
