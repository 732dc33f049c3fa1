"""The synthetic community generator: deterministic, a larger scale extends a smaller one,
every reference resolves, and the shapes (answers, votes, tags, languages, dates) look like
a brand's support community. Pure Python, no database."""

from __future__ import annotations

import inspect
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, timedelta

import pytest

from community.core.models import ThreadKind
from community.importing.records import (
    AnswerRecord,
    CommentRecord,
    DuplicateLink,
    QuestionRecord,
    Skips,
    UserRecord,
    VoteTotals,
)
from community.importing.synthetic.outline import ANCHOR
from community.importing.synthetic.source import SyntheticSource

TAG_PATTERN = re.compile(r"[^\W_][\w+#.-]{0,29}")
WORD = re.compile(r"[a-záéíóúñü']+")
# Words that only one of the two languages uses (no "a", "no", "i": both have them, and
# `curl -I` appears in code).
ENGLISH_ONLY = frozenset(
    {"the", "my", "and", "to", "with", "of", "for", "it", "is", "this", "you", "your", "that"}
    | {"can't", "i'd", "i'm", "what"}
)
SPANISH_ONLY = frozenset(
    {"el", "la", "de", "que", "mi", "los", "las", "del", "con", "por", "para", "una", "pero"}
    | {"ya", "sigue", "está"}
)


@dataclass
class Community:
    users: list[UserRecord]
    tags: list[str]
    questions: list[QuestionRecord]
    answers: list[AnswerRecord]
    comments: list[CommentRecord]
    votes: list[VoteTotals]
    duplicates: list[DuplicateLink]


def generate(threads: int, seed: int = 1) -> Community:
    source = SyntheticSource(threads, seed=seed)
    return Community(
        users=list(source.users().records),
        tags=list(source.tags().records),
        questions=list(source.questions().records),
        answers=list(source.answers().records),
        comments=list(source.comments().records),
        votes=list(source.votes().records),
        duplicates=list(source.duplicates().records),
    )


# Three independent samples: a shape must hold for any seed, not for one fixed output.
@pytest.fixture(scope="module", params=[1, 7, 42])
def community(request: pytest.FixtureRequest) -> Community:
    return generate(2000, seed=request.param)


def is_generator(records: object) -> bool:
    return inspect.isgenerator(records)  # a plain bool: no narrowing of the part's type


def words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


# --------------------------------------------------------------------------------------------
# The Source contract
# --------------------------------------------------------------------------------------------


def test_name_leaves_out_the_scale_so_a_larger_seed_run_extends_a_smaller_one() -> None:
    assert SyntheticSource(10).name == SyntheticSource(10_000).name == "synthetic:1"
    assert SyntheticSource(10, seed=7).name == "synthetic:7"
    assert SyntheticSource(10).site_label == "synthetic data"


def test_parts_stream_lazily_and_report_their_position() -> None:
    source = SyntheticSource(10**9)  # far too many to build: only streaming can answer
    questions = source.questions()
    assert is_generator(questions.records)
    assert questions.label == "questions"
    assert questions.size == 10**9
    assert questions.position() == 0
    first = next(questions.records)
    assert first.external_id == 100
    assert questions.position() == 1
    next(questions.records)
    assert questions.position() == 2
    assert isinstance(questions.skips, Skips)
    assert questions.skips.reasons == {}

    users = source.users()
    assert is_generator(users.records)
    assert next(users.records).external_id == 1
    for part in (source.answers(), source.comments(), source.votes(), source.duplicates()):
        assert is_generator(part.records)
        assert part.size is None  # not known without generating everything


def test_sizes_and_positions_match_what_was_yielded() -> None:
    source = SyntheticSource(40)
    for part in (source.users(), source.tags(), source.questions(), source.answers()):
        count = sum(1 for _ in part.records)
        assert part.position() == count
        if part.size is not None:
            assert part.size == count
    assert SyntheticSource(40).users().size == 14  # ceil(40 / 3)
    assert SyntheticSource(3).users().size == 5  # never fewer than five


