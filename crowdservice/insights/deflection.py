"""Deflection, measured by experiment: how many new questions the ask form's suggestions
prevent, from the brand's holdout (kb.ask_sessions says how sessions are assigned and when they
end).

- **Sessions**: signed-in visitors' ask-form sessions that started in the period (UTC days) and
  whose outcome is known: they ended in a question, or their last suggestion request is more than
  30 minutes before now. Sessions still open are left out of both groups until they end. The
  forum and language filters do not apply: a session belongs to the brand, its forum and
  language are only known once a question is posted.
- **Thread rate** of a group: the share of its sessions that ended with the visitor posting a
  question, with suggestions shown (the "suggestions" group) and without (the holdout).
- **Deflection**: the holdout's thread rate minus the suggestions group's, in percentage points:
  the new questions the suggestions prevented per 100 ask-form sessions (negative if sessions
  with suggestions end in a question more often).
- **95% confidence interval** of the deflection: Newcombe's hybrid score interval for a
  difference of independent proportions (method 10 of R. G. Newcombe, "Interval estimation for
  the difference between independent proportions: comparison of eleven methods", Statistics in
  Medicine 17 (1998) 873-890). With p1 = the holdout's rate over n1 sessions, p2 = the
  suggestions group's over n2, and (l1, u1), (l2, u2) their 95% Wilson score intervals
  (E. B. Wilson, JASA 22 (1927) 209-212: (2np + z² ± z√(z² + 4np(1-p))) / (2(n + z²)),
  z = 1.95996), the difference p1 - p2 has the interval
  (p1 - p2 - √((p1 - l1)² + (u2 - p2)²), p1 - p2 + √((u1 - p1)² + (p2 - l2)²)),
  the same as Newcombe's δ = z√(l1(1-l1)/n1 + u2(1-u2)/n2), ε = z√(u1(1-u1)/n1 + l2(1-l2)/n2).
  It stays inside [-1, 1] and behaves at rates near 0 or 1 and in small groups, where the
  textbook (Wald) interval does not.
- **Significant**: both groups have at least 30 sessions and the interval excludes 0. Otherwise
  the verdict says the difference is not yet significant (with fewer sessions the interval is too
  wide to say anything, and stopping at the first lucky day would overstate the effect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from community.core.i18n import gettext as _
from community.core.models import Brand
from crowdservice.insights.period import InsightsFilter
from kb.ask_sessions import SESSION_WINDOW
from kb.models import AskArm, AskSession

# Two-sided 95%: the 97.5th percentile of the standard normal distribution (1.959964).
Z_95 = NormalDist().inv_cdf(0.975)
# Fewer sessions than this in either group and no verdict is given.
MIN_SESSIONS = 30


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Group:
    arm: str  # "suggestions" or "holdout"
    sessions: int
    threads: int  # sessions that ended in a new question
    rate: float | None  # threads / sessions; None without sessions
    interval: Interval | None  # the rate's 95% Wilson interval


@dataclass(frozen=True, slots=True)
class DeflectionPanel:
    holdout_percent: int  # the brand's share now (0: the experiment is off)
    suggestions: Group
    holdout: Group
    deflection: float | None  # holdout rate - suggestions rate; None if a group is empty
    interval: Interval | None  # Newcombe's 95% interval of the deflection
    significant: bool
    verdict: str
    open_sessions: int  # started in the period, outcome not known yet: not counted


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> Interval:
    """The Wilson score interval of a proportion (no continuity correction)."""
    if trials <= 0:
        raise ValueError("a proportion needs at least one trial")
    p = successes / trials
    centre = 2 * trials * p + z * z
    spread = z * math.sqrt(z * z + 4 * trials * p * (1 - p))
    denominator = 2 * (trials + z * z)
    return Interval(
        max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)
    )


def newcombe_interval(
    successes1: int, trials1: int, successes2: int, trials2: int, z: float = Z_95
) -> Interval:
    """Newcombe's hybrid score interval for p1 - p2 (see the module's docstring)."""
    p1, p2 = successes1 / trials1, successes2 / trials2
    first, second = wilson_interval(successes1, trials1, z), wilson_interval(successes2, trials2, z)
    below = math.hypot(p1 - first.low, second.high - p2)
    above = math.hypot(first.high - p1, p2 - second.low)
    return Interval(p1 - p2 - below, p1 - p2 + above)


def _group(arm: AskArm, sessions: int, threads: int) -> Group:
    if sessions == 0:
        return Group(arm.value, 0, 0, None, None)
    return Group(
        arm.value, sessions, threads, threads / sessions, wilson_interval(threads, sessions)
    )


def _verdict(suggestions: Group, holdout: Group, interval: Interval | None) -> tuple[bool, str]:
    if suggestions.sessions < MIN_SESSIONS or holdout.sessions < MIN_SESSIONS:
        return False, _(
            "Not yet significant: each group needs at least %(minimum)d sessions "
            "(with suggestions: %(with)d, without: %(without)d)."
        ) % {"minimum": MIN_SESSIONS, "with": suggestions.sessions, "without": holdout.sessions}
    assert interval is not None  # both groups have sessions
    points = {"low": 100 * interval.low, "high": 100 * interval.high}
    if interval.low <= 0 <= interval.high:
        return False, _(
            "Not yet significant: the difference could be zero (95%% interval %(low).1f to "
            "%(high).1f points)."
        ) % points
    if interval.low > 0:
        return True, _(
            "Suggestions prevent between %(low).1f and %(high).1f new questions per 100 "
            "ask-form sessions (95%% confidence)."
        ) % points
    return True, _(
        "Sessions with suggestions end in a new question more often: by %(low).1f to "
        "%(high).1f per 100 sessions (95%% confidence)."
    ) % {"low": -100 * interval.high, "high": -100 * interval.low}


def deflection_panel(
    db: Session, brand: Brand, period: InsightsFilter, *, now: datetime
) -> DeflectionPanel:
    """One GROUP BY over the period's sessions (indexed by brand and start time). A session
    that ended in a question is always known; the others once their window has passed."""
    known = or_(
        AskSession.ended_with_thread_at.is_not(None),
        AskSession.last_activity_at <= now - SESSION_WINDOW,
    )
    rows = db.execute(
        select(
            AskSession.arm,
            func.count(),
            func.count(case((known, 1))),
            func.count(AskSession.ended_with_thread_at),
        )
        .where(
            AskSession.brand_id == brand.id,
            AskSession.started_at >= period.since,
            AskSession.started_at < period.until,
        )
        .group_by(AskSession.arm)
    ).all()
    counts = dict.fromkeys(AskArm, (0, 0))
    open_sessions = 0
    for arm, started, counted, threads in rows:
        counts[AskArm(arm)] = (counted, threads)
        open_sessions += started - counted
    suggestions = _group(AskArm.SUGGESTIONS, *counts[AskArm.SUGGESTIONS])
    holdout = _group(AskArm.HOLDOUT, *counts[AskArm.HOLDOUT])
    deflection = interval = None
    if suggestions.rate is not None and holdout.rate is not None:
        deflection = holdout.rate - suggestions.rate
        interval = newcombe_interval(
            holdout.threads, holdout.sessions, suggestions.threads, suggestions.sessions
        )
    significant, verdict = _verdict(suggestions, holdout, interval)
    return DeflectionPanel(
        holdout_percent=brand.holdout_percent,
        suggestions=suggestions,
        holdout=holdout,
        deflection=deflection,
        interval=interval,
        significant=significant,
        verdict=verdict,
        open_sessions=open_sessions,
    )


DEFLECTION_COLUMNS = (
    "section", "arm", "sessions", "threads", "rate", "low", "high", "significant", "verdict",
)  # fmt: skip


def deflection_rows(panel: DeflectionPanel) -> list[dict[str, object]]:
    """One row per group (its thread rate and Wilson interval), one for the deflection (holdout
    rate minus suggestions rate, Newcombe's interval, the verdict), one for the open sessions."""
    rows: list[dict[str, object]] = [
        {"section": "group", "arm": group.arm, "sessions": group.sessions,
         "threads": group.threads, "rate": group.rate,
         "low": group.interval.low if group.interval else None,
         "high": group.interval.high if group.interval else None}
        for group in (panel.suggestions, panel.holdout)
    ]  # fmt: skip
    rows.append(
        {"section": "deflection", "arm": "holdout-suggestions", "rate": panel.deflection,
         "low": panel.interval.low if panel.interval else None,
         "high": panel.interval.high if panel.interval else None,
         "significant": panel.significant, "verdict": panel.verdict}
    )  # fmt: skip
    rows.append({"section": "open", "sessions": panel.open_sessions})
    return rows
