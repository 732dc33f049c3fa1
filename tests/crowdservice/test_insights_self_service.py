"""Insights, the self-service panel (crowdservice.insights.self_service): each figure computed
on rows inserted with controlled times, the expected values worked out by hand in the
fixtures' docstrings; another brand's rows never counted; nothing recorded gives None."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.orm import Session

from community.core.models import Forum, Thread, User, Visibility
from crowdservice.insights.period import InsightsFilter, insights_filter
from crowdservice.insights.self_service import (
    SELF_SERVICE_COLUMNS,
    self_service_panel,
    self_service_rows,
)
from kb.models import (
    Article,
    ArticleFeedback,
    ArticleStatus,
    ArticleView,
    AskArm,
    AskSession,
    DeflectionEvent,
    SearchQuery,
    Solution,
)
from tests.crowdservice.insights_data import at, other_brand_forum

UserFactory = Callable[..., User]
START, END = date(2026, 11, 1), date(2026, 11, 3)
# Ten minutes before the period's end: a search or an open after 23:20 on Nov 3 is pending.
NOW = datetime(2026, 11, 3, 23, 50, tzinfo=UTC)


def period(**filters: str) -> InsightsFilter:
    return insights_filter(NOW.date(), start=START, end=END, **filters)


def thread(db: Session, forum: Forum, author: User | None, created: datetime, **fields: object
           ) -> Thread:  # fmt: skip
    made = Thread(forum_id=forum.id, author_id=author.id if author else None,
                  title=f"Question {created}", created_at=created, last_activity_at=created,
                  updated_at=created, **fields)  # fmt: skip
    db.add(made)
    db.flush()
    return made


def search(db: Session, brand_id: int, who: User | None, created: datetime, **fields: object
           ) -> None:  # fmt: skip
    values: dict[str, object] = {"query": "wifi", "scope": "kb", "locale": "en",
                                 "result_count": 3} | fields  # fmt: skip
    db.add(SearchQuery(brand_id=brand_id, user_id=who.id if who else None, created_at=created,
                       **values))  # fmt: skip


def opened(db: Session, brand_id: int, who: User | None, created: datetime, key: str = ""
           ) -> None:  # fmt: skip
    db.add(DeflectionEvent(brand_id=brand_id, user_id=who.id if who else None,
                           visitor_key=key or f"user-{who.id if who else 0}", query="wifi drops",
                           entry_type="article", entry_id=1, created_at=created))  # fmt: skip


@pytest.fixture
def other(db: Session, forum: Forum) -> Forum:
    return other_brand_forum(db)


@pytest.fixture
def searches(db: Session, forum: Forum, other: Forum, make_user: UserFactory) -> None:
    """Acme's searches in Nov 1-3, with the thread that followed or not:
    1. ana, Nov 1 10:00; her thread at 10:20 (20 min): followed.
    2. ana, Nov 1 12:00, in Spanish; no thread of hers after: without.
    3. ben, Nov 1 09:00; his thread at 09:31 (31 min, too late): without.
    4. ben, Nov 2 08:00; his thread at 08:30 (30 min exactly): followed.
    5-6. visitors, Nov 2 and 3: not linkable.
    7. cara, Nov 3 23:30, 20 min before now: pending.
    8. cara, Nov 2 14:00; her thread at 14:10 is in Globex: without.
    9. cara, Nov 2 15:00; her thread at 14:59 came before: without.
    Not counted: ana's search on Oct 31 23:50 (followed by her 00:10 thread) and ana's search
    in Globex on Nov 1 10:05. Total 9, not linkable 2, pending 1, judged 6, followed 2, so 4
    without a thread: 4/6."""
    ana, ben, cara = make_user("ana"), make_user("ben"), make_user("cara")
    acme, globex = forum.brand_id, other.brand_id
    search(db, acme, ana, at(1, 10))
    thread(db, forum, ana, at(1, 10, 20))
    search(db, acme, ana, at(1, 12), locale="es", result_count=0)
    search(db, acme, ben, at(1, 9))
    thread(db, forum, ben, at(1, 9, 31))
    search(db, acme, ben, at(2, 8))
    thread(db, forum, ben, at(2, 8, 30), visibility=Visibility.DELETED)  # asked all the same
    search(db, acme, None, at(2, 10))
    search(db, acme, None, at(3, 11))
    search(db, acme, cara, at(3, 23, 30))
    search(db, acme, cara, at(2, 14))
    thread(db, other, cara, at(2, 14, 10))
    search(db, acme, cara, at(2, 15))
    thread(db, forum, cara, at(2, 14, 59))
    search(db, acme, ana, at(31, 23, 50, month=10))
    thread(db, forum, ana, at(1, 0, 10))
    search(db, globex, ana, at(1, 10, 5))
    db.commit()


@pytest.mark.usefixtures("searches")
def test_searches_without_a_new_thread(db: Session, forum: Forum) -> None:
    panel = self_service_panel(db, forum.brand, period(), now=NOW)
    value = panel.searches
    assert (value.total, value.not_linkable, value.pending) == (9, 2, 1)
    assert (value.judged, value.without_thread) == (6, 4)
    assert value.share == pytest.approx(4 / 6)

    # In Spanish: only ana's search at 12:00, not followed.
    spanish = self_service_panel(db, forum.brand, period(language="es"), now=NOW).searches
    assert (spanish.total, spanish.judged, spanish.without_thread, spanish.share) == (
        1, 1, 1, 1.0
    )  # fmt: skip


@pytest.fixture
def sessions(db: Session, forum: Forum, other: Forum, make_user: UserFactory) -> None:
    """Suggestions opened on Acme's ask form (a session: opens each within 30 min of the last):
    - dan, Nov 1 09:00, 09:20, 09:45: one session; his thread at 10:10 (25 min after the last
      open): followed.
    - dan, Nov 1 11:00 (75 min after 09:45: a new session); no thread: without.
    - eve, Oct 31 23:45 and Nov 1 00:10: one session, started before the period: not counted
      (its 00:10 open is one of the period's opened suggestions).
    - a visitor with no account, Nov 2 10:00: not linkable.
    - eve, Nov 3 23:30, 20 min before now: pending.
    - fay, Nov 3 21:00; her thread at 21:31 (31 min): without.
    - dan in Globex, Nov 2: not Acme's.
    Sessions 5: not linkable 1, pending 1, judged 3, without 2 (2/3). Opened in the period:
    3 + 1 + 1 + 1 + 1 + 1 = 8."""
    dan, eve, fay = make_user("dan"), make_user("eve"), make_user("fay")
    acme = forum.brand_id
    for moment in (at(1, 9), at(1, 9, 20), at(1, 9, 45)):
        opened(db, acme, dan, moment)
    thread(db, forum, dan, at(1, 10, 10))
    opened(db, acme, dan, at(1, 11))
    opened(db, acme, eve, at(31, 23, 45, month=10))
    opened(db, acme, eve, at(1, 0, 10))
    opened(db, acme, None, at(2, 10), key="visitor-hash")
    opened(db, acme, eve, at(3, 23, 30))
    opened(db, acme, fay, at(3, 21))
    thread(db, forum, fay, at(3, 21, 31))
    opened(db, other.brand_id, dan, at(2, 12))
    db.commit()


@pytest.mark.usefixtures("sessions")
def test_ask_form_sessions_without_a_new_thread_and_opened_suggestions(
    db: Session, forum: Forum
) -> None:
    panel = self_service_panel(db, forum.brand, period(), now=NOW)
    value = panel.sessions
    assert (value.total, value.not_linkable, value.pending, value.judged) == (5, 1, 1, 3)
    assert value.without_thread == 2
    assert value.share == pytest.approx(2 / 3)
    click = panel.click_through
    # The sessions shown suggestions are not recorded: no rate, only what was opened.
    # No ask-form session was stored (see test_click_through_...): nothing to divide.
    assert (click.opened, click.sessions_shown, click.sessions_opening) == (8, 0, 0)
    assert click.rate is None


@pytest.fixture
def knowledge_base(db: Session, forum: Forum, other: Forum, make_user: UserFactory) -> None:
    """Promoted (Nov 1 is the Sunday of ISO week 44; Nov 2-3 are in week 45):
    - solutions: Mobile's thread on Nov 1 (W44); Mobile's on Nov 2, withdrawn since (W45);
      Billing's Spanish one on Nov 3 (W45). Not counted: one on Oct 31, Globex's on Nov 2.
    - articles first published: Nov 3 in Mobile (W45), Nov 2 without a forum, in Spanish,
      archived since (W45). Not counted: a draft, one published Oct 30, Globex's on Nov 1.
    So W44: 1 solution, 0 articles; W45: 2 solutions, 2 articles.
    Views (now is Nov 3: only Nov 2 and 3 are kept): the Nov 3 article 2 on Nov 2 and 1 on
    Nov 3, the Oct 30 article 1 on Nov 3 (and 1 on Nov 1, no longer counted): 4. Globex's: no.
    Ratings in the period: Nov 3 article 2 of 4 helpful (0.5), Oct 30 article 1 of 3 (0.33),
    the archived one 0 of 2 (too few); not counted: a rating on Oct 31, Globex's 3 "no"."""
    author = make_user("author")
    billing = Forum(brand_id=forum.brand_id, slug="billing", name="Billing", description="")
    db.add(billing)
    db.flush()

    def solution(on: Forum, promoted: datetime, **fields: object) -> None:
        made = thread(db, on, author, at(1, 0, month=10), status="solved", **fields)
        db.add(Solution(thread_id=made.id, brand_id=on.brand_id, score_at_promotion=1.0,
                        promoted_at=promoted))  # fmt: skip

    solution(forum, at(1, 8))
    solution(forum, at(2, 9))
    db.flush()
    db.query(Solution).filter(Solution.promoted_at == at(2, 9)).update({"withdrawn_at": at(3, 9)})
    solution(billing, at(3, 9), locale="es")
    solution(forum, at(31, 9, month=10))
    solution(other, at(2, 9))

    def article(brand_id: int, title: str, published: datetime | None, **fields: object
                ) -> Article:  # fmt: skip
        values: dict[str, object] = {"status": ArticleStatus.PUBLISHED} | fields
        made = Article(brand_id=brand_id, title=title, body_source="x", body_html="<p>x</p>",
                       published_at=published, **values)  # fmt: skip
        db.add(made)
        db.flush()
        return made

    new = article(forum.brand_id, "Reset your voicemail PIN", at(3, 10), forum_id=forum.id)
    archived = article(forum.brand_id, "Roaming", at(2, 10), locale="es",
                       status=ArticleStatus.ARCHIVED)  # fmt: skip
    article(forum.brand_id, "Draft", None, status=ArticleStatus.DRAFT)
    older = article(forum.brand_id, "Set up eSIM", at(30, 10, month=10), forum_id=forum.id)
    theirs = article(other.brand_id, "Globex", at(1, 10))

    for made, day, key in ((new, 2, "a"), (new, 2, "b"), (new, 3, "a"), (older, 3, "c"),
                           (older, 1, "d"), (theirs, 3, "a")):  # fmt: skip
        db.add(ArticleView(article_id=made.id, viewer_key=key, day=date(2026, 11, day)))

    def rated(made: Article, helpful: bool, key: str, moment: datetime) -> None:
        db.add(ArticleFeedback(article_id=made.id, visitor_key=key, day=moment.date(),
                               helpful=helpful, created_at=moment))  # fmt: skip

    for n, helpful in enumerate((True, True, False, False)):
        rated(new, helpful, f"new{n}", at(3, 12))
    rated(new, False, "late", at(31, 12, month=10))
    for n, helpful in enumerate((True, False, False)):
        rated(older, helpful, f"older{n}", at(1, 12))
    for n in range(2):
        rated(archived, False, f"archived{n}", at(2, 12))
    for n in range(3):
        rated(theirs, False, f"theirs{n}", at(2, 12))
    db.commit()


@pytest.mark.usefixtures("knowledge_base")
def test_kb_promoted_per_week_views_and_helpful_ratio_worst_first(
    db: Session, forum: Forum
) -> None:
    panel = self_service_panel(db, forum.brand, period(), now=NOW)
    assert [(w.week, w.starts, w.solutions, w.articles) for w in panel.promoted] == [
        ("2026-W44", date(2026, 10, 26), 1, 0),
        ("2026-W45", date(2026, 11, 2), 2, 2),
    ]
    assert (panel.article_views, panel.views_from) == (4, date(2026, 11, 2))
    assert [(r.title, r.helpful, r.rated, r.too_few) for r in panel.ratings] == [
        ("Set up eSIM", 1, 3, False),
        ("Reset your voicemail PIN", 2, 4, False),
        ("Roaming", 0, 2, True),
    ]
    assert [r.ratio for r in panel.ratings] == pytest.approx([1 / 3, 0.5, 0.0])

    # Mobile only: its two solutions' threads, the Nov 3 article (the archived one has no
    # forum), views and ratings of Mobile's articles only.
    mobile = self_service_panel(db, forum.brand, period(forum="mobile"), now=NOW)
    assert [(w.solutions, w.articles) for w in mobile.promoted] == [(1, 0), (1, 1)]
    assert mobile.article_views == 4
    assert [r.title for r in mobile.ratings] == ["Set up eSIM", "Reset your voicemail PIN"]
    spanish = self_service_panel(db, forum.brand, period(language="es"), now=NOW)
    assert [(w.solutions, w.articles) for w in spanish.promoted] == [(0, 0), (1, 1)]
    assert (spanish.article_views, [r.title for r in spanish.ratings]) == (0, ["Roaming"])

    # A period whose days' viewers are all pruned has no view count, not a zero.
    october = insights_filter(NOW.date(), start=date(2026, 10, 1), end=date(2026, 10, 31))
    past = self_service_panel(db, forum.brand, october, now=NOW)
    assert (past.article_views, past.views_from) == (None, None)


def test_nothing_recorded_gives_no_ratio(db: Session, forum: Forum) -> None:
    panel = self_service_panel(db, forum.brand, period(), now=NOW)
    for value in (panel.searches, panel.sessions):
        assert (value.total, value.judged, value.without_thread, value.share) == (0, 0, 0, None)
    assert panel.click_through.opened == 0
    assert [(w.solutions, w.articles) for w in panel.promoted] == [(0, 0), (0, 0)]
    assert (panel.article_views, panel.ratings) == (0, [])


@pytest.mark.usefixtures("searches", "sessions", "knowledge_base")
def test_another_brand_sees_only_its_own(db: Session, other: Forum) -> None:
    """Globex has one search (followed by nothing of its own: ana's thread is Acme's), one
    opened suggestion (dan's: his Acme thread does not follow it), one solution (Nov 2, W45),
    one article (published Nov 1, W44) and its views and ratings."""
    panel = self_service_panel(db, other.brand, period(), now=NOW)
    assert (panel.searches.total, panel.searches.without_thread) == (1, 1)
    assert (panel.sessions.total, panel.sessions.without_thread) == (1, 1)
    assert [(w.solutions, w.articles) for w in panel.promoted] == [(0, 1), (1, 0)]
    assert panel.article_views == 1
    assert [(r.title, r.rated) for r in panel.ratings] == [("Globex", 3)]


@pytest.mark.usefixtures("searches", "sessions", "knowledge_base")
def test_csv_rows_carry_the_panel(db: Session, forum: Forum) -> None:
    panel = self_service_panel(db, forum.brand, period(), now=NOW)
    rows = self_service_rows(panel)
    assert all(set(row) <= set(SELF_SERVICE_COLUMNS) for row in rows)
    by_section = {row["section"]: row for row in rows}
    assert by_section["searches"]["without_thread"] == 4
    assert by_section["sessions"]["judged"] == 3
    assert by_section["click_through"] == {"section": "click_through", "total": 8, "judged": 0,
                                           "without_thread": 0, "share": None}  # fmt: skip
    assert by_section["article_views"]["total"] == 4
    assert [row["label"] for row in rows if row["section"] == "promoted"] == [
        "2026-W44", "2026-W45"
    ]  # fmt: skip
    assert next(row["label"] for row in rows if row["section"] == "rating") == "Set up eSIM"


def test_click_through_is_the_share_of_suggestion_sessions_with_an_opened_suggestion(
    db: Session, forum: Forum, other: Forum
) -> None:
    """Stored ask-form sessions (kb_ask_sessions) in Acme, with the opens of the same visitor:
    - k1, Nov 1 09:00-09:10, opened at 09:05: opening.
    - k2, Nov 1 12:00-12:02, opened at 12:30 (28 min after its last request): opening.
    - k3, Nov 2 08:00-08:01, opened at 08:40 (39 min after): not.
    - k4, Nov 2 10:00-10:05, nothing opened: not.
    - k5, held out (no suggestions), opened nothing: not a session shown suggestions.
    - k6, Oct 31 (before the period), opened Nov 1 00:05: not counted.
    - k1 in Globex, Nov 1 09:00, opened there: not Acme's.
    Shown 4, opening 2: 2 / 4 = 0.5. Opened in the period: 09:05, 12:30, 08:40, 00:05 = 4."""
    acme = forum.brand_id

    def session(brand_id: int, key: str, started: datetime, last: datetime, arm: AskArm
                ) -> None:  # fmt: skip
        db.add(AskSession(brand_id=brand_id, visitor_key=key, number=1, arm=arm,
                          holdout_percent=10, started_at=started,
                          last_activity_at=last))  # fmt: skip

    session(acme, "k1", at(1, 9), at(1, 9, 10), AskArm.SUGGESTIONS)
    opened(db, acme, None, at(1, 9, 5), key="k1")
    session(acme, "k2", at(1, 12), at(1, 12, 2), AskArm.SUGGESTIONS)
    opened(db, acme, None, at(1, 12, 30), key="k2")
    session(acme, "k3", at(2, 8), at(2, 8, 1), AskArm.SUGGESTIONS)
    opened(db, acme, None, at(2, 8, 40), key="k3")
    session(acme, "k4", at(2, 10), at(2, 10, 5), AskArm.SUGGESTIONS)
    session(acme, "k5", at(2, 11), at(2, 11, 5), AskArm.HOLDOUT)
    session(acme, "k6", at(31, 23, 50, month=10), at(31, 23, 55, month=10), AskArm.SUGGESTIONS)
    opened(db, acme, None, at(1, 0, 5), key="k6")
    session(other.brand_id, "k1", at(1, 9), at(1, 9, 10), AskArm.SUGGESTIONS)
    opened(db, other.brand_id, None, at(1, 9, 5), key="k1")
    db.commit()

    click = self_service_panel(db, forum.brand, period(), now=NOW).click_through
    assert (click.opened, click.sessions_shown, click.sessions_opening) == (4, 4, 2)
    assert click.rate == 0.5