def test_no_threads_and_a_negative_count() -> None:
    empty = generate(0)
    assert empty.questions == []
    assert empty.answers == []
    assert empty.comments == []
    assert len(empty.users) == 5
    with pytest.raises(ValueError, match="negative"):
        SyntheticSource(-1)


# --------------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_records_and_another_seed_does_not() -> None:
    assert generate(120) == generate(120)
    other = generate(120, seed=2)
    assert [q.title for q in other.questions] != [q.title for q in generate(120).questions]


def test_a_larger_scale_yields_the_smaller_one_unchanged_plus_new_threads() -> None:
    small, large = generate(150), generate(300)
    last_id = 150 * 100 + 99  # the highest post id thread 150 can use

    assert large.users[: len(small.users)] == small.users
    assert large.tags == small.tags
    assert [q for q in large.questions if q.external_id <= last_id] == small.questions
    assert [a for a in large.answers if a.question_external_id <= last_id] == small.answers
    assert [c for c in large.comments if c.post_external_id <= last_id] == small.comments
    assert [v for v in large.votes if v.post_external_id <= last_id] == small.votes
    assert [d for d in large.duplicates if d.duplicate_external_id <= last_id] == small.duplicates
    assert len(large.questions) == 300


# --------------------------------------------------------------------------------------------
# Referential integrity and dates
# --------------------------------------------------------------------------------------------


def test_every_reference_resolves(community: Community) -> None:
    user_ids = {u.external_id for u in community.users}
    assert user_ids == set(range(1, len(community.users) + 1))
    questions = {q.external_id: q for q in community.questions}
    answers = {a.external_id: a for a in community.answers}
    assert not questions.keys() & answers.keys()  # one id space for posts
    assert len(answers) == len(community.answers)

    answers_of: dict[int, set[int]] = {}
    for answer in community.answers:
        assert answer.question_external_id in questions
        assert 0 < answer.external_id - answer.question_external_id < 100
        answers_of.setdefault(answer.question_external_id, set()).add(answer.external_id)

    for question in community.questions:
        if question.accepted_answer_external_id is not None:
            assert question.accepted_answer_external_id in answers_of[question.external_id]

    posts = questions.keys() | answers.keys()
    assert len({c.external_id for c in community.comments}) == len(community.comments)
    assert all(c.post_external_id in posts for c in community.comments)
    assert all(v.post_external_id in posts for v in community.votes)

    authors = [q.author_external_id for q in community.questions]
    authors += [a.author_external_id for a in community.answers]
    authors += [c.author_external_id for c in community.comments]
    assert {author for author in authors if author is not None} <= user_ids
    assert None in authors  # a few deleted accounts


def test_duplicates_point_to_earlier_questions(community: Community) -> None:
    questions = {q.external_id: q for q in community.questions}
    assert 0.004 <= len(community.duplicates) / len(community.questions) <= 0.02
    for link in community.duplicates:
        duplicate = questions[link.duplicate_external_id]
        original = questions[link.original_external_id]
        assert original.external_id < duplicate.external_id
        assert original.created_at < duplicate.created_at
    assert len({link.duplicate_external_id for link in community.duplicates}) == len(
        community.duplicates
    )


def test_dates_are_utc_in_order_and_within_two_years(community: Community) -> None:
    start = ANCHOR - timedelta(days=731)
    questions = {q.external_id: q for q in community.questions}
    posted = {q.external_id: q.created_at for q in community.questions}
    for question in community.questions:
        assert question.created_at.tzinfo is UTC
        assert start < question.created_at < ANCHOR
    latest = {q.external_id: q.created_at for q in community.questions}
    for answer in community.answers:
        question = questions[answer.question_external_id]
        assert question.created_at < answer.created_at < ANCHOR
        posted[answer.external_id] = answer.created_at
        latest[question.external_id] = max(latest[question.external_id], answer.created_at)
    for question in community.questions:
        assert question.last_activity_at == latest[question.external_id]
    for comment in community.comments:
        assert posted[comment.post_external_id] < comment.created_at < ANCHOR

    joined = {u.external_id: u.created_at for u in community.users}
    dated = [(q.author_external_id, q.created_at) for q in community.questions]
    dated += [(a.author_external_id, a.created_at) for a in community.answers]
    dated += [(c.author_external_id, c.created_at) for c in community.comments]
    for author, when in dated:
        if author is not None:
            assert joined[author] < when  # nobody posts before their account exists
    assert all(u.created_at.tzinfo is UTC for u in community.users)


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------


