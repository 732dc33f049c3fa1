"""The synthetic source: users, tags and threads as records, one part at a time.

Every part replays each thread's outline (`outline.py`) and then continues the thread's stream
for what only it needs: the question's author, then the answerers, then its text. See the
package docstring for the numbers.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

from community.importing.records import (
    AnswerRecord,
    Closure,
    CommentRecord,
    DuplicateLink,
    Part,
    QuestionRecord,
    Skips,
    Source,
    UserRecord,
    VoteTotals,
)
from community.importing.synthetic.outline import (
    ANCHOR_TS,
    DAY,
    DUPLICATE_DRAW,
    FOUNDERS,
    POST_ID_STRIDE,
    START_TS,
    WINDOW_S,
    Outline,
    author_pool,
    draw_outline,
    duplicate_of,
    head,
    utc,
)
from community.importing.synthetic.randomness import (
    Zipf,
    between,
    choice,
    hash64,
    lognormal,
    lomax,
    seeded,
    unit,
)
from community.importing.synthetic.text import Slots, answer_text, display_name, question_text
from community.importing.synthetic.vocabulary import (
    ACCOUNT,
    ANSWER_COMMENTS,
    EXTRA_TAGS,
    PRODUCTS,
    QUESTION_COMMENTS,
    TAG_VOCABULARY,
)

T = TypeVar("T")

COMMENT_ID_STRIDE = 100  # comment i on post p is 100p + i
MAX_COMMENTS = 20
SITE_LABEL = "synthetic data"

_EXTRA_TAG_RANKS = Zipf(EXTRA_TAGS)


class _Position:
    """How many records a part has yielded; the part's `position` callable."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        return self.count


def _part(label: str, records: Iterable[T], size: int | None) -> Part[T]:
    position = _Position()

    def stream() -> Iterator[T]:
        for record in records:
            position.count += 1
            yield record

    return Part(label=label, records=stream(), size=size, position=position, skips=Skips())


