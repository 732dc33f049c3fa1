"""Service levels: business-time arithmetic (weekends, starts outside hours, daylight-saving
changes, multi-day spans), default and overridden targets, validation, and the due times a
thread and its escalation get."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core.errors import FormErrors
from community.core.models import Forum, Thread, User
from crowdservice import escalation, sla
from crowdservice.models import EscalationReason, Priority, ServicePolicy
from tests.conftest import QA

UserFactory = Callable[..., User]
MADRID = ZoneInfo("Europe/Madrid")
OFFICE = {"timezone": "Europe/Madrid", "days": [0, 1, 2, 3, 4], "start": "09:00", "end": "18:00"}


def madrid(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MADRID)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- business-time arithmetic ----------------------------------------------------------------

# 2025-03-03 is a Monday; Madrid is UTC+1 in winter, UTC+2 in summer.


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        # Inside hours: plain addition.
        (madrid(2025, 3, 3, 10), timedelta(hours=2), madrid(2025, 3, 3, 12)),
        # Before opening: counting starts at 09:00.
        (madrid(2025, 3, 3, 7), timedelta(hours=1), madrid(2025, 3, 3, 10)),
        # After closing: counting starts the next morning.
        (madrid(2025, 3, 3, 19), timedelta(hours=1), madrid(2025, 3, 4, 10)),
        # Across the night: one hour today, one tomorrow.
        (madrid(2025, 3, 3, 17), timedelta(hours=2), madrid(2025, 3, 4, 10)),
        # Ending exactly at closing time stays on that day.
        (madrid(2025, 3, 3, 17), timedelta(hours=1), madrid(2025, 3, 3, 18)),
        # Friday afternoon to Monday: the weekend does not count.
        (madrid(2025, 3, 7, 17), timedelta(hours=2), madrid(2025, 3, 10, 10)),
        # Asked on Saturday: Monday 09:00 is the start.
        (madrid(2025, 3, 8, 11), timedelta(minutes=30), madrid(2025, 3, 10, 9, 30)),
        # Multi-day: 48 business hours from Monday 09:00 are five 9-hour days and 3 hours.
        (madrid(2025, 3, 3, 9), timedelta(hours=48), madrid(2025, 3, 10, 12)),
        # Five days (P4 resolution) from Wednesday noon: 6 h that day, twelve whole days, and
        # the last 6 h on the Monday two weeks later.
        (madrid(2025, 3, 5, 12), timedelta(days=5), madrid(2025, 3, 24, 15)),
    ],
)
def test_business_time_counts_only_office_hours(
    start: datetime, duration: timedelta, expected: datetime
) -> None:
    result = sla.add_business_time(start, duration, OFFICE)
    assert result == expected
    assert result.tzinfo == UTC


def test_spring_forward_moves_the_opening_in_utc() -> None:
    # Clocks went forward on Sunday 2025-03-30: Friday's 17:00 is 16:00 UTC, Monday's 10:00 is
    # 08:00 UTC (a fixed offset would wrongly say 09:00 UTC).
    result = sla.add_business_time(madrid(2025, 3, 28, 17), timedelta(hours=2), OFFICE)
    assert result == utc(2025, 3, 31, 8)
    assert result == madrid(2025, 3, 31, 10)


def test_fall_back_moves_the_opening_in_utc() -> None:
    # Clocks went back on Sunday 2025-10-26: Friday 17:00 is 15:00 UTC, Monday 10:00 is 09:00.
    result = sla.add_business_time(madrid(2025, 10, 24, 17), timedelta(hours=2), OFFICE)
    assert result == utc(2025, 10, 27, 9)


def test_an_hour_of_business_time_is_a_real_hour_on_the_short_night() -> None:
    # Open midnight to six on Sundays: the night the clocks skip 02:00-03:00 has five real
    # hours, so five hours from midnight end at 06:00 summer time (04:00 UTC).
    night = {"timezone": "Europe/Madrid", "days": [6], "start": "00:00", "end": "06:00"}
    result = sla.add_business_time(madrid(2025, 3, 30, 0), timedelta(hours=5), night)
    assert result == utc(2025, 3, 30, 4)
    assert sla.business_time_between(madrid(2025, 3, 30, 0), madrid(2025, 3, 30, 6), night) == (
        timedelta(hours=5)
    )


def test_a_whole_day_schedule_counts_real_elapsed_time_across_dst() -> None:
    always = {"timezone": "Europe/Madrid", "days": list(range(7)), "start": "00:00",
              "end": "24:00"}  # fmt: skip
    start = madrid(2025, 3, 29, 12)
    # (Python adds wall-clock time to a zoned datetime, so compare with UTC arithmetic.)
    real_day_later = start.astimezone(UTC) + timedelta(hours=24)
    assert sla.add_business_time(start, timedelta(hours=24), always) == real_day_later
    assert sla.add_business_time(start, timedelta(hours=24), always) == madrid(2025, 3, 30, 13)


def test_around_the_clock_is_plain_addition() -> None:
    start = utc(2025, 3, 8, 23, 30)  # a Saturday night
    assert sla.add_business_time(start, timedelta(minutes=10), None) == utc(2025, 3, 8, 23, 40)
    assert sla.business_time_between(start, start + timedelta(days=2), None) == timedelta(days=2)
    assert sla.subtract_business_time(start, timedelta(hours=1), None) == utc(2025, 3, 8, 22, 30)


def test_zero_duration_and_bad_input() -> None:
    start = madrid(2025, 3, 8, 11)  # Saturday: nothing to count, the moment itself
    assert sla.add_business_time(start, timedelta(0), OFFICE) == start
    with pytest.raises(ValueError, match="timezone-aware"):
        sla.add_business_time(datetime(2025, 3, 3, 10), timedelta(hours=1), OFFICE)  # noqa: DTZ001
    with pytest.raises(ValueError, match="negative"):
        sla.add_business_time(start, timedelta(hours=-1), OFFICE)
    with pytest.raises(ValueError, match="invalid business hours"):
        sla.add_business_time(start, timedelta(hours=1), {"timezone": "Mars/Olympus"})


def test_business_time_between_and_back() -> None:
    friday, monday = madrid(2025, 3, 7, 17), madrid(2025, 3, 10, 10)
    assert sla.business_time_between(friday, monday, OFFICE) == timedelta(hours=2)
    assert sla.business_time_between(monday, friday, OFFICE) == timedelta(0)
    assert sla.subtract_business_time(monday, timedelta(hours=2), OFFICE) == friday
    # From a closed moment, counting back starts at the last closing.
    sunday = madrid(2025, 3, 9, 15)
    assert sla.subtract_business_time(sunday, timedelta(hours=1), OFFICE) == madrid(2025, 3, 7, 17)


@settings(max_examples=150, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2024, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=datetime(2026, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    minutes=st.integers(min_value=1, max_value=8 * 24 * 60),
)
def test_adding_then_measuring_gives_the_duration_back(start: datetime, minutes: int) -> None:
    duration = timedelta(minutes=minutes)
    end = sla.add_business_time(start, duration, OFFICE)
    assert end >= start + duration
    assert sla.business_time_between(start, end, OFFICE) == duration
    local = end.astimezone(MADRID)
    assert local.weekday() < 5
    assert time(9) < local.time() <= time(18)
    # The latest start with that much business time before `end` is no earlier than `start`.
    assert sla.subtract_business_time(end, duration, OFFICE) >= start


# --- targets ---------------------------------------------------------------------------------


def _policy(**values: Any) -> ServicePolicy:
    return ServicePolicy(brand_id=1, **values)


def test_default_targets_are_the_documented_ones() -> None:
    targets = sla.targets_of(_policy(targets={}))
    assert {priority: (t.first_response, t.resolution) for priority, t in targets.items()} == {
        Priority.P1: (timedelta(minutes=10), timedelta(hours=4)),
        Priority.P2: (timedelta(minutes=15), timedelta(hours=24)),
        Priority.P3: (timedelta(hours=4), timedelta(hours=48)),
        Priority.P4: (timedelta(hours=24), timedelta(days=5)),
    }


def test_stored_overrides_merge_over_the_defaults() -> None:
    targets = sla.targets_of(
        _policy(targets={"P1": {"first_response": 5}, "P4": {"first_response": 60,
                                                              "resolution": 600}})
    )  # fmt: skip
    assert targets[Priority.P1] == sla.Targets(timedelta(minutes=5), timedelta(hours=4))
    assert targets[Priority.P4] == sla.Targets(timedelta(hours=1), timedelta(hours=10))
    assert targets[Priority.P2] == sla.Targets(timedelta(minutes=15), timedelta(hours=24))


def test_unusable_stored_targets_fall_back_to_the_defaults() -> None:
    targets = sla.targets_of(
        _policy(targets={"P1": {"first_response": -3, "resolution": "soon"}, "P2": "nonsense",
                         "P3": {"first_response": True}})
    )  # fmt: skip
    assert targets[Priority.P1] == sla.Targets(timedelta(minutes=10), timedelta(hours=4))
    assert targets[Priority.P2].first_response == timedelta(minutes=15)
    assert targets[Priority.P3].first_response == timedelta(hours=4)


def test_policy_for_reads_without_inserting(db: Session, forum: Forum) -> None:
    policy = sla.policy_for(db, forum.brand_id)
    assert policy not in db
    assert policy.expert_delay_factor == 0.5
    assert policy.expert_daily_invitations == 3
    assert policy.business_hours is None
    db.commit()
    assert db.scalar(select(func.count()).select_from(ServicePolicy)) == 0
    stored = ServicePolicy(brand_id=forum.brand_id, targets={"P1": {"first_response": 3}})
    db.add(stored)
    db.commit()
    assert sla.policy_for(db, forum.brand_id) is stored


# --- validation --------------------------------------------------------------------------------


def test_valid_targets_are_cleaned() -> None:
    cleaned = sla.validate_targets(
        {"p1": {"first_response": "5", "resolution": 120}, "P2": {"first_response": ""},
         "P3": None}
    )  # fmt: skip
    assert cleaned == {"P1": {"first_response": 5, "resolution": 120}}
    assert sla.validate_targets(None) == {}


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"P1": {"first_response": 0}}, "P1.first_response", "positive"),
        ({"P1": {"first_response": -5}}, "P1.first_response", "positive"),
        ({"P2": {"resolution": "soon"}}, "P2.resolution", "whole number"),
        ({"P2": {"resolution": 1.5}}, "P2.resolution", "whole number"),
        ({"P2": {"resolution": True}}, "P2.resolution", "whole number"),
        ({"P3": {"first_response": 10**7}}, "P3.first_response", "at most"),
        ({"P3": {"first_response": 600, "resolution": 60}}, "P3.resolution", "shorter"),
        # A first response longer than the default resolution is caught too.
        ({"P1": {"first_response": 300}}, "P1.resolution", "shorter"),
        ({"P9": {"first_response": 5}}, "targets", "Unknown priority"),
        ({"P1": {"reply": 5}}, "P1.reply", "Unknown target"),
        ({"P1": 5}, "P1", "first-response"),
        (["P1"], "targets", "per priority"),
    ],
)
def test_bad_targets_are_refused_clearly(raw: object, field: str, words: str) -> None:
    with pytest.raises(FormErrors) as error:
        sla.validate_targets(raw)
    assert field in error.value.errors
    assert words in error.value.errors[field]


def test_valid_business_hours_are_cleaned() -> None:
    assert sla.validate_business_hours(None) is None
    assert sla.validate_business_hours({}) is None
    cleaned = sla.validate_business_hours(
        {"timezone": " America/Mexico_City ", "days": ["4", 0, 0], "start": "8:30",
         "end": "24:00"}
    )  # fmt: skip
    assert cleaned == {"timezone": "America/Mexico_City", "days": [0, 4], "start": "08:30",
                       "end": "24:00"}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "not a timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone", "not a timezone"),
        ({"timezone": ""}, "timezone", "Choose a timezone"),
        ({"days": []}, "days", "at least one"),
        ({"days": [7]}, "days", "0 (Monday) to 6"),
        ({"days": ["monday"]}, "days", "0 (Monday) to 6"),
        ({"days": "0-4"}, "days", "at least one"),
        ({"start": "9am"}, "start", "HH:MM"),
        ({"start": "24:00"}, "start", "HH:MM"),
        ({"end": "18:60"}, "end", "HH:MM"),
        ({"start": "18:00", "end": "09:00"}, "end", "after the opening"),
        ({"start": "09:00", "end": "09:00"}, "end", "after the opening"),
    ],
)
def test_bad_business_hours_are_refused_clearly(
    change: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(FormErrors) as error:
        sla.validate_business_hours(OFFICE | change)
    assert words in error.value.errors[field]


def test_business_hours_that_are_not_a_mapping_are_refused() -> None:
    with pytest.raises(FormErrors) as error:
        sla.validate_business_hours("9 to 5")
    assert "business_hours" in error.value.errors


def test_unusable_stored_hours_count_around_the_clock() -> None:
    assert sla.hours_of(_policy(business_hours={"timezone": "Nowhere"})) is None
    assert sla.hours_of(_policy(business_hours=OFFICE)) == OFFICE


# --- due times on threads ------------------------------------------------------------------------


def _thread(db: Session, thread_id: int) -> Thread:
    found = db.get(Thread, thread_id)
    assert found is not None
    return found


def test_due_times_follow_the_priority_from_creation(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    with time_machine.travel(utc(2025, 3, 3, 10), tick=False):
        thread = qa.ask(asker)
        sla.set_due_times(db, thread, Priority.P2)
        db.commit()
    created = utc(2025, 3, 3, 10)
    assert thread.created_at == created
    assert thread.priority == "P2"
    assert thread.first_response_due_at == created + timedelta(minutes=15)
    assert thread.resolution_due_at == created + timedelta(hours=24)
    # Re-prioritised a day later: still counted from when the customer asked.
    with time_machine.travel(utc(2025, 3, 4, 10), tick=False):
        sla.set_due_times(db, thread, "P1")
        db.commit()
    assert thread.priority == "P1"
    assert thread.first_response_due_at == created + timedelta(minutes=10)
    assert thread.resolution_due_at == created + timedelta(hours=4)


def test_untriaged_threads_get_p3_targets(db: Session, qa: QA, make_user: UserFactory) -> None:
    thread = qa.ask(make_user("asker"))
    thread.priority = None
    sla.set_due_times(db, thread)
    assert thread.priority is None
    assert thread.first_response_due_at == thread.created_at + timedelta(hours=4)
    assert thread.resolution_due_at == thread.created_at + timedelta(hours=48)


def test_due_times_use_the_brand_targets_and_business_hours(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory
) -> None:
    db.add(
        ServicePolicy(
            brand_id=forum.brand_id,
            targets={"P3": {"first_response": 120}},
            business_hours=OFFICE,
        )
    )
    db.commit()
    asker = make_user("asker")
    # Friday 17:00 in Madrid, the weekend the clocks go forward.
    with time_machine.travel(madrid(2025, 3, 28, 17), tick=False):
        thread = qa.ask(asker)
        sla.set_due_times(db, thread, "P3")
        db.commit()
    # One hour on Friday, one on Monday; 48 business hours run into the next week.
    assert thread.first_response_due_at == madrid(2025, 3, 31, 10)
    assert thread.resolution_due_at == madrid(2025, 4, 7, 11)


def test_a_new_priority_moves_the_active_escalation(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    with time_machine.travel(utc(2025, 3, 3, 10), tick=False):
        thread = qa.ask(asker)
        sla.set_due_times(db, thread, "P3")
        item = escalation.escalate(db, thread, EscalationReason.AUTHOR_REQUEST, actor=asker)
        item.paused_seconds = 600
        db.commit()
    assert item.priority == Priority.P3
    assert item.first_response_due_at == utc(2025, 3, 3, 14)
    with time_machine.travel(utc(2025, 3, 3, 10, 30), tick=False):
        sla.set_due_times(db, _thread(db, thread.id), "P2")
        db.commit()
    moved = escalation.active_escalation(db, thread.id)
    assert moved is item
    assert moved.priority == Priority.P2
    assert item.first_response_due_at == utc(2025, 3, 3, 10, 15)
    assert item.resolution_due_at == utc(2025, 3, 4, 10)
    # The time spent waiting on the customer still counts on top.
    assert item.paused_seconds == 600
    assert escalation.resolution_due(item, utc(2025, 3, 3, 11)) == utc(2025, 3, 4, 10, 10)