def test_answers_per_thread_and_accepted_answers(community: Community) -> None:
    per_question = Counter(a.question_external_id for a in community.answers)
    counts = [per_question[q.external_id] for q in community.questions]
    assert 0.15 <= counts.count(0) / len(counts) <= 0.25
    assert 1.75 <= statistics.mean(counts) <= 2.15  # documented: about 1.95
    assert 12 <= max(counts) <= 30  # a long tail, capped

    answered = [q for q in community.questions if per_question[q.external_id]]
    accepted = [q for q in answered if q.accepted_answer_external_id is not None]
    assert 0.38 <= len(accepted) / len(answered) <= 0.52
    unanswered = [q for q in community.questions if not per_question[q.external_id]]
    assert all(q.accepted_answer_external_id is None for q in unanswered)


def test_votes_are_heavy_tailed_and_match_the_scores(community: Community) -> None:
    scores = {q.external_id: q.score for q in community.questions}
    scores |= {a.external_id: a.score for a in community.answers}
    voted = {v.post_external_id: v for v in community.votes}
    assert len(voted) == len(community.votes)
    for post_id, score in scores.items():
        if post_id in voted:
            totals = voted[post_id]
            assert totals.up + totals.down > 0
            assert score == totals.up - totals.down
        else:
            assert score == 0

    ups = [voted[post].up if post in voted else 0 for post in scores]
    assert sum(up <= 3 for up in ups) / len(ups) >= 0.85  # most posts: 0-3 upvotes
    assert max(ups) >= 50  # a few: dozens or hundreds
    downs = sum(v.down for v in community.votes)
    assert 0.02 <= downs / sum(ups) <= 0.12


def test_views_span_tens_to_tens_of_thousands(community: Community) -> None:
    views = sorted(q.view_count for q in community.questions)
    assert views[0] >= 1
    assert 100 <= statistics.median(views) <= 1000
    assert views[-1] >= 10_000
    per_question = Counter(a.question_external_id for a in community.answers)
    answered = [q.view_count for q in community.questions if per_question[q.external_id]]
    unanswered = [q.view_count for q in community.questions if not per_question[q.external_id]]
    assert statistics.median(answered) > statistics.median(unanswered)


