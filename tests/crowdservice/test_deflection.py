"""The deflection panel (crowdservice.insights.deflection): Wilson and Newcombe intervals
against values worked out by hand and published ones, and the panel on stored sessions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from community.core.models import Brand, Forum
from crowdservice.insights.deflection import (
    DEFLECTION_COLUMNS,
    Z_95,
    deflection_panel,
    deflection_rows,
    newcombe_interval,
    wilson_interval,
)
from crowdservice.insights.export import to_csv
from crowdservice.insights.period import insights_filter
from kb.models import AskArm, AskSession

START, END = date(2026, 11, 1), date(2026, 11, 3)
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_the_wilson_interval_matches_the_hand_worked_example() -> None:
    """z = 1.959964, z² = 3.841459. For 45/100: centre (45 + z²/2) / (100 + z²) =
    46.920729 / 103.841459 = 0.451850; half-width z·√(100·0.45·0.55 + z²/4) / (100 + z²) =
    1.959964 · √25.710365 / 103.841459 = 0.095704; so 0.356146 to 0.547554. For 30/100: centre
    31.920729 / 103.841459 = 0.307399, half-width 1.959964 · √21.960365 / 103.841459 =
    0.088450; so 0.218949 to 0.395849."""
    assert pytest.approx(1.959964, abs=1e-6) == Z_95
    held = wilson_interval(45, 100)
    assert (held.low, held.high) == pytest.approx((0.356146, 0.547554), abs=2e-6)
    shown = wilson_interval(30, 100)
    assert (shown.low, shown.high) == pytest.approx((0.218949, 0.395849), abs=2e-6)
    # The edges: no successes still gives an upper bound, all successes a lower one.
    none = wilson_interval(0, 10)
    assert none.low == 0 and none.high == pytest.approx(3.841459 / 13.841459, abs=1e-6)
    with pytest.raises(ValueError, match="at least one trial"):
        wilson_interval(0, 0)


def test_newcombe_interval_matches_the_hand_worked_example_and_the_paper() -> None:
    """Holdout 45/100, suggestions 30/100 (Wilson bounds from the test above): difference
    0.15; below √((0.45 - 0.356146)² + (0.395849 - 0.30)²) = √(0.008809 + 0.009187) = 0.134150
    gives 0.015850; above √((0.547554 - 0.45)² + (0.30 - 0.218949)²) = √(0.009517 + 0.006569) =
    0.126831 gives 0.276831. (statsmodels' confint_proportions_2indep(45, 100, 30, 100,
    method="newcomb") gives 0.0158522, 0.2768309, computed once outside the project.)
    Newcombe (1998), Table II, method 10: 56/70 - 48/80 is 0.0524 to 0.3339, 9/10 - 3/10 is
    0.1705 to 0.8090."""
    worked = newcombe_interval(45, 100, 30, 100)
    assert (worked.low, worked.high) == pytest.approx((0.015850, 0.276831), abs=5e-6)
    paper_a = newcombe_interval(56, 70, 48, 80)
    assert (paper_a.low, paper_a.high) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    paper_b = newcombe_interval(9, 10, 3, 10)
    assert (paper_b.low, paper_b.high) == pytest.approx((0.1705, 0.8090), abs=5e-5)
    # Newcombe's own form of the bounds, z·√(l1(1-l1)/n1 + u2(1-u2)/n2), agrees.
    held, shown = wilson_interval(45, 100), wilson_interval(30, 100)
    delta = Z_95 * (held.low * (1 - held.low) / 100 + shown.high * (1 - shown.high) / 100) ** 0.5
    assert worked.low == pytest.approx(0.15 - delta, abs=1e-12)


def _sessions(
    db: Session,
    brand: Brand,
    arm: AskArm,
    count: int,
    *,
    threads: int,
    started: datetime,
    visitor: str,
    last_activity: datetime | None = None,
) -> None:
    """`count` sessions of one group starting at `started`, the first `threads` of them ending
    with a question 10 minutes later (thread ids are left empty: the time is the outcome)."""
    for number in range(count):
        ended = started + timedelta(minutes=10) if number < threads else None
        db.add(
            AskSession(
                brand_id=brand.id, visitor_key=f"{visitor}{number:04d}", number=1, arm=arm,
                holdout_percent=50, started_at=started,
                last_activity_at=ended or last_activity or started + timedelta(minutes=5),
                ended_with_thread_at=ended,
            )
        )  # fmt: skip


def test_the_panel_compares_the_groups_with_their_interval(db: Session, forum: Forum) -> None:
    """In the period: 100 sessions with suggestions (30 ended in a question, the last of them a
    minute before `now`: known although its window has not passed) and 100 in the holdout (45
    did): the worked example. Left out: another brand's sessions, sessions started before the
    period, and 3 still open at `now` (last request 10 minutes ago, no question yet), which are
    counted as open instead."""
    brand = forum.brand
    brand.holdout_percent = 50
    other = Brand(slug="other", name="Other", description="", theme={}, default_locale="en")
    db.add(other)
    db.flush()
    day = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    _sessions(db, brand, AskArm.SUGGESTIONS, 99, threads=29, started=day, visitor="s")
    _sessions(db, brand, AskArm.HOLDOUT, 100, threads=45, started=day, visitor="h")
    _sessions(db, other, AskArm.HOLDOUT, 50, threads=0, started=day, visitor="o")
    _sessions(db, brand, AskArm.HOLDOUT, 7, threads=0, started=day - timedelta(days=2),
              visitor="early")  # fmt: skip
    now = datetime(2026, 11, 3, 23, 50, tzinfo=UTC)
    late = now - timedelta(minutes=15)
    _sessions(db, brand, AskArm.SUGGESTIONS, 3, threads=0, started=late, visitor="open",
              last_activity=now - timedelta(minutes=10))  # fmt: skip
    db.add(
        AskSession(
            brand_id=brand.id, visitor_key="s-last", number=1, arm=AskArm.SUGGESTIONS,
            holdout_percent=50, started_at=late, last_activity_at=now - timedelta(minutes=1),
            ended_with_thread_at=now - timedelta(minutes=1),
        )
    )  # fmt: skip
    db.commit()
    panel = deflection_panel(db, brand, insights_filter(END, start=START, end=END), now=now)
    assert (panel.suggestions.sessions, panel.suggestions.threads) == (100, 30)
    assert (panel.holdout.sessions, panel.holdout.threads) == (100, 45)
    assert panel.open_sessions == 3
    assert panel.holdout_percent == 50
    assert panel.deflection == pytest.approx(0.15)
    assert panel.interval is not None
    assert (panel.interval.low, panel.interval.high) == pytest.approx(
        (0.015850, 0.276831), abs=5e-6
    )
    assert panel.significant
    assert panel.verdict.startswith("Suggestions prevent between 1.6 and 27.7")


def test_the_worked_example_as_a_panel_and_its_csv(db: Session, forum: Forum) -> None:
    brand = forum.brand
    day = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    _sessions(db, brand, AskArm.SUGGESTIONS, 100, threads=30, started=day, visitor="s")
    _sessions(db, brand, AskArm.HOLDOUT, 100, threads=45, started=day, visitor="h")
    db.commit()
    panel = deflection_panel(db, brand, insights_filter(END, start=START, end=END), now=NOW)
    assert panel.suggestions.rate == pytest.approx(0.30)
    assert panel.holdout.rate == pytest.approx(0.45)
    assert panel.deflection == pytest.approx(0.15)
    assert panel.interval is not None
    assert (panel.interval.low, panel.interval.high) == pytest.approx(
        (0.015850, 0.276831), abs=5e-6
    )
    assert panel.significant
    assert panel.verdict == (
        "Suggestions prevent between 1.6 and 27.7 new questions per 100 ask-form sessions "
        "(95% confidence)."
    )
    rows = deflection_rows(panel)
    assert [(row["section"], row.get("arm"), row.get("sessions")) for row in rows] == [
        ("group", "suggestions", 100),
        ("group", "holdout", 100),
        ("deflection", "holdout-suggestions", None),
        ("open", None, 0),
    ]
    csv_text = to_csv(DEFLECTION_COLUMNS, rows)
    assert csv_text.splitlines()[0] == (
        "section,arm,sessions,threads,rate,low,high,significant,verdict"
    )
    assert csv_text.splitlines()[3].startswith("deflection,holdout-suggestions,,,0.15")


@pytest.mark.parametrize(
    ("shown", "held", "verdict"),
    [
        # 29 sessions in the holdout: too few, whatever the rates.
        ((100, 10), (29, 20), "Not yet significant: each group needs at least 30 sessions "
                              "(with suggestions: 100, without: 29)."),
        # 40/100 against 45/100: the interval (about -0.09 to 0.18) holds 0.
        ((100, 40), (100, 45), "Not yet significant: the difference could be zero"),
        # More questions with suggestions than without: significant the other way.
        ((100, 45), (100, 30), "Sessions with suggestions end in a new question more often: "
                               "by 1.6 to 27.7 per 100 sessions (95% confidence)."),
    ],
)  # fmt: skip
def test_the_verdict_says_when_it_is_not_yet_significant(
    db: Session,
    forum: Forum,
    shown: tuple[int, int],
    held: tuple[int, int],
    verdict: str,
) -> None:
    brand = forum.brand
    day = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
    _sessions(db, brand, AskArm.SUGGESTIONS, shown[0], threads=shown[1], started=day,
              visitor="s")  # fmt: skip
    _sessions(db, brand, AskArm.HOLDOUT, held[0], threads=held[1], started=day, visitor="h")
    db.commit()
    panel = deflection_panel(db, brand, insights_filter(END, start=START, end=END), now=NOW)
    assert panel.verdict.startswith(verdict)
    assert panel.significant == verdict.startswith("Sessions with")


def test_an_empty_group_gives_no_difference(db: Session, forum: Forum) -> None:
    brand = forum.brand
    _sessions(db, brand, AskArm.SUGGESTIONS, 5, threads=2,
              started=datetime(2026, 11, 2, tzinfo=UTC), visitor="s")  # fmt: skip
    db.commit()
    panel = deflection_panel(db, brand, insights_filter(END, start=START, end=END), now=NOW)
    assert (panel.holdout.sessions, panel.holdout.rate, panel.holdout.interval) == (0, None, None)
    assert (panel.deflection, panel.interval, panel.significant) == (None, None, False)
    assert panel.holdout_percent == 0
