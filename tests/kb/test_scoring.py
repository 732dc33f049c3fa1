"""The usefulness score: hand-computed cases and properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kb.scoring import AnswerVotes, ScoreInputs, score, wilson_lower_bound

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("up", "down", "expected"),
    [(0, 0, 0.0), (1, 0, 0.2065), (10, 0, 0.7225), (10, 10, 0.2993), (0, 5, 0.0), (100, 0, 0.9630)],
)
def test_wilson_lower_bound_matches_hand_computed_values(
    up: int, down: int, expected: float
) -> None:
    assert wilson_lower_bound(up, down) == pytest.approx(expected, abs=1e-4)


def _inputs(
    *answers: AnswerVotes, helpful: int = 0, views: int = 0, age_days: float = 0
) -> ScoreInputs:
    return ScoreInputs(
        answers=answers,
        helpful_marks=helpful,
        views=views,
        last_activity_at=NOW - timedelta(days=age_days),
    )


def test_score_components_add_up_as_documented() -> None:
    result = score(
        _inputs(AnswerVotes(up=10, down=0, accepted=True), helpful=10, views=10_000), now=NOW
    )
    # 100 × (0.45 × 0.72247 + 0.25 × 1 + 0.20 × (1 − e^−1) + 0.10 × 1)
    assert result.value == pytest.approx(
        100 * (0.45 * 0.722467 + 0.25 + 0.2 * 0.632121 + 0.1), abs=0.01
    )
    assert result.accepted
    empty = score(_inputs(), now=NOW)
    assert empty.value == 0.0


def test_views_decay_by_half_each_year() -> None:
    fresh = score(_inputs(views=10_000, age_days=0), now=NOW)
    old = score(_inputs(views=10_000, age_days=365), now=NOW)
    assert fresh.views == pytest.approx(1.0)
    assert old.views == pytest.approx(0.5)


def test_hidden_answers_never_count() -> None:
    hidden = AnswerVotes(up=50, down=0, visible=False, accepted=True)
    visible = AnswerVotes(up=1, down=0)
    assert score(_inputs(hidden), now=NOW).value == 0.0
    with_hidden = score(_inputs(hidden, visible), now=NOW)
    assert with_hidden.value == score(_inputs(visible), now=NOW).value
    assert not with_hidden.accepted


votes = st.integers(min_value=0, max_value=500)


@given(
    up=votes,
    down=votes,
    extra=st.integers(min_value=1, max_value=100),
    helpful=votes,
    views=st.integers(0, 10**6),
)
def test_more_upvotes_never_lower_the_score(
    up: int, down: int, extra: int, helpful: int, views: int
) -> None:
    before = score(_inputs(AnswerVotes(up=up, down=down), helpful=helpful, views=views), now=NOW)
    after = score(
        _inputs(AnswerVotes(up=up + extra, down=down), helpful=helpful, views=views), now=NOW
    )
    assert after.value >= before.value


@given(
    answers=st.lists(st.tuples(votes, votes, st.booleans(), st.booleans()), max_size=6),
    helpful=votes,
    views=st.integers(0, 10**7),
    age=st.floats(min_value=0, max_value=5000),
)
def test_score_is_bounded_and_ignores_hidden_answers(
    answers: list[tuple[int, int, bool, bool]], helpful: int, views: int, age: float
) -> None:
    full = [AnswerVotes(up=u, down=d, visible=v, accepted=a) for u, d, v, a in answers]
    result = score(_inputs(*full, helpful=helpful, views=views, age_days=age), now=NOW)
    assert 0.0 <= result.value <= 100.0
    only_visible = score(
        _inputs(*[a for a in full if a.visible], helpful=helpful, views=views, age_days=age),
        now=NOW,
    )
    assert result.value == pytest.approx(only_visible.value)


@given(marks=votes, more=st.integers(min_value=1, max_value=50))
def test_more_helpful_marks_and_views_never_lower_the_score(marks: int, more: int) -> None:
    base = score(_inputs(helpful=marks, views=marks), now=NOW).value
    assert score(_inputs(helpful=marks + more, views=marks), now=NOW).value >= base
    assert score(_inputs(helpful=marks, views=marks + more), now=NOW).value >= base
