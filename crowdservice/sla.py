"""Service levels: each priority's first-response and resolution targets, business hours, and the
due times they give a thread.

Default targets, in minutes (first response, resolution); a brand overrides any of them in its
ServicePolicy (`targets`, e.g. {"P1": {"first_response": 5}}), the rest keep these values:

| priority | first response | resolution |
|---|---|---|
| P1 | 10 min | 4 h |
| P2 | 15 min | 24 h |
| P3 | 4 h | 48 h |
| P4 | 24 h | 5 days |

Business hours: None counts around the clock. Otherwise only time inside the brand's hours
counts, on the wall clock of its timezone ({"timezone": "Europe/Madrid", "days": [0, 1, 2, 3, 4],
"start": "09:00", "end": "18:00"}, Monday is 0, "24:00" may end a day). A clock that starts
outside hours begins at the next opening; weekends and other closed days are skipped. Windows
are built from the local date and converted to UTC, so the clocks going forward or back move the
opening with them and an hour of business time is always a real hour.

Due times are counted from the thread's creation (the customer has waited since then), also when
a thread is re-prioritised. An escalation copies them; waiting on the customer stops its
resolution clock: the time spent waiting adds up in `paused_seconds`, and the resolution is due
at `resolution_due_at + paused_seconds` (plus a pause still running).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.clock import utcnow
from community.core.errors import FormErrors
from community.core.forms import read_whole_number
from community.core.i18n import gettext as _
from community.core.models import Thread
from crowdservice.models import ACTIVE_ESCALATION, Escalation, Priority, ServicePolicy

logger = logging.getLogger(__name__)

# Minutes: (first response, resolution).
DEFAULT_TARGETS: dict[Priority, tuple[int, int]] = {
    Priority.P1: (10, 4 * 60),
    Priority.P2: (15, 24 * 60),
    Priority.P3: (4 * 60, 48 * 60),
    Priority.P4: (24 * 60, 5 * 24 * 60),
}
# A thread nobody has triaged is treated as an ordinary question.
DEFAULT_PRIORITY = Priority.P3
DEFAULT_EXPERT_DELAY_FACTOR = 0.5
DEFAULT_EXPERT_DAILY_INVITATIONS = 3
# A target longer than a year is a typo, not a promise.
MAX_TARGET_MINUTES = 365 * 24 * 60
TARGET_KINDS = ("first_response", "resolution")
# Enough for any target above on the sparsest schedule (one hour a week); beyond it the
# schedule has no usable opening (e.g. only a window the clocks skip).
_MAX_DAYS_SCANNED = 366 * 60

# ASCII digits only: \d and str.isdigit() also take other scripts' digits ("١٢").
_HH_MM = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")


@dataclass(frozen=True, slots=True)
class Targets:
    first_response: timedelta
    resolution: timedelta


# --- policy ----------------------------------------------------------------------------------


def policy_for(db: Session, brand_id: int) -> ServicePolicy:
    """The brand's stored policy, or an unsaved one with the defaults (reading never inserts)."""
    stored = db.get(ServicePolicy, brand_id)
    if stored is not None:
        return stored
    return ServicePolicy(
        brand_id=brand_id,
        targets={},
        business_hours=None,
        triage_rules=[],
        expert_delay_factor=DEFAULT_EXPERT_DELAY_FACTOR,
        expert_daily_invitations=DEFAULT_EXPERT_DAILY_INVITATIONS,
    )


def priority_of(value: str | None) -> Priority:
    """A stored priority, or the default for untriaged (or unreadable) ones."""
    try:
        return Priority(value) if value else DEFAULT_PRIORITY
    except ValueError:
        return DEFAULT_PRIORITY