def test_tags_are_valid_and_zipf_skewed(community: Community) -> None:
    vocabulary = set(community.tags)
    assert 60 <= len(vocabulary) <= 150
    assert len(vocabulary) == len(community.tags)
    for tag in vocabulary:
        assert TAG_PATTERN.fullmatch(tag), tag
        assert tag == tag.lower()
    counts = Counter(tag for q in community.questions for tag in q.tags)
    for question in community.questions:
        assert len(set(question.tags)) == len(question.tags)
        assert set(question.tags) <= vocabulary
    # Product and topic tags, then 0/1/2/3 setting tags with 45/30/17/8% (a product and a topic
    # may share a tag, hence a few questions with one).
    sizes = Counter(len(question.tags) for question in community.questions)
    assert set(sizes) == {1, 2, 3, 4, 5}
    shares = {size: count / len(community.questions) for size, count in sizes.items()}
    assert shares[1] < 0.08
    for size, expected in ((2, 0.45), (3, 0.30), (4, 0.17), (5, 0.08)):
        assert abs(shares[size] - expected) < 0.06, (size, shares[size])
    ranked = sorted((counts[tag] for tag in vocabulary), reverse=True)
    assert ranked[0] >= 8 * ranked[len(ranked) // 2]


def test_a_few_users_write_most_answers(community: Community) -> None:
    by_author = Counter(a.author_external_id for a in community.answers if a.author_external_id)
    top = max(1, len(community.users) // 100)
    top_share = sum(n for _, n in by_author.most_common(top)) / sum(by_author.values())
    assert top_share >= 0.15
    assert len(by_author) >= len(community.users) // 4  # and a long tail of occasional ones
    reputations = {u.external_id: u.reputation for u in community.users}
    assert reputations[1] > statistics.median(reputations.values()) * 10


def test_comments_are_about_half_a_post_and_deleted_authors_keep_a_name(
    community: Community,
) -> None:
    posts = len(community.questions) + len(community.answers)
    assert 0.35 <= len(community.comments) / posts <= 0.65
    deleted = [c for c in community.comments if c.author_external_id is None]
    assert deleted
    assert all(c.author_name for c in deleted)
    assert all(c.author_name is None for c in community.comments if c.author_external_id)
    assert all(0 < len(c.text) < 200 for c in community.comments)


def test_kinds_are_mostly_questions_with_some_of_each_other(community: Community) -> None:
    kinds = Counter(q.kind for q in community.questions)
    assert kinds[ThreadKind.QUESTION] > len(community.questions) / 2
    for kind in (ThreadKind.PROBLEM, ThreadKind.IDEA, ThreadKind.COMPLAINT, ThreadKind.PRAISE):
        assert kinds[kind] >= 0.02 * len(community.questions)
    ideas = [q for q in community.questions if q.kind is ThreadKind.IDEA]
    assert any(q.title.startswith(("Feature request", "Idea", "Sugerencia")) for q in ideas)


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def test_about_a_fifth_is_spanish_and_written_in_spanish(community: Community) -> None:
    locales = {q.external_id: q.locale for q in community.questions}
    spanish = [q for q in community.questions if q.locale == "es"]
    assert set(locales.values()) == {"en", "es"}
    assert 0.15 <= len(spanish) / len(community.questions) <= 0.25

    for question in community.questions:
        text = words(f"{question.title}\n{question.body_markdown}")
        own, other = (
            (SPANISH_ONLY, ENGLISH_ONLY)
            if question.locale == "es"
            else (ENGLISH_ONLY, SPANISH_ONLY)
        )
        assert text & own, question
        assert not text & other, (text & other, question)
    for answer in community.answers:
        other = ENGLISH_ONLY if locales[answer.question_external_id] == "es" else SPANISH_ONLY
        assert not words(answer.body_markdown) & other, answer
    spanish_answers = [a for a in community.answers if locales[a.question_external_id] == "es"]
    assert sum(bool(words(a.body_markdown) & SPANISH_ONLY) for a in spanish_answers) > 0.9 * len(
        spanish_answers
    )
    for comment in community.comments:
        question_id = comment.post_external_id // 100 * 100
        other = ENGLISH_ONLY if locales[question_id] == "es" else SPANISH_ONLY
        assert not words(comment.text) & other, comment


def test_titles_and_bodies_read_like_support_requests(community: Community) -> None:
    titles = [q.title for q in community.questions]
    assert all(15 <= len(title) <= 150 for title in titles)
    assert all(title[0].isupper() or title[0] in "¿¡" for title in titles)
    assert len(set(titles)) >= 0.6 * len(titles)  # varied enough to search
    assert "lorem" not in " ".join(titles).lower()
    for question in community.questions:
        assert "{" not in question.body_markdown  # every slot filled
        assert "  " not in question.body_markdown and " ." not in question.body_markdown

    bodies = [a.body_markdown for a in community.answers]
    assert all("{" not in body for body in bodies)
    assert any(re.search(r"^1\. ", body, re.MULTILINE) for body in bodies)  # numbered steps
    assert any(re.search(r"^- ", body, re.MULTILINE) for body in bodies)  # bullets
    assert any(re.search(r"`[^`\n]+`", body) for body in bodies)  # inline code
    fenced = sum("```" in body for body in bodies)
    assert 0 < fenced < 0.2 * len(bodies)  # occasional


def test_display_names_come_in_both_languages(community: Community) -> None:
    names = [u.display_name for u in community.users]
    assert all(names)
    assert len(set(names)) > 0.5 * len(names)
    assert {u.locale for u in community.users} == {"en", "es"}
    assert any(re.search("[áéíóúñ]", name) for name in names)
