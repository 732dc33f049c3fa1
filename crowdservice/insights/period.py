"""The period and filters every insights panel takes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from community.core.errors import FormErrors
from community.core.i18n import gettext as _

DEFAULT_DAYS = 28
# A year and a day: enough for a year-on-year look, bounded so one request stays cheap.
MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class InsightsFilter:
    """Whole UTC days from `start` to `end` (both included), optionally one forum (by slug)
    and one language (a thread's locale, e.g. "en")."""

    start: date
    end: date
    forum: str | None = None
    language: str | None = None

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """The first moment after the period."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def as_params(self) -> dict[str, str]:
        params = {"start": self.start.isoformat(), "end": self.end.isoformat()}
        if self.forum:
            params["forum"] = self.forum
        if self.language:
            params["language"] = self.language
        return params


def week_of(day: date) -> date:
    """The Monday that starts the ISO week holding `day`."""
    return day - timedelta(days=day.weekday())


def iso_week(day: date) -> str:
    """The ISO week's name, "2026-W45"."""
    year, week, _weekday = day.isocalendar()
    return f"{year}-W{week:02d}"


def insights_filter(
    today: date,
    *,
    start: date | None = None,
    end: date | None = None,
    forum: str | None = None,
    language: str | None = None,
) -> InsightsFilter:
    """The period asked for (the last 28 days up to today by default). FormErrors (422) for a
    period that ends before it starts, lies in the future or spans more than a year."""
    end = end or today
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    errors: dict[str, str] = {}
    if start > end:
        errors["start"] = _("The period must start on or before its last day.")
    elif (end - start).days + 1 > MAX_DAYS:
        errors["start"] = _("A period is at most %(days)d days long.") % {"days": MAX_DAYS}
    if end > today:
        errors["end"] = _("The period cannot end after today.")
    if errors:
        raise FormErrors(errors)
    return InsightsFilter(
        start=start,
        end=end,
        forum=(forum or "").strip() or None,
        language=(language or "").strip().lower() or None,
    )