def _stored_minutes(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 < value <= MAX_TARGET_MINUTES:
        return value
    return None


def targets_of(policy: ServicePolicy) -> dict[Priority, Targets]:
    """Every priority's targets: the brand's overrides over the defaults. Values that are not
    usable (saved before validation existed, edited by hand) fall back to the default."""
    overrides: Mapping[str, Any] = policy.targets or {}
    merged: dict[Priority, Targets] = {}
    for priority, (first_default, resolution_default) in DEFAULT_TARGETS.items():
        custom = overrides.get(priority.value)
        custom = custom if isinstance(custom, Mapping) else {}
        first = _stored_minutes(custom.get("first_response")) or first_default
        resolution = _stored_minutes(custom.get("resolution")) or resolution_default
        merged[priority] = Targets(
            first_response=timedelta(minutes=first),
            resolution=timedelta(minutes=max(first, resolution)),
        )
    return merged


def hours_of(policy: ServicePolicy) -> dict[str, Any] | None:
    """The brand's business hours if they are usable; around the clock otherwise (and logged),
    so a bad stored value never stops the sweeps."""
    try:
        return validate_business_hours(policy.business_hours)
    except FormErrors as error:
        logger.warning("brand %s: unusable business hours (%s)", policy.brand_id, error)
        return None


# --- validation (admins edit these) ------------------------------------------------------------


def _form_minutes(value: object) -> int | None:
    """Whole minutes from a form or JSON value; None when left blank. ValueError otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError
        value = int(value)
    if isinstance(value, str):
        typed = read_whole_number(value)
        if typed is None:
            raise ValueError
        value = typed
    if not isinstance(value, int):
        raise ValueError
    return value


def validate_targets(raw: object) -> dict[str, dict[str, int]]:
    """Clean an admin's targets: {"P1": {"first_response": 10, "resolution": 240}, ...} in
    minutes. Priorities and values left out (or blank) keep the defaults. Errors are keyed
    "P1.first_response" and so on."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise FormErrors({"targets": _("Targets must be given per priority (P1 to P4).")})
    errors: dict[str, str] = {}
    cleaned: dict[str, dict[str, int]] = {}
    for key, entry in raw.items():
        try:
            priority = Priority(str(key).strip().upper())
        except ValueError:
            errors["targets"] = _("Unknown priority “%(key)s”: use P1, P2, P3 or P4.") % {
                "key": key
            }
            continue
        if entry is None:
            continue
        if not isinstance(entry, Mapping):
            errors[priority.value] = _("Give a first-response and a resolution target.")
            continue
        values: dict[str, int] = {}
        for kind, value in entry.items():
            field = f"{priority.value}.{kind}"
            if kind not in TARGET_KINDS:
                errors[field] = _("Unknown target: use first_response or resolution.")
                continue
            try:
                minutes = _form_minutes(value)
            except ValueError:
                errors[field] = _("Enter a whole number of minutes.")
                continue
            if minutes is None:
                continue
            if minutes <= 0:
                errors[field] = _("Enter a positive number of minutes.")
            elif minutes > MAX_TARGET_MINUTES:
                errors[field] = _("Enter at most %(max)d minutes (a year).") % {
                    "max": MAX_TARGET_MINUTES
                }
            else:
                values[kind] = minutes
        if values:
            cleaned[priority.value] = values
    for priority, (first_default, resolution_default) in DEFAULT_TARGETS.items():
        values = cleaned.get(priority.value, {})
        first = values.get("first_response", first_default)
        resolution = values.get("resolution", resolution_default)
        field = f"{priority.value}.resolution"
        if first > resolution and not any(key.startswith(priority.value) for key in errors):
            errors[field] = _(
                "The resolution target (%(resolution)d min) cannot be shorter than the "
                "first-response target (%(first)d min)."
            ) % {"resolution": resolution, "first": first}
    if errors:
        raise FormErrors(errors)
    return cleaned


@cache
def _known_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _parse_hh_mm(value: object, *, allow_midnight_end: bool) -> int | None:
    """Minutes after midnight for "HH:MM" (or "24:00" closing a day), None if not valid."""
    if not isinstance(value, str):
        return None
    match = _HH_MM.match(value.strip())
    if match is None:
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    if allow_midnight_end and (hours, minutes) == (24, 0):
        return 24 * 60
    if hours > 23 or minutes > 59:
        return None
    return hours * 60 + minutes


def validate_business_hours(raw: object) -> dict[str, Any] | None:
    """Clean an admin's business hours. None (or an empty value) means around the clock.
    Else {"timezone": IANA name, "days": [0-6, Monday is 0], "start": "HH:MM", "end": "HH:MM"}
    with start before end ("24:00" may end the day)."""
    if raw is None or raw == {} or raw == "":
        return None
    if not isinstance(raw, Mapping):
        raise FormErrors({"business_hours": _("Business hours are not in a form we can read.")})
    errors: dict[str, str] = {}
    zone_name = _checked_timezone(raw.get("timezone"), errors)
    days = _checked_days(raw.get("days"), errors)
    start, end = _checked_opening(raw.get("start"), raw.get("end"), errors)
    if errors:
        raise FormErrors(errors)
    assert start is not None
    assert end is not None
    return {
        "timezone": zone_name,
        "days": sorted(set(days)),
        "start": f"{start // 60:02d}:{start % 60:02d}",
        "end": f"{end // 60:02d}:{end % 60:02d}",
    }


def _checked_timezone(value: object, errors: dict[str, str]) -> str:
    zone_name = value.strip() if isinstance(value, str) else ""
    if not zone_name:
        errors["timezone"] = _("Choose a timezone, such as Europe/Madrid.")
    elif zone_name not in _known_timezones():
        errors["timezone"] = _("“%(zone)s” is not a timezone we know (e.g. Europe/Madrid).") % {
            "zone": zone_name[:60]
        }
    return zone_name


def _checked_days(raw_days: object, errors: dict[str, str]) -> list[int]:
    days: list[int] = []
    if not isinstance(raw_days, list | tuple) or not raw_days:
        errors["days"] = _("Choose at least one day.")
        return days
    for value in raw_days:
        day: int | None
        if isinstance(value, int) and not isinstance(value, bool):
            day = value
        else:
            day = read_whole_number(value) if isinstance(value, str) else None
        if day is None or not 0 <= day <= 6:
            errors["days"] = _("Days are numbers from 0 (Monday) to 6 (Sunday).")
            break
        days.append(day)
    return days


def _checked_opening(
    raw_start: object, raw_end: object, errors: dict[str, str]
) -> tuple[int | None, int | None]:
    """Opening and closing as minutes after midnight."""
    start = _parse_hh_mm(raw_start, allow_midnight_end=False)
    end = _parse_hh_mm(raw_end, allow_midnight_end=True)
    if start is None:
        errors["start"] = _("Enter the opening time as HH:MM, e.g. 09:00.")
    if end is None:
        errors["end"] = _("Enter the closing time as HH:MM, e.g. 18:00.")
    if start is not None and end is not None and start >= end:
        errors["end"] = _("The closing time must be after the opening time.")
    return start, end


# --- business-time arithmetic (pure) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Schedule:
    zone: ZoneInfo
    days: frozenset[int]
    start_minutes: int
    end_minutes: int

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's opening and closing in UTC, None when closed that day."""
        if day.weekday() not in self.days:
            return None
        return self._at(day, self.start_minutes), self._at(day, self.end_minutes)

    def _at(self, day: date, minutes: int) -> datetime:
        if minutes >= 24 * 60:
            day, minutes = day + timedelta(days=1), minutes - 24 * 60
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.zone)
        return local.astimezone(UTC)

    def windows(
        self, moment: datetime, *, backwards: bool = False
    ) -> Iterator[tuple[datetime, datetime]]:
        """Open windows from the local day of `moment` onwards (or backwards)."""
        day = moment.astimezone(self.zone).date()
        step = timedelta(days=-1 if backwards else 1)
        for _offset in range(_MAX_DAYS_SCANNED):
            found = self.window(day)
            if found is not None and found[0] < found[1]:
                yield found
            day += step
        raise ValueError("these business hours never open")


