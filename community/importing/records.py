"""The records every source yields and the writer stores.

A source names each record by its own id (`external_id`); the writer keeps a map from
(source, kind, external id) to our row, which is what makes an import idempotent: a record
already mapped is skipped, so running an import twice changes nothing and running it on a
newer dump adds only what is new. Bodies arrive as Markdown (our storage format); the writer
renders and sanitizes them like any post, or sanitizes the source's own HTML when it has it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from community.core.models import ThreadKind

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class UserRecord:
    external_id: int
    display_name: str
    reputation: int
    created_at: datetime
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionRecord:
    external_id: int
    author_external_id: int | None  # None: the author's account was deleted at the source
    title: str
    body_markdown: str
    tags: list[str]
    view_count: int
    score: int
    created_at: datetime
    last_activity_at: datetime
    accepted_answer_external_id: int | None = None
    locale: str = "en"
    kind: ThreadKind = ThreadKind.QUESTION
    source_url: str | None = None  # attribution: the original page
    # The page's own HTML when the source has it: sanitized, it is shown as the source showed it
    # (and ten times faster than rendering the Markdown again); edits render the Markdown.
    body_html: str | None = None


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    external_id: int
    question_external_id: int
    author_external_id: int | None
    body_markdown: str
    score: int
    created_at: datetime
    body_html: str | None = None


@dataclass(frozen=True, slots=True)
class CommentRecord:
    external_id: int
    post_external_id: int  # a question's or an answer's external id
    author_external_id: int | None
    author_name: str | None  # shown when the author's account is gone
    text: str
    score: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class VoteTotals:
    """Votes arrive as aggregates: most dumps carry no voter ids."""

    post_external_id: int
    up: int
    down: int


@dataclass(frozen=True, slots=True)
class DuplicateLink:
    duplicate_external_id: int  # a question's external id
    original_external_id: int


@dataclass(frozen=True, slots=True)
class Closure:
    """Where a question's last close or reopen at the source left it."""

    question_external_id: int
    # Our `closed_reason` code ("off_topic", "too_broad", ...); None: reopened, so open.
    reason: str | None


@dataclass
class Skips:
    """Rows read but not imported, by reason (shown in the final summary)."""

    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, count: int = 1) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + count


@dataclass(frozen=True, slots=True)
class Part(Generic[T]):
    """One stream of records (a file, for a dump) with what is needed to show its progress.

    `size` is the total in `unit`s when known (bytes of a file, or records); `position()`
    says how far the stream has got, in the same unit.
    """

    label: str
    records: Iterator[T]
    size: int | None
    position: Callable[[], int]
    skips: Skips


class Source(Protocol):
    """What a reader offers. `name` scopes idempotency: the same name means the same records.

    The parts are consumed in this order, each at most once: users, tags, questions, answers,
    comments, votes, duplicates, closures.
    """

    name: str
    site_label: str  # shown in attribution, e.g. "beer.stackexchange.com"

    def users(self) -> Part[UserRecord]: ...

    def tags(self) -> Part[str]: ...

    def questions(self) -> Part[QuestionRecord]: ...

    def answers(self) -> Part[AnswerRecord]: ...

    def comments(self) -> Part[CommentRecord]: ...

    def votes(self) -> Part[VoteTotals]: ...

    def duplicates(self) -> Part[DuplicateLink]: ...

    def closures(self) -> Part[Closure]: ...
