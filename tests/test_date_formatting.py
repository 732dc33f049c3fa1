"""Dates in pages: the cached formatting says what Babel says, in each language, and "ago"
follows the clock (the cache is keyed by the age, not by the date)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from babel.dates import format_datetime as babel_format_datetime
from babel.dates import format_timedelta

from community.core import i18n
from community.core.clock import utcnow
from community.core.web import format_ago, format_datetime

AGES = [
    timedelta(seconds=5),
    timedelta(minutes=3),
    timedelta(hours=5, minutes=20),
    timedelta(days=2, hours=3),
    timedelta(days=40),
    timedelta(days=800),
]


@pytest.mark.parametrize("locale", ["en", "es"])
def test_ago_and_dates_read_as_babel_formats_them(locale: str) -> None:
    i18n.activate(locale)
    try:
        for age in AGES:
            expected = format_timedelta(-age, add_direction=True, threshold=1.1, locale=locale)
            assert format_ago(utcnow() - age) == expected
        moment = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
        for style in ("short", "medium"):
            expected = babel_format_datetime(moment, format=style, locale=locale, tzinfo=None)
            assert format_datetime(moment, style) == expected
    finally:
        i18n.activate("en")


def test_ages_in_words() -> None:
    i18n.activate("en")
    posted = utcnow() - timedelta(minutes=3)
    assert format_ago(posted) == "3 minutes ago"
    assert format_ago(posted - timedelta(hours=2)) == "2 hours ago"
    assert format_ago(posted - timedelta(days=9)) == "1 week ago"