def _schedule(hours: Mapping[str, Any]) -> _Schedule:
    try:
        cleaned = validate_business_hours(hours)
    except FormErrors as error:
        raise ValueError(f"invalid business hours: {error}") from error
    assert cleaned is not None
    start = _parse_hh_mm(cleaned["start"], allow_midnight_end=False)
    end = _parse_hh_mm(cleaned["end"], allow_midnight_end=True)
    assert start is not None
    assert end is not None
    return _Schedule(ZoneInfo(cleaned["timezone"]), frozenset(cleaned["days"]), start, end)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("business time needs timezone-aware datetimes")
    return moment.astimezone(UTC)


def add_business_time(
    start: datetime, duration: timedelta, hours: Mapping[str, Any] | None
) -> datetime:
    """The moment `duration` of business time after `start` (UTC). Around the clock when
    `hours` is None; else time outside the hours does not count, and a start outside them
    begins counting at the next opening."""
    cursor = _aware(start)
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    if hours is None:
        return cursor + duration
    if duration == timedelta(0):
        return cursor
    remaining = duration
    for opening, closing in _schedule(hours).windows(cursor):
        begin = max(cursor, opening)
        if begin >= closing:
            continue
        available = closing - begin
        if remaining <= available:
            return begin + remaining
        remaining -= available
    raise AssertionError("unreachable: windows() raises when it runs out")  # pragma: no cover


