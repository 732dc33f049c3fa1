"""Content gaps: what people looked for and did not find, grouped by what they typed.

Searches are those of the search page and the search API (`kb_search_queries`), in the chosen
language (the interface's when searching); the forum filter does not apply (a search is not
made in a forum). Queries are grouped by their normalised text (`normalise_query`: case
folded, accents kept, punctuation and repeated spaces removed, numbers kept); a query with
nothing left after that is not listed.

- **Zero-result searches**: searches that found nothing, when the search engine answered (a
  search made while it was down, on the cruder database fallback, is left out: its zero may be
  the fallback's).
- **Searches with results, then a question**: clicks on search results are not recorded, nor
  are the ask form's suggestions until one is opened, so a search "after which the person
  opened nothing" cannot be told apart. The closest recorded figure: searches by a signed-in
  person that found something, after which that person started a new thread in the brand's
  forums within 30 minutes (what they found did not answer them). Visitors' searches cannot be
  linked to a thread and are not counted.
- Each list: the count in the period, the count in the previous period of the same length
  (the trend), most first (then the most in the previous period, then by text), the top 50;
  `example` is the form typed most often in the period, the title an agent's "write an
  article" link fills in (`article_url`: the article editor, `/b/<brand>/kb/new?title=...`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import quote, urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core.models import Brand
from crowdservice.insights.followups import (
    FOLLOW_UP,
    asked_between,
    thread_authors,
    thread_times,
)
from crowdservice.insights.period import InsightsFilter
from crowdservice.insights.self_service import searches_in
from kb.models import SearchQuery

TOP = 50
# Apostrophes and hyphens join what they separate ("don't" and "dont", "wi-fi" and "wifi" are
# one query); any other punctuation or symbol (a dash too) separates words ("router/modem").
_JOINERS = re.compile(r"['`\u00b4\u02bc\u2019\-\u2010\u2011]")
_SPACES = re.compile(r"\s+")


def normalise_query(text: str) -> str:
    """The text searches are grouped by: NFC (an accent typed either way is one character),
    case folded, apostrophes and hyphens removed, other punctuation and symbols as spaces,
    letters (with their accents) and digits kept, single spaces, no space at either end."""
    folded = _JOINERS.sub("", unicodedata.normalize("NFC", text).casefold())
    kept = "".join(char if unicodedata.category(char)[0] in "LNM" else " " for char in folded)
    return _SPACES.sub(" ", kept).strip()


@dataclass(frozen=True, slots=True)
class GapLine:
    query: str  # normalised
    example: str  # the form typed most often in the period
    count: int  # in the period
    previous: int  # in the previous period of the same length
    article_url: str  # the article editor with the example as title


@dataclass(frozen=True, slots=True)
class GapsPanel:
    previous_start: date
    previous_end: date
    zero_result: list[GapLine]
    asked_anyway: list[GapLine]


def article_url(brand: Brand, title: str) -> str:
    """The article editor with `title` filled in (kb.routes_curation.new_article)."""
    return f"/b/{quote(brand.slug)}/kb/new?{urlencode({'title': title})}"


def gaps_panel(db: Session, brand: Brand, period: InsightsFilter, *, now: datetime) -> GapsPanel:
    """`now` bounds nothing here (a search is listed once a thread followed it, which cannot
    be after now); it is taken for the panels' common signature."""
    length = period.until - period.since
    before = InsightsFilter(
        start=period.start - timedelta(days=length.days),
        end=period.start - timedelta(days=1),
        forum=period.forum,
        language=period.language,
    )
    return GapsPanel(
        previous_start=before.start,
        previous_end=before.end,
        zero_result=_lines(brand, _zero_result(db, brand, period), _zero_result(db, brand, before)),
        asked_anyway=_lines(
            brand, _asked_anyway(db, brand, period), _asked_anyway(db, brand, before)
        ),
    )


def _zero_result(db: Session, brand: Brand, period: InsightsFilter) -> Counter[str]:
    """Zero-result searches per typed text (grouped in SQL: most repeat)."""
    rows = db.execute(
        select(SearchQuery.query, func.count())
        .where(
            *searches_in(brand, period, period.since, period.until),
            SearchQuery.result_count == 0,
            SearchQuery.degraded.is_(False),
        )
        .group_by(SearchQuery.query)
    ).all()
    return Counter({str(text): int(count) for text, count in rows})


def _asked_anyway(db: Session, brand: Brand, period: InsightsFilter) -> Counter[str]:
    """Searches with results followed by a new thread of the searcher's, per typed text."""
    window_end = period.until + FOLLOW_UP
    askers = thread_authors(brand, period.since, window_end)
    rows = db.execute(
        select(SearchQuery.query, SearchQuery.user_id, SearchQuery.created_at).where(
            *searches_in(brand, period, period.since, period.until),
            SearchQuery.result_count > 0,
            SearchQuery.user_id.in_(askers),
        )
    ).all()
    # Only the searchers' threads: the period's askers can be every member of a busy brand.
    searchers = select(SearchQuery.user_id).where(
        *searches_in(brand, period, period.since, period.until), SearchQuery.result_count > 0
    )
    times = thread_times(db, brand, searchers, period.since, window_end)
    return Counter(
        str(text)
        for text, user, moment in rows
        if asked_between(times, user, moment, moment + FOLLOW_UP)
    )


def _grouped(typed: Counter[str]) -> dict[str, Counter[str]]:
    groups: dict[str, Counter[str]] = {}
    for text, count in typed.items():
        key = normalise_query(text)
        if key:
            groups.setdefault(key, Counter())[text] += count
    return groups


def _lines(brand: Brand, now: Counter[str], before: Counter[str]) -> list[GapLine]:
    current, previous = _grouped(now), _grouped(before)
    lines = [
        GapLine(
            query=key,
            example=_most_typed(forms.items()),
            count=sum(forms.values()),
            previous=sum(previous.get(key, Counter()).values()),
            article_url=article_url(brand, _most_typed(forms.items())),
        )
        for key, forms in current.items()
    ]
    lines.sort(key=lambda line: (-line.count, -line.previous, line.query))
    return lines[:TOP]


def _most_typed(forms: Iterable[tuple[str, int]]) -> str:
    """The most frequent form; among equals, the first in alphabetical order (stable)."""
    return min(forms, key=lambda form: (-form[1], form[0]))[0]


# --- CSV -----------------------------------------------------------------------------------------

GAPS_COLUMNS = ("section", "query", "example", "count", "previous", "article_url")


def gaps_rows(panel: GapsPanel) -> list[dict[str, object]]:
    return [
        {"section": section, "query": line.query, "example": line.example,
         "count": line.count, "previous": line.previous, "article_url": line.article_url}
        for section, lines in (("zero_result", panel.zero_result),
                               ("asked_anyway", panel.asked_anyway))
        for line in lines
    ]  # fmt: skip
