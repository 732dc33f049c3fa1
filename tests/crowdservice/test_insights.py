"""Insights (crowdservice.insights): each figure computed on a small seeded data set whose
expected values are worked out by hand below, the same numbers from the page, the JSON API
and the CSV export, and nobody but agents and admins sees any of it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from community.core.clock import utcnow
from community.core.models import Forum, Role, Thread, User, Visibility
from crowdservice.insights.panels import PANELS
from crowdservice.insights.period import insights_filter
from crowdservice.insights.service_levels import nearest_rank, service_panel
from crowdservice.insights.volume import volume
from crowdservice.models import (
    BreachKind,
    Escalation,
    EscalationReason,
    EscalationStatus,
    Priority,
    Resolution,
    ServicePolicy,
    SLABreach,
)
from crowdservice.sla import policy_for, targets_of
from tests.crowdservice.insights_data import answer, at, question

UserFactory = Callable[..., User]
AsRole = Callable[[Role | None], tuple[TestClient, User | None]]
START, END = date(2026, 11, 1), date(2026, 11, 3)
PERIOD = {"start": START.isoformat(), "end": END.isoformat()}


@pytest.fixture
def billing(db: Session, forum: Forum) -> Forum:
    made = Forum(brand_id=forum.brand_id, slug="billing", name="Billing", description="")
    db.add(made)
    db.commit()
    return made


@pytest.fixture
def volume_data(db: Session, forum: Forum, billing: Forum, make_user: UserFactory) -> None:
    """Three counted threads on Nov 1-3: two in Mobile on Nov 1 (a question, negative, in
    English; a problem, neutral, in Spanish), one untriaged in Billing on Nov 3; one answer
    counted (Nov 2). Left out: a thread the evening before, a deleted one, an answer after the
    period, an answer waiting for review."""
    asker, helper = make_user("asker"), make_user("helper")
    first = question(db, forum, asker, at(1, 10), interaction_type="question", sentiment="negative")
    question(db, forum, asker, at(1, 23, 59), interaction_type="problem", sentiment="neutral",
           locale="es")  # fmt: skip
    third = question(db, billing, asker, at(3, 8))
    question(db, forum, asker, at(1, 0) - timedelta(minutes=1))
    question(db, forum, asker, at(2, 9), visibility=Visibility.DELETED)
    answer(db, first, helper, at(2, 12))
    answer(db, first, helper, at(4, 0))
    answer(db, third, helper, at(3, 9), visibility=Visibility.PENDING)
    db.commit()


@pytest.mark.usefixtures("volume_data")
def test_volume_counts_new_threads_and_answers_per_day_and_breaks_them_down(
    db: Session, forum: Forum
) -> None:
    panel = volume(db, forum.brand, insights_filter(date(2026, 12, 6), start=START, end=END))
    assert [(day.day.day, day.threads, day.answers) for day in panel.days] == [
        (1, 2, 0),
        (2, 0, 1),
        (3, 1, 0),
    ]
    assert (panel.threads, panel.answers) == (3, 1)
    assert [(s.label, s.threads) for s in panel.by_forum] == [("Mobile", 2), ("Billing", 1)]
    assert [(s.label, s.threads) for s in panel.by_type] == [
        ("problem", 1), ("question", 1), ("untriaged", 1)
    ]  # fmt: skip
    assert [(s.label, s.threads) for s in panel.by_sentiment] == [
        ("negative", 1), ("neutral", 1), ("untriaged", 1)
    ]  # fmt: skip
    assert [(s.label, s.threads) for s in panel.by_language] == [("en", 2), ("es", 1)]

    if db.get_bind().dialect.name == "postgresql":
        # Days are UTC days whatever the connection's time zone (here UTC+14).
        db.execute(text("SET TIME ZONE 'Pacific/Kiritimati'"))
        again = volume(db, forum.brand, insights_filter(date(2026, 12, 6), start=START, end=END))
        assert again.days == panel.days
        db.rollback()

    today = date(2026, 12, 6)
    only_billing = volume(db, forum.brand, insights_filter(today, start=START, end=END,
                                                           forum="billing"))  # fmt: skip
    assert (only_billing.threads, only_billing.answers) == (1, 0)
    spanish = volume(db, forum.brand, insights_filter(today, start=START, end=END, language="ES"))
    assert [(day.threads, day.answers) for day in spanish.days] == [(1, 0), (0, 0), (0, 0)]


@pytest.fixture
def service_data(db: Session, forum: Forum, make_user: UserFactory) -> datetime:
    """Around the clock (no business hours). First responses: P1 at 5 min (target met), P1 at
    30 min (missed), P1 never (missed), P2 at 20 min (met); a P3 not due until next year
    (pending); an untriaged thread (not counted). Escalations: resolved by an agent in 2 h less
    10 min waiting on the customer (6,600 s), by the community in a day (86,400 s), one
    returned (not a resolution); two open now, 2 h old (held by Agnes) and 30 min old. A
    first-response breach met 20 min late; another still missing."""
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    asker, peer = make_user("asker"), make_user("peer")
    agnes = make_user("agnes", role=Role.AGENT)

    def triaged(created: datetime, priority: str, due: timedelta, answered: timedelta | None,
                ) -> Thread:  # fmt: skip
        made = question(db, forum, asker, created, priority=priority,
                      first_response_due_at=created + due,
                      first_response_at=created + answered if answered else None)  # fmt: skip
        if answered:
            answer(db, made, peer, created + answered)
        return made

    quick = triaged(at(1, 9), "P1", timedelta(minutes=10), timedelta(minutes=5))
    late = triaged(at(1, 10), "P1", timedelta(minutes=10), timedelta(minutes=30))
    never = triaged(at(1, 11), "P1", timedelta(minutes=10), None)
    p2 = triaged(at(1, 12), "P2", timedelta(hours=1), timedelta(minutes=20))
    returned = triaged(at(2, 9), "P3", timedelta(days=60), None)
    question(db, forum, asker, at(2, 10))

    def escalation(on: Thread, created: datetime, **fields: object) -> Escalation:
        made = Escalation(
            thread_id=on.id, brand_id=forum.brand_id, reason=EscalationReason.NO_RESPONSE,
            priority=Priority(on.priority), first_response_due_at=created,
            resolution_due_at=created + timedelta(hours=4), created_at=created, **fields,
        )  # fmt: skip
        db.add(made)
        db.flush()
        return made

    by_agent = escalation(late, at(1, 10, 10), status=EscalationStatus.RESOLVED,
                          resolution=Resolution.AGENT, resolved_at=at(1, 12, 10),
                          paused_seconds=600)  # fmt: skip
    by_crowd = escalation(never, at(1, 11, 10), status=EscalationStatus.RESOLVED,
                          resolution=Resolution.COMMUNITY, resolved_at=at(2, 11, 10))  # fmt: skip
    escalation(returned, at(2, 10), status=EscalationStatus.RETURNED,
               resolution=Resolution.RETURNED, resolved_at=at(2, 11))  # fmt: skip
    escalation(quick, now - timedelta(hours=2), status=EscalationStatus.CLAIMED,
               assigned_agent_id=agnes.id)  # fmt: skip
    escalation(p2, now - timedelta(minutes=30))
    db.add(SLABreach(escalation_id=by_agent.id, kind=BreachKind.FIRST_RESPONSE,
                     priority=Priority.P1, due_at=at(1, 10, 10), recorded_at=at(1, 10, 11),
                     met_at=at(1, 10, 30), seconds_over=1200))  # fmt: skip
    db.add(SLABreach(escalation_id=by_crowd.id, kind=BreachKind.FIRST_RESPONSE,
                     priority=Priority.P1, due_at=at(1, 11, 10),
                     recorded_at=at(1, 11, 11)))  # fmt: skip
    db.commit()
    return now


def test_service_times_targets_breaches_and_load(
    db: Session, forum: Forum, service_data: datetime
) -> None:
    now = service_data
    period = insights_filter(now.date(), start=START, end=END)
    panel = service_panel(db, forum.brand, period, now=now)

    # Responses of 300, 1,800 and 1,200 s: median 1,200; 90th percentile: rank ceil(2.7) = 3.
    assert (panel.first_response.count, panel.first_response.median) == (3, 1200)
    assert panel.first_response.p90 == 1800
    p1 = panel.first_response_by_priority["P1"]
    assert (p1.count, p1.median, p1.p90) == (2, 1050, 1800)
    assert panel.first_response_by_priority["P2"].median == 1200

    within = {line.priority: line for line in panel.within_target}
    assert (within["P1"].within, within["P1"].counted, within["P1"].pending) == (1, 3, 0)
    assert within["P1"].share == pytest.approx(1 / 3)
    targets = targets_of(policy_for(db, forum.brand_id))
    assert within["P1"].target_seconds == targets[Priority.P1].first_response.total_seconds()
    assert (within["P2"].within, within["P2"].counted, within["P2"].share) == (1, 1, 1.0)
    assert (within["P3"].counted, within["P3"].pending, within["P3"].share) == (0, 1, None)
    assert "P4" not in within

    # 6,600 and 86,400 s: median 46,500; the returned escalation is no resolution.
    assert (panel.resolution.count, panel.resolution.median) == (2, 46500)
    assert panel.resolution.p90 == 86400

    [breaches] = panel.breaches
    assert (breaches.kind, breaches.priority, breaches.count) == ("first_response", "P1", 2)
    still_over = int((now - at(1, 11, 10)).total_seconds())
    assert breaches.seconds_over == 1200 + still_over
    assert breaches.still_missing == 1

    assert dict(panel.open_by_age) == {
        "under 1 hour": 1, "1-4 hours": 1, "4-24 hours": 0, "1-3 days": 0, "over 3 days": 0
    }  # fmt: skip
    assert panel.load == [("agnes", 1), ("unassigned", 1)]


def test_nearest_rank_percentile() -> None:
    assert nearest_rank([], 0.9) is None
    assert nearest_rank([5.0], 0.9) == 5.0
    assert nearest_rank([float(n) for n in range(1, 11)], 0.9) == 9.0
    assert nearest_rank([float(n) for n in range(1, 12)], 0.9) == 10.0


@pytest.mark.usefixtures("volume_data")
def test_page_api_and_csv_give_the_same_numbers(as_role: AsRole, forum: Forum) -> None:
    client, _agent = as_role(Role.AGENT)
    page = client.get("/b/acme/insights", params=PERIOD)
    assert page.status_code == 200
    assert "3 new threads, 1 answer." in page.text
    assert 'id="volume-chart-title"' in page.text  # the chart, with its table after it

    data = client.get("/api/v1/analytics/acme/volume", params=PERIOD).json()
    assert data["period"] == PERIOD
    assert [(d["day"], d["threads"], d["answers"]) for d in data["days"]] == [
        ("2026-11-01", 2, 0), ("2026-11-02", 0, 1), ("2026-11-03", 1, 0)
    ]  # fmt: skip

    exported = client.get("/api/v1/analytics/acme/volume.csv", params=PERIOD)
    assert exported.headers["content-type"].startswith("text/csv")
    assert "acme-volume-2026-11-01-2026-11-03.csv" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    days = [
        (r["label"], int(r["threads"]), int(r["answers"])) for r in rows if r["section"] == "day"
    ]
    assert days == [(d["day"], d["threads"], d["answers"]) for d in data["days"]]
    forums = {r["label"]: int(r["threads"]) for r in rows if r["section"] == "forum"}
    assert forums == {s["label"]: s["threads"] for s in data["by_forum"]} == {
        "Mobile": 2, "Billing": 1
    }  # fmt: skip

    service = client.get("/api/v1/analytics/acme/service", params=PERIOD).json()
    service_csv = list(csv.DictReader(io.StringIO(
        client.get("/api/v1/analytics/acme/service.csv", params=PERIOD).text)))  # fmt: skip
    [open_now] = [r for r in service_csv if r["section"] == "load"]
    assert (open_now["priority"], int(open_now["count"])) == ("unassigned", 0)
    assert service["load"] == [["unassigned", 0]]


@pytest.mark.parametrize("role", [None, Role.MEMBER, Role.MODERATOR])
def test_members_moderators_and_anonymous_see_nothing(
    as_role: AsRole, forum: Forum, role: Role | None
) -> None:
    client, _user = as_role(role)
    paths = ["/b/acme/insights", "/b/acme/insights/weekly"]
    for name in PANELS:
        paths += [f"/api/v1/analytics/acme/{name}", f"/api/v1/analytics/acme/{name}.csv"]
    for path in paths:
        response = client.get(path, follow_redirects=False)
        assert response.status_code in (401, 403, 303), path
        assert "New threads" not in response.text
        assert "text/csv" not in response.headers.get("content-type", "")


@pytest.mark.parametrize("role", [Role.AGENT, Role.ADMIN])
def test_agents_and_admins_get_every_panel(as_role: AsRole, forum: Forum, role: Role) -> None:
    client, _user = as_role(role)
    assert client.get("/b/acme/insights").status_code == 200
    assert client.get("/api/v1/analytics/acme/service").status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-11-05", "end": "2026-11-01"}, "start"),
        ({"start": "2024-01-01", "end": "2026-11-01"}, "start"),
        ({"end": (utcnow().date() + timedelta(days=2)).isoformat()}, "end"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_a_bad_period_is_refused_with_the_reason(
    as_role: AsRole, forum: Forum, params: dict[str, str], field: str
) -> None:
    client, _agent = as_role(Role.AGENT)
    for path in ("/api/v1/analytics/acme/volume", "/api/v1/analytics/acme/service.csv"):
        response = client.get(path, params=params)
        assert response.status_code == 422, (path, response.text)
        assert field in response.text
    assert client.get("/b/acme/insights", params=params).status_code == 422
    assert client.get("/api/v1/analytics/nobrand/volume").status_code == 404


@pytest.mark.usefixtures("volume_data")
def test_every_panel_is_on_the_page_and_in_the_api_as_json_and_csv(
    as_role: AsRole, forum: Forum
) -> None:
    client, _agent = as_role(Role.AGENT)
    page = client.get("/b/acme/insights", params=PERIOD).text
    for name, panel in PANELS.items():
        assert f'id="panel-{name}"' in page, name
        assert f"/api/v1/analytics/acme/{name}.csv?" in page, name
        data = client.get(f"/api/v1/analytics/acme/{name}", params=PERIOD)
        assert data.status_code == 200, (name, data.text)
        assert data.json()["period"] == PERIOD
        exported = client.get(f"/api/v1/analytics/acme/{name}.csv", params=PERIOD)
        assert exported.status_code == 200
        header = next(csv.reader(io.StringIO(exported.text)))
        assert header == list(panel.columns), name
    unknown = client.get("/api/v1/analytics/acme/nothing", params=PERIOD)
    assert unknown.status_code == 404
    assert client.get("/api/v1/analytics/acme/nothing.csv").status_code == 404


def test_response_times_count_only_the_brands_business_hours(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    """Open Monday to Friday 09:00-17:00 UTC. A question asked on Friday 6 November at 16:30
    and answered on Monday the 9th at 09:30 waited 30 minutes on Friday and 30 on Monday:
    3,600 s of business time (not the 65 hours on the clock)."""
    db.add(ServicePolicy(brand_id=forum.brand_id, targets={}, triage_rules=[],
                         business_hours={"timezone": "UTC", "days": [0, 1, 2, 3, 4],
                                         "start": "09:00", "end": "17:00"}))  # fmt: skip
    asker, peer = make_user("asker"), make_user("peer")
    asked, answered = at(6, 16, 30), at(9, 9, 30)
    asked_then = question(db, forum, asker, asked, priority="P3",
                      first_response_due_at=at(9, 12, 30), first_response_at=answered)  # fmt: skip
    answer(db, asked_then, peer, answered)
    db.commit()

    period = insights_filter(date(2026, 12, 6), start=date(2026, 11, 1), end=date(2026, 11, 10))
    panel = service_panel(db, forum.brand, period, now=datetime(2026, 12, 6, tzinfo=UTC))
    assert (panel.first_response.count, panel.first_response.median) == (1, 3600)
    [p3] = panel.within_target
    assert (p3.priority, p3.within, p3.counted) == ("P3", 1, 1)


def test_the_service_headline_is_the_same_on_the_page_in_json_and_in_csv(
    as_role: AsRole, service_data: datetime
) -> None:
    client, _agent = as_role(Role.AGENT)
    page = client.get("/b/acme/insights", params=PERIOD).text
    assert re.search(r"P1 answered within 10 minutes:</strong>\s*33%\s*<span[^>]*>\(1 of 3;", page)
    data = client.get("/api/v1/analytics/acme/service", params=PERIOD).json()
    [p1] = [line for line in data["within_target"] if line["priority"] == "P1"]
    assert (p1["within"], p1["counted"]) == (1, 3)
    assert p1["share"] == pytest.approx(1 / 3)
    exported = client.get("/api/v1/analytics/acme/service.csv", params=PERIOD).text
    [row] = [r for r in csv.DictReader(io.StringIO(exported))
             if r["section"] == "within_target" and r["priority"] == "P1"]  # fmt: skip
    assert (int(row["within"]), int(row["counted"])) == (1, 3)
    assert float(row["share"]) == pytest.approx(p1["share"])
    assert float(row["target_seconds"]) == p1["target_seconds"] == 600
