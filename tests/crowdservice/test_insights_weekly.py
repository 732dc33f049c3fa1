"""The weekly summary (crowdservice.insights.weekly): last week's figures beside the week
before's, as a page for agents and admins, and as one notification per admin and week (an
e-mail too when their settings say "at once")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core import notifications
from community.core.models import (
    EmailPreference,
    Forum,
    Notification,
    NotificationKind,
    Role,
    User,
)
from community.core.outbox import OutboxEvent
from crowdservice.insights.period import week_of
from crowdservice.insights.weekly import (
    last_full_week,
    send_weekly_summaries,
    weekly_summary,
)
from tests.crowdservice.insights_data import answer, question

UserFactory = Callable[..., User]
AsRole = Callable[[Role | None], tuple[TestClient, User | None]]
WEEK = date(2026, 11, 23)  # a Monday
# Monday 30 November 2026, 07:00 UTC: the week of the 23rd is over and it is past 06:00.
MONDAY_MORNING = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


def test_weeks_are_iso_weeks() -> None:
    assert week_of(date(2026, 11, 29)) == WEEK  # a Sunday belongs to the Monday before
    assert week_of(WEEK) == WEEK
    assert last_full_week(date(2026, 11, 30)) == WEEK
    assert last_full_week(date(2026, 12, 6)) == WEEK


@pytest.fixture
def two_weeks(db: Session, forum: Forum, make_user: UserFactory) -> None:
    """Week of Nov 23: two questions (one answered in 5 min within its 10-min target, one never
    answered, its target passed), one answer. Week of Nov 16: one question answered in 20 min
    against a 10-min target."""
    asker, peer = make_user("asker"), make_user("peer")
    day = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    quick = question(db, forum, asker, day, priority="P1", first_response_due_at=day + timedelta(
        minutes=10), first_response_at=day + timedelta(minutes=5))  # fmt: skip
    answer(db, quick, peer, day + timedelta(minutes=5))
    later = day + timedelta(days=2)
    question(db, forum, asker, later, priority="P1",
           first_response_due_at=later + timedelta(minutes=10))  # fmt: skip
    before = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
    slow = question(
        db, forum, asker, before, priority="P1",
        first_response_due_at=before + timedelta(minutes=10),
        first_response_at=before + timedelta(minutes=20),
    )  # fmt: skip
    answer(db, slow, peer, before + timedelta(minutes=20))
    db.commit()


@pytest.mark.usefixtures("two_weeks")
def test_the_summary_puts_last_week_beside_the_week_before(db: Session, forum: Forum) -> None:
    summary = weekly_summary(db, forum.brand, date(2026, 11, 26), now=MONDAY_MORNING)
    week, before = summary.week, summary.previous
    assert (week.start, week.end) == (WEEK, date(2026, 11, 29))
    assert (week.threads, week.answers) == (2, 1)
    assert week.first_response_median == 300
    assert week.within_target == 0.5  # one of the two judged questions was answered in time
    assert (before.start, before.threads, before.answers) == (date(2026, 11, 16), 1, 1)
    assert (before.first_response_median, before.within_target) == (1200, 0.0)


@pytest.mark.usefixtures("two_weeks")
def test_each_admin_is_notified_once_per_week_and_brand(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    ada = make_user("ada", role=Role.ADMIN)
    ada.email_notifications = EmailPreference.IMMEDIATE
    quiet = make_user("quiet", role=Role.ADMIN)
    quiet.email_notifications = EmailPreference.OFF
    gone = make_user("gone", role=Role.ADMIN)
    gone.deactivated_at = MONDAY_MORNING - timedelta(days=1)
    make_user("agnes", role=Role.AGENT)
    db.commit()

    # Monday before 06:00: not yet.
    assert send_weekly_summaries(db, now=MONDAY_MORNING.replace(hour=5)) == 0
    assert send_weekly_summaries(db, now=MONDAY_MORNING) == 2
    db.commit()
    assert send_weekly_summaries(db, now=MONDAY_MORNING + timedelta(hours=3)) == 0

    sent = db.scalars(select(Notification).where(Notification.kind == NotificationKind.INSIGHTS))
    by_user = {row.user_id: row for row in sent}
    assert set(by_user) == {ada.id, quiet.id}
    note = by_user[ada.id]
    assert notifications.describe(note) == (
        "Last week in Acme: 2 new threads, 1 answers, 0 SLA breaches"
    )
    assert notifications.target_path(note) == "/b/acme/insights/weekly?week=2026-11-23"
    emails = db.scalars(
        select(OutboxEvent.payload).where(OutboxEvent.kind == notifications.EMAIL_EVENT)
    ).all()
    assert [payload["notification_id"] for payload in emails] == [note.id]


@pytest.mark.usefixtures("two_weeks")
def test_the_page_shows_the_figures_to_staff_only(as_role: AsRole, forum: Forum) -> None:
    agent, _user = as_role(Role.AGENT)
    page = agent.get("/b/acme/insights/weekly", params={"week": "2026-11-25"})
    assert page.status_code == 200
    assert "The week of 2026-11-23" in page.text
    assert '<tr id="weekly-threads"><th scope="row">New threads</th><td>2</td><td>1</td>' in (
        page.text
    )
    assert agent.get("/b/acme/insights/weekly", params={"week": "2999-01-04"}).status_code == 422
    member, _member = as_role(Role.MEMBER)
    refused = member.get("/b/acme/insights/weekly", follow_redirects=False)
    assert refused.status_code in (401, 403)
    assert "New threads" not in refused.text
