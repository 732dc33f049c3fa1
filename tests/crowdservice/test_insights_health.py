"""The Community health panel (crowdservice.insights.health) on a small data set whose every
figure is worked out by hand in the fixture's docstring and beside each assertion, on both
databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from community.core.models import Brand, Forum, Post, Role, ThreadKind, User, Visibility
from crowdservice.insights.health import HEALTH_COLUMNS, Week, health_panel, health_rows
from crowdservice.insights.period import InsightsFilter, insights_filter
from crowdservice.insights.service_levels import Times
from moderation.models import Flag, FlagReason, FlagStatus, ItemStatus, Queue, QueueItem
from tests.crowdservice.insights_data import ask, at

UserFactory = Callable[..., User]
NOW = datetime(2026, 11, 12, 12, 0, tzinfo=UTC)


def period(**filters: str) -> InsightsFilter:
    return insights_filter(NOW.date(), start=date(2026, 11, 1), end=date(2026, 11, 10), **filters)


def thread(db: Session, forum: Forum, author: User, created: datetime, **fields: object) -> Post:
    """A thread and its question post (returned: what queue items and flags point at)."""
    return ask(db, forum, author, created, title=f"Thread {created:%d %H:%M}", **fields)[1]


def reply(db: Session, to: Post, author: User, created: datetime, **fields: object) -> Post:
    post = Post(thread_id=to.thread_id, author_id=author.id, body_source="!",
                body_html="<p>!</p>", created_at=created, **fields)  # fmt: skip
    db.add(post)
    db.flush()
    return post


def item(db: Session, brand_id: int, queue: Queue, post: Post | None, user: User,
         entered: datetime, decided: datetime | None = None) -> None:  # fmt: skip
    db.add(QueueItem(
        brand_id=brand_id, queue=queue, post_id=post.id if post else None, user_id=user.id,
        reasons=[], created_at=entered, resolved_at=decided,
        status=ItemStatus.RESOLVED if decided else ItemStatus.OPEN,
        resolution="approve" if decided else None,
    ))  # fmt: skip


def flag(db: Session, post: Post, by: User, reason: FlagReason, when: datetime,
         status: FlagStatus) -> None:  # fmt: skip
    db.add(Flag(post_id=post.id, flagger_id=by.id, reason=reason, weight=1.0, created_at=when,
                status=status))  # fmt: skip


@pytest.fixture
def health_data(db: Session, forum: Forum, make_user: UserFactory) -> None:
    """Period Nov 1-10 (Nov 1 is a Sunday: ISO week 44; Nov 2-8 week 45; Nov 9-10 week 46);
    now Nov 12 12:00, so "this week" is (Nov 5 12:00, Nov 12 12:00].

    Questions: T1 Nov 1 negative; T2 Nov 2 positive; T3 Nov 4 negative, Spanish; T4 Nov 8
    23:59 untriaged; T5 Nov 9 00:00 neutral, in Billing. Not counted: a deleted negative
    question, a negative complaint (not a question), a negative question on Oct 31.
    Weeks: W44 1 negative; W45 1 negative, 1 positive, 1 untriaged; W46 1 neutral.

    Queues now: pending T2; flagged an answer in T3 and T5; users one account: 1, 2, 1. Another
    brand's open item is not ours.
    Decided in the period: pending (T1's question) Oct 31 23:00 -> Nov 1 00:10 = 4,200 s;
    pending (T2) Nov 2 10:00 -> 10:30 = 1,800 s; flagged (T3's answer) Nov 3 09:00 -> Nov 4
    09:00 = 86,400 s; users Nov 5 10:00 -> 10:10 = 600 s. Decided Nov 11: outside.
    All: 600, 1,800, 4,200, 86,400: median 3,000, p90 rank ceil(3.6) = 4: 86,400. Pending:
    1,800 and 4,200: median 3,000, p90 rank ceil(1.8) = 2: 4,200.

    Flags in the period: spam (upheld) and offensive (rejected) on T3's answer, Nov 3; spam
    (open) on T5, Nov 9; off-topic (upheld) on an answer in T2 deleted since, Nov 2. Outside:
    spam Oct 31 and Nov 11. Spam 2, offensive 1, off-topic 1; total 4.

    Active this week: dan (detractor) Nov 6 complaint and Nov 11 question, both in Mobile; not
    his thread at Nov 5 12:00 sharp (the window's open end), a deleted one on Nov 10, nor one
    after now. eve (detractor) Nov 7 in Billing, Spanish. ivy (influencer) Nov 9 idea; her
    praise on Nov 8 was triaged advocate, not listed.
    """
    asker, mona = make_user("asker"), make_user("mona", role=Role.MODERATOR)
    dan, eve, ivy = make_user("dan"), make_user("eve"), make_user("ivy")
    brand = forum.brand_id
    billing = Forum(brand_id=brand, slug="billing", name="Billing", description="")
    other = Brand(slug="other", name="Other", description="", theme={}, default_locale="en")
    db.add_all([billing, other])
    db.flush()

    t1 = thread(db, forum, asker, at(1, 10), sentiment="negative")
    t2 = thread(db, forum, asker, at(2, 9), sentiment="positive")
    t3 = thread(db, forum, asker, at(4, 9), sentiment="negative", locale="es")
    thread(db, forum, asker, at(8, 23, 59))
    t5 = thread(db, billing, asker, at(9, 0), sentiment="neutral")
    thread(db, forum, asker, at(3, 9), sentiment="negative", visibility=Visibility.DELETED)
    thread(db, forum, asker, at(3, 10), sentiment="negative", kind=ThreadKind.COMPLAINT)
    thread(db, forum, asker, at(31, 9, month=10), sentiment="negative")

    t3_answer = reply(db, t3, mona, at(4, 10))
    t2_gone = reply(db, t2, dan, at(2, 9, 30), visibility=Visibility.DELETED)
    item(db, brand, Queue.PENDING, t2, asker, at(2, 9))
    item(db, brand, Queue.FLAGGED, t3_answer, mona, at(4, 11))
    item(db, brand, Queue.FLAGGED, t5, asker, at(9, 1))
    item(db, brand, Queue.USERS, None, dan, at(10, 9))
    item(db, other.id, Queue.USERS, None, eve, at(10, 9))
    item(db, brand, Queue.PENDING, t1, asker, at(31, 23, month=10), at(1, 0, 10))
    item(db, brand, Queue.PENDING, t2, asker, at(2, 10), at(2, 10, 30))
    item(db, brand, Queue.FLAGGED, t3_answer, mona, at(3, 9), at(4, 9))
    item(db, brand, Queue.USERS, None, eve, at(5, 10), at(5, 10, 10))
    item(db, brand, Queue.FLAGGED, t5, asker, at(9, 2), at(11, 9))

    flag(db, t3_answer, asker, FlagReason.SPAM, at(3, 9), FlagStatus.UPHELD)
    flag(db, t3_answer, dan, FlagReason.OFFENSIVE, at(3, 9, 5), FlagStatus.REJECTED)
    flag(db, t5, mona, FlagReason.SPAM, at(9, 1), FlagStatus.OPEN)
    flag(db, t2_gone, mona, FlagReason.OFF_TOPIC, at(2, 9, 40), FlagStatus.UPHELD)
    flag(db, t1, mona, FlagReason.SPAM, at(31, 10, month=10), FlagStatus.UPHELD)
    flag(db, t2, dan, FlagReason.SPAM, at(11, 10), FlagStatus.REJECTED)

    complaint = {"kind": ThreadKind.COMPLAINT, "author_segment": "detractor"}
    thread(db, forum, dan, at(6, 10), **complaint)
    thread(db, forum, dan, at(11, 9), author_segment="detractor")
    thread(db, forum, dan, NOW - timedelta(days=7), **complaint)
    thread(db, forum, dan, at(10, 9), visibility=Visibility.DELETED, **complaint)
    thread(db, forum, dan, NOW + timedelta(hours=1), **complaint)
    thread(db, billing, eve, at(7, 9), locale="es", **complaint)
    thread(db, forum, ivy, at(9, 9), kind=ThreadKind.IDEA, author_segment="influencer")
    thread(db, forum, ivy, at(8, 9), kind=ThreadKind.PRAISE, author_segment="advocate")
    db.commit()


def weeks(panel_weeks: list[Week]) -> list[tuple[object, ...]]:
    return [(w.week, w.start.day, w.end.day, w.negative, w.neutral, w.positive, w.untriaged)
            for w in panel_weeks]  # fmt: skip


@pytest.mark.usefixtures("health_data")
def test_health_panel_figures(db: Session, forum: Forum) -> None:
    panel = health_panel(db, forum.brand, period(), now=NOW)
    assert [(q.queue, q.open) for q in panel.queues] == [("pending", 1), ("flagged", 2),
                                                          ("users", 1)]  # fmt: skip
    assert panel.time_to_action == Times(4, 3000.0, 86400.0)
    assert panel.time_to_action_by_queue == {
        "pending": Times(2, 3000.0, 4200.0),
        "flagged": Times(1, 86400.0, 86400.0),
        "users": Times(1, 600.0, 600.0),
    }
    assert [(f.reason, f.flags, f.upheld, f.rejected, f.open) for f in panel.flags] == [
        ("spam", 2, 1, 0, 1), ("offensive", 1, 0, 1, 0), ("off_topic", 1, 1, 0, 0),
        ("duplicate", 0, 0, 0, 0), ("needs_agent", 0, 0, 0, 0), ("other", 0, 0, 0, 0),
    ]  # fmt: skip
    assert panel.flags_total == 4
    assert weeks(panel.sentiment) == [
        ("2026-W44", 1, 1, 1, 0, 0, 0),
        ("2026-W45", 2, 8, 1, 0, 1, 1),
        ("2026-W46", 9, 10, 0, 1, 0, 0),
    ]
    assert panel.active_since == at(5, 12)
    listed = [(p.name, p.segment, p.thread_count, [t.created_at for t in p.threads])
              for p in (*panel.detractors, *panel.influencers)]  # fmt: skip
    assert listed == [
        ("dan", "detractor", 2, [at(11, 9), at(6, 10)]),
        ("eve", "detractor", 1, [at(7, 9)]),
        ("ivy", "influencer", 1, [at(9, 9)]),
    ]
    assert panel.detractors[0].threads[0].title == "Thread 11 09:00"


@pytest.mark.usefixtures("health_data")
def test_health_panel_respects_the_forum_and_language_filters(db: Session, forum: Forum) -> None:
    # Billing: T5 (flagged now, flagged item decided Nov 11 only, a spam flag, neutral in W46)
    # and eve's thread; the reported account counts whatever the filter.
    billing = health_panel(db, forum.brand, period(forum="billing"), now=NOW)
    assert [(q.queue, q.open) for q in billing.queues] == [("pending", 0), ("flagged", 1),
                                                            ("users", 1)]  # fmt: skip
    assert billing.time_to_action == Times(1, 600.0, 600.0)  # the account item only
    assert billing.flags_total == 1
    assert weeks(billing.sentiment) == [
        ("2026-W44", 1, 1, 0, 0, 0, 0),
        ("2026-W45", 2, 8, 0, 0, 0, 0),
        ("2026-W46", 9, 10, 0, 1, 0, 0),
    ]
    assert [p.name for p in billing.detractors] == ["eve"]
    assert billing.influencers == []

    # Spanish: T3 (its flagged answer: open now, decided once in 86,400 s; spam upheld and
    # offensive rejected; negative in W45) and eve's thread.
    spanish = health_panel(db, forum.brand, period(language="es"), now=NOW)
    assert [(q.queue, q.open) for q in spanish.queues] == [("pending", 0), ("flagged", 1),
                                                            ("users", 1)]  # fmt: skip
    # 600 and 86,400 s: median 43,500, p90 rank ceil(1.8) = 2.
    assert spanish.time_to_action == Times(2, 43500.0, 86400.0)
    assert spanish.time_to_action_by_queue["pending"] == Times(0, None, None)
    flagged = [(f.reason, f.flags) for f in spanish.flags if f.flags]
    assert flagged == [("spam", 1), ("offensive", 1)]
    assert [w.negative for w in spanish.sentiment] == [0, 1, 0]
    assert [p.name for p in spanish.detractors] == ["eve"]


def test_health_panel_with_no_data(db: Session, forum: Forum) -> None:
    panel = health_panel(db, forum.brand, period(), now=NOW)
    assert [(q.queue, q.open) for q in panel.queues] == [("pending", 0), ("flagged", 0),
                                                          ("users", 0)]  # fmt: skip
    assert panel.time_to_action == Times(0, None, None)
    assert set(panel.time_to_action_by_queue.values()) == {Times(0, None, None)}
    assert panel.flags_total == 0
    assert all(line.flags == 0 for line in panel.flags)
    totals = [(w.week, w.negative + w.neutral + w.positive + w.untriaged) for w in panel.sentiment]
    assert totals == [("2026-W44", 0), ("2026-W45", 0), ("2026-W46", 0)]
    assert (panel.detractors, panel.influencers) == ([], [])


@pytest.mark.usefixtures("health_data")
def test_health_rows_carry_the_panels_numbers(db: Session, forum: Forum) -> None:
    rows = health_rows(health_panel(db, forum.brand, period(), now=NOW))
    assert all(set(row) <= set(HEALTH_COLUMNS) for row in rows)
    assert [(r["label"], r["count"]) for r in rows if r["section"] == "queue"] == [
        ("pending", 1), ("flagged", 2), ("users", 1)
    ]  # fmt: skip
    [overall] = [r for r in rows if r["section"] == "time_to_action" and r["label"] == "all"]
    assert (overall["count"], overall["median_seconds"], overall["p90_seconds"]) == (
        4, 3000.0, 86400.0
    )  # fmt: skip
    [w45] = [r for r in rows if r["section"] == "sentiment" and r["label"] == "2026-W45"]
    assert (w45["start"], w45["end"], w45["negative"], w45["untriaged"]) == (
        "2026-11-02", "2026-11-08", 1, 1
    )  # fmt: skip
    people = [(r["section"], r["label"], r["count"]) for r in rows
              if r["section"] in ("detractor", "influencer")]  # fmt: skip
    assert people == [("detractor", "dan", 2), ("detractor", "dan", 2), ("detractor", "eve", 1),
                      ("influencer", "ivy", 1)]  # fmt: skip