def subtract_business_time(
    end: datetime, duration: timedelta, hours: Mapping[str, Any] | None
) -> datetime:
    """The latest moment with `duration` of business time between it and `end` (UTC): any
    start at or before it has had at least that much business time by `end`."""
    cursor = _aware(end)
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    if hours is None or duration == timedelta(0):
        return cursor - duration
    remaining = duration
    for opening, closing in _schedule(hours).windows(cursor, backwards=True):
        finish = min(cursor, closing)
        if finish <= opening:
            continue
        available = finish - opening
        if remaining <= available:
            return finish - remaining
        remaining -= available
    raise AssertionError("unreachable: windows() raises when it runs out")  # pragma: no cover


def business_time_between(
    start: datetime, end: datetime, hours: Mapping[str, Any] | None
) -> timedelta:
    """How much business time lies between two moments (zero if `end` is not after `start`)."""
    begin, finish = _aware(start), _aware(end)
    if finish <= begin:
        return timedelta(0)
    if hours is None:
        return finish - begin
    total = timedelta(0)
    for opening, closing in _schedule(hours).windows(begin):
        if opening >= finish:
            break
        overlap = min(closing, finish) - max(opening, begin)
        if overlap > timedelta(0):
            total += overlap
    return total


# --- due times ---------------------------------------------------------------------------------


def set_due_times(
    db: Session,
    thread: Thread,
    priority: Priority | str | None = None,
    *,
    policy: ServicePolicy | None = None,
) -> None:
    """Set the thread's priority (when given) and its due times, counted from its creation with
    the brand's targets and business hours; an active escalation follows (its paused seconds
    stay, so time spent waiting on the customer still moves its resolution due). Flushes."""
    if priority is not None:
        thread.priority = Priority(priority).value
    effective = priority_of(thread.priority)
    if policy is None:
        policy = policy_for(db, thread.forum.brand_id)
    targets = targets_of(policy)[effective]
    hours = hours_of(policy)
    base = thread.created_at or utcnow()
    thread.first_response_due_at = add_business_time(base, targets.first_response, hours)
    thread.resolution_due_at = add_business_time(base, targets.resolution, hours)
    if thread.id is not None:
        active = db.scalar(
            select(Escalation).where(
                Escalation.thread_id == thread.id, Escalation.status.in_(ACTIVE_ESCALATION)
            )
        )
        if active is not None:
            active.priority = effective
            active.first_response_due_at = thread.first_response_due_at
            active.resolution_due_at = thread.resolution_due_at
            active.updated_at = utcnow()
    db.flush()