class SyntheticSource:
    """`threads` threads of a made-up brand's support community; see the package docstring."""

    site_label = SITE_LABEL

    def __init__(self, threads: int, *, seed: int = 1) -> None:
        if threads < 0:
            raise ValueError("threads must not be negative")
        self.threads = threads
        self.seed = seed
        self.name = f"synthetic:{seed}"  # no scale: a larger seed run extends a smaller one
        self.user_count = author_pool(threads)
        self._joined_salt = hash64(f"{seed}:joined")
        self._duplicate_salt = hash64(f"{seed}:duplicate")

    # -- parts ---------------------------------------------------------------------------------

    def users(self) -> Part[UserRecord]:
        records = (self._user(user) for user in range(1, self.user_count + 1))
        return _part("users", records, self.user_count)

    def tags(self) -> Part[str]:
        return _part("tags", iter(TAG_VOCABULARY), len(TAG_VOCABULARY))

    def questions(self) -> Part[QuestionRecord]:
        records = (self._question(self._outline(k)) for k in range(1, self.threads + 1))
        return _part("questions", records, self.threads)

    def answers(self) -> Part[AnswerRecord]:
        return _part("answers", self._answers(), None)

    def comments(self) -> Part[CommentRecord]:
        return _part("comments", self._comments(), None)

    def votes(self) -> Part[VoteTotals]:
        return _part("votes", self._votes(), None)

    def duplicates(self) -> Part[DuplicateLink]:
        return _part("duplicates", self._duplicates(), None)

    def closures(self) -> Part[Closure]:
        # Synthetic threads are closed only as duplicates (by `duplicates`).
        return _part("closures", iter(()), 0)

    # -- users ---------------------------------------------------------------------------------

    def _joined(self, user: int) -> int:
        share = unit(self._joined_salt, user)
        if user <= FOUNDERS:
            return START_TS - int((30 + 400 * share) * DAY)
        return START_TS - 120 * DAY + int((WINDOW_S + 120 * DAY) * share)

    def _author(self, rng: random.Random, thread: int, when: int, exponent: float) -> int:
        """A power-law pick among the users who had joined by `when`."""
        pool = author_pool(thread)
        for _ in range(3):
            user = 1 + int(pool * rng.random() ** exponent)
            if self._joined(user) < when:
                return user
        return between(rng, 1, FOUNDERS)  # they joined before any thread started

    def _user(self, user: int) -> UserRecord:
        rng = seeded(f"{self.seed}:u:{user}")
        locale = "es" if rng.random() < 0.2 else "en"
        reputation = 1 + int(20000 / user**0.85 * lognormal(rng, 1.0, 0.8))
        return UserRecord(
            external_id=user,
            display_name=display_name(rng, locale),
            reputation=reputation,
            created_at=utc(self._joined(user)),
            locale=locale,
        )

    # -- the outline of a thread ---------------------------------------------------------------

    def _outline(self, k: int) -> Outline:
        return draw_outline(self.seed, self._duplicate_salt, k)

    def _asker(self, outline: Outline) -> int | None:
        """The question's author: the first draw after the outline."""
        if outline.rng.random() < 0.015:
            return None
        return self._author(outline.rng, outline.number, outline.created, 1.5)

    def _answerers(self, outline: Outline, asker: int | None) -> list[int | None]:
        """The answers' authors: the draws right after the asker."""
        rng = outline.rng
        answerers: list[int | None] = []
        for answered in outline.answer_times:
            answerer: int | None = None
            if rng.random() >= 0.01:
                answerer = self._author(rng, outline.number, answered, 2.5)
                if answerer == asker:  # people rarely answer their own question
                    answerer = self._author(rng, outline.number, answered, 2.5)
            answerers.append(answerer)
        return answerers

    # -- records -------------------------------------------------------------------------------

    def _question(self, outline: Outline) -> QuestionRecord:
        author = self._asker(outline)
        rng, topic = outline.rng, outline.topic
        family = topic.family(outline.kind)
        slots = Slots(rng, topic, outline.es)
        title, body = question_text(rng, family, outline.kind, slots)

        tags = [topic.topic_tag(family)]
        if family != ACCOUNT or rng.random() < 0.5:
            tags.insert(0, PRODUCTS[topic.product][0])
        extra = rng.random()
        for threshold in (0.45, 0.75, 0.92):
            if extra >= threshold:
                tags.append(_EXTRA_TAG_RANKS.pick(rng))

        age_days = (ANCHOR_TS - outline.created) / DAY
        views = lognormal(rng, 120.0, 1.0) * outline.heat * (1 + age_days / 240)
        if outline.answer_times:
            views *= 1.6
        accepted = outline.accepted
        return QuestionRecord(
            external_id=outline.question_id,
            author_external_id=author,
            title=title,
            body_markdown=body,
            tags=list(dict.fromkeys(tags)),
            view_count=1 + int(views),
            score=outline.up - outline.down,
            created_at=utc(outline.created),
            last_activity_at=utc(outline.last_activity),
            accepted_answer_external_id=(
                None if accepted is None else outline.question_id + 1 + accepted
            ),
            locale=outline.locale,
            kind=outline.kind,
        )

    def _answers(self) -> Iterator[AnswerRecord]:
        for k in range(1, self.threads + 1):
            outline = self._outline(k)
            if not outline.answer_times:
                continue
            answerers = self._answerers(outline, self._asker(outline))
            rng, topic, es = outline.rng, outline.topic, outline.es
            family = topic.family(outline.kind)
            for i, answered in enumerate(outline.answer_times):
                yield AnswerRecord(
                    external_id=outline.question_id + 1 + i,
                    question_external_id=outline.question_id,
                    author_external_id=answerers[i],
                    body_markdown=answer_text(rng, family, Slots(rng, topic, es)),
                    score=outline.answer_up[i] - outline.answer_down[i],
                    created_at=utc(answered),
                )

    def _comments(self) -> Iterator[CommentRecord]:
        for k in range(1, self.threads + 1):
            outline = self._outline(k)
            asker = self._asker(outline)
            posts = [(outline.question_id, outline.created)]
            posts += [(outline.question_id + 1 + i, t) for i, t in enumerate(outline.answer_times)]
            for post_id, posted in posts:
                yield from self._comments_on(outline, asker, post_id, posted)

    def _comments_on(
        self, outline: Outline, asker: int | None, post_id: int, posted: int
    ) -> Iterator[CommentRecord]:
        rng, lang, model = outline.rng, int(outline.es), outline.topic.model
        count = 0
        while count < MAX_COMMENTS and rng.random() < 1 / 3:
            count += 1
        for i in range(1, count + 1):
            commented = posted + 1 + int(3600 * lognormal(rng, 2.0, 1.5))
            if commented >= ANCHOR_TS:
                break
            on_question = post_id == outline.question_id
            text = choice(rng, QUESTION_COMMENTS if on_question else ANSWER_COMMENTS)
            author, author_name = self._commenter(outline, asker, commented)
            score = 0 if rng.random() < 0.8 else 1 + int(lomax(rng, 1.0, 1.5))
            yield CommentRecord(
                external_id=post_id * COMMENT_ID_STRIDE + i,
                post_external_id=post_id,
                author_external_id=author,
                author_name=author_name,
                text=text[lang].format(model=model),
                score=score,
                created_at=utc(commented),
            )

    def _commenter(
        self, outline: Outline, asker: int | None, commented: int
    ) -> tuple[int | None, str | None]:
        """A comment's author id, or none and the name a deleted account left on it."""
        rng = outline.rng
        roll = rng.random()
        if roll < 0.03:  # the account is gone; its name stays on the comment
            return None, display_name(rng, outline.locale)
        if roll < 0.38 and asker is not None:
            return asker, None  # the asker answering a clarification
        return self._author(rng, outline.number, commented, 2.2), None

    def _votes(self) -> Iterator[VoteTotals]:
        for k in range(1, self.threads + 1):
            outline = self._outline(k)
            if outline.up or outline.down:
                yield VoteTotals(outline.question_id, outline.up, outline.down)
            for i, (up, down) in enumerate(
                zip(outline.answer_up, outline.answer_down, strict=True)
            ):
                if up or down:
                    yield VoteTotals(outline.question_id + 1 + i, up, down)

    def _duplicates(self) -> Iterator[DuplicateLink]:
        for k in range(2, self.threads + 1):
            if unit(self._duplicate_salt, k) >= DUPLICATE_DRAW:
                continue  # the same test duplicate_of starts with, before seeding a stream
            created, _, kind = head(seeded(f"{self.seed}:t:{k}"))
            original = duplicate_of(self.seed, self._duplicate_salt, k, created, kind)
            if original is not None:
                yield DuplicateLink(k * POST_ID_STRIDE, original * POST_ID_STRIDE)


if TYPE_CHECKING:

    def _is_a_source(source: SyntheticSource) -> Source:
        return source  # mypy checks SyntheticSource against the Source protocol here


# --------------------------------------------------------------------------------------------
