"""Insights, the content-gaps panel (crowdservice.insights.gaps): searches grouped by their
normalised text, counted in the period and the one before, on rows inserted with controlled
times (expected values worked out in the fixture's docstring); the "write an article" link
opens the editor with the title filled in, escaped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from community.core.models import Forum, Role, Thread, User
from crowdservice.insights.gaps import GAPS_COLUMNS, gaps_panel, gaps_rows, normalise_query
from crowdservice.insights.period import InsightsFilter, insights_filter
from kb.models import SearchQuery
from tests.crowdservice.insights_data import at, other_brand_forum

UserFactory = Callable[..., User]
AsRole = Callable[[Role | None], tuple[TestClient, User | None]]
# A week; the previous period is Nov 1-7.
START, END = date(2026, 11, 8), date(2026, 11, 14)
NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def period(**filters: str) -> InsightsFilter:
    return insights_filter(NOW.date(), start=START, end=END, **filters)


def search(db: Session, brand_id: int, who: User | None, text: str, created: datetime,
           results: int = 0, **fields: object) -> None:  # fmt: skip
    db.add(SearchQuery(brand_id=brand_id, user_id=who.id if who else None, query=text,
                       scope="kb", locale=fields.pop("locale", "en"), result_count=results,
                       created_at=created, **fields))  # fmt: skip


def thread(db: Session, forum: Forum, author: User, created: datetime) -> None:
    db.add(Thread(forum_id=forum.id, author_id=author.id, title=f"Question {created}",
                  created_at=created, last_activity_at=created, updated_at=created))  # fmt: skip


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("  Roaming   CHARGES?? ", "roaming charges"),
        ("Wi-Fi keeps dropping!", "wifi keeps dropping"),
        ("Don’t charge me", "dont charge me"),
        ("router/modem, or: both", "router modem or both"),
        ("Cómo activar el PIN 1234", "cómo activar el pin 1234"),  # accents and numbers kept
        ("Co\u0301mo", "cómo"),  # an accent typed as a combining mark is the same letter
        ("iPhone 15.2 — update", "iphone 15 2 update"),  # a dash separates, a hyphen joins
        ("Straße", "strasse"),  # case folding, not just lower-casing
        ("\t?!…\n", ""),
    ],
)
def test_normalise_query(typed: str, normalised: str) -> None:
    assert normalise_query(typed) == normalised


@pytest.fixture
def other(db: Session, forum: Forum) -> Forum:
    return other_brand_forum(db)


@pytest.fixture
def gaps(db: Session, forum: Forum, other: Forum, make_user: UserFactory) -> None:
    """Zero-result searches, Nov 8-14:
    - "Roaming charges?" twice (ana, a visitor) and "roaming  charges" once: "roaming charges"
      3, typed most as "Roaming charges?"; before: "ROAMING charges" on Nov 3, so 1.
    - "como activar" and "Cómo activar" (Spanish) once each: two queries (accents kept).
    - "eSIM-Aktivierung" once: "esimaktivierung".
    - "pin 1234" on Nov 14 23:59 (counted) and on Nov 15 00:00 (after the period).
    Left out: "voicemail" while the engine was down (degraded), "???" (nothing left), Globex's
    "roaming charges", "billing cycle" (only before the period).
    Order: 3 first; then the ones (no previous count) by text: "como activar", "cómo activar",
    "esimaktivierung", "pin 1234".
    Searches with results, then a question within 30 minutes:
    - ben "Reset voicemail PIN" Nov 9 10:00, his thread at 10:25: counted; before: ben
      "Reset Voicemail PIN" Nov 5 10:00, his thread at 10:10: 1.
    - eve "roaming charges" Nov 13 10:00, her thread at 10:01: counted.
    Not counted: cara "reset voicemail pin" (her thread 45 min later), dan "reset voicemail
    pin!" (his thread is in Globex), a visitor's "reset voicemail pin" (not linkable).
    Order: both 1; "reset voicemail pin" first (1 before)."""
    acme, globex = forum.brand_id, other.brand_id
    ana, ben, cara, dan, eve = (make_user(name) for name in ("ana", "ben", "cara", "dan", "eve"))
    search(db, acme, ana, "Roaming charges?", at(8, 9))
    search(db, acme, None, "Roaming charges?", at(9, 9))
    search(db, acme, None, "roaming  charges", at(10, 9))
    search(db, acme, ana, "ROAMING charges", at(3, 9))
    search(db, acme, None, "como activar", at(11, 9), locale="es")
    search(db, acme, None, "Cómo activar", at(11, 10), locale="es")
    search(db, acme, None, "eSIM-Aktivierung", at(12, 9))
    search(db, acme, None, "pin 1234", at(14, 23, 59))
    search(db, acme, None, "pin 1234", at(15, 0))
    search(db, acme, None, "voicemail", at(9, 9), degraded=True)
    search(db, acme, None, "???", at(9, 9))
    search(db, globex, None, "roaming charges", at(9, 9))
    search(db, acme, None, "billing cycle", at(2, 9))

    search(db, acme, ben, "Reset voicemail PIN", at(9, 10), results=4)
    thread(db, forum, ben, at(9, 10, 25))
    search(db, acme, ben, "Reset Voicemail PIN", at(5, 10), results=4)
    thread(db, forum, ben, at(5, 10, 10))
    search(db, acme, eve, "roaming charges", at(13, 10), results=1)
    thread(db, forum, eve, at(13, 10, 1))
    search(db, acme, cara, "reset voicemail pin", at(10, 10), results=2)
    thread(db, forum, cara, at(10, 10, 45))
    search(db, acme, dan, "reset voicemail pin!", at(11, 10), results=2)
    thread(db, other, dan, at(11, 10, 5))
    search(db, acme, None, "reset voicemail pin", at(12, 10), results=2)
    db.commit()


@pytest.mark.usefixtures("gaps")
def test_zero_result_and_asked_anyway_grouped_with_trend(db: Session, forum: Forum) -> None:
    panel = gaps_panel(db, forum.brand, period(), now=NOW)
    assert (panel.previous_start, panel.previous_end) == (date(2026, 11, 1), date(2026, 11, 7))
    assert [(g.query, g.example, g.count, g.previous) for g in panel.zero_result] == [
        ("roaming charges", "Roaming charges?", 3, 1),
        ("como activar", "como activar", 1, 0),
        ("cómo activar", "Cómo activar", 1, 0),
        ("esimaktivierung", "eSIM-Aktivierung", 1, 0),
        ("pin 1234", "pin 1234", 1, 0),
    ]
    assert panel.zero_result[0].article_url == "/b/acme/kb/new?title=Roaming+charges%3F"
    assert [(g.query, g.example, g.count, g.previous) for g in panel.asked_anyway] == [
        ("reset voicemail pin", "Reset voicemail PIN", 1, 1),
        ("roaming charges", "roaming charges", 1, 0),
    ]

    spanish = gaps_panel(db, forum.brand, period(language="es"), now=NOW)
    assert [g.query for g in spanish.zero_result] == ["como activar", "cómo activar"]
    assert spanish.asked_anyway == []


@pytest.mark.usefixtures("gaps")
def test_another_brand_sees_only_its_own(db: Session, other: Forum) -> None:
    panel = gaps_panel(db, other.brand, period(), now=NOW)
    assert [(g.query, g.count, g.previous) for g in panel.zero_result] == [
        ("roaming charges", 1, 0)
    ]
    assert panel.zero_result[0].article_url == "/b/globex/kb/new?title=roaming+charges"
    assert panel.asked_anyway == []


def test_nothing_recorded_and_the_top_fifty(db: Session, forum: Forum) -> None:
    empty = gaps_panel(db, forum.brand, period(), now=NOW)
    assert (empty.zero_result, empty.asked_anyway) == ([], [])

    for n in range(51):
        search(db, forum.brand_id, None, f"gap {n:02d}", at(10, 9))
    search(db, forum.brand_id, None, "gap 50", at(10, 10))
    db.commit()
    lines = gaps_panel(db, forum.brand, period(), now=NOW).zero_result
    assert len(lines) == 50
    assert (lines[0].query, lines[0].count) == ("gap 50", 2)
    assert lines[-1].query == "gap 48"  # "gap 49" is the 51st


@pytest.mark.usefixtures("gaps")
def test_csv_rows_and_the_write_an_article_link(db: Session, forum: Forum, as_role: AsRole) -> None:
    panel = gaps_panel(db, forum.brand, period(), now=NOW)
    rows = gaps_rows(panel)
    assert all(set(row) <= set(GAPS_COLUMNS) for row in rows)
    assert [(row["section"], row["query"], row["count"]) for row in rows][:2] == [
        ("zero_result", "roaming charges", 3), ("zero_result", "como activar", 1)
    ]  # fmt: skip
    assert rows[-1]["section"] == "asked_anyway"

    agent, _user = as_role(Role.AGENT)
    editor = agent.get(panel.asked_anyway[0].article_url)
    assert editor.status_code == 200
    assert 'value="Reset voicemail PIN"' in editor.text


def test_the_editor_title_prefill_is_escaped_and_cut(forum: Forum, as_role: AsRole) -> None:
    agent, _user = as_role(Role.AGENT)
    typed = '"><script>alert(1)</script>   wifi'
    editor = agent.get("/b/acme/kb/new", params={"title": typed})
    assert editor.status_code == 200
    assert "<script>alert(1)" not in editor.text
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt; wifi"' in editor.text
    long = agent.get("/b/acme/kb/new", params={"title": "x" * 300})
    assert f'value="{"x" * 150}"' in long.text and "x" * 151 not in long.text
    member, _member = as_role(Role.MEMBER)
    assert member.get("/b/acme/kb/new", params={"title": "wifi"}).status_code == 403
