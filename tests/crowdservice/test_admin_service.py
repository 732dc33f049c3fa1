"""The admin's service-policy page and members' expert-invitation preferences."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.models import Forum, Role, User
from crowdservice import sla, triage
from crowdservice.models import Priority, ServicePolicy
from moderation.models import AuditLog
from tests.conftest import csrf_token, fresh

PAGE = "/admin/brands/acme/service"


def _form(token: str, **overrides: object) -> dict[str, object]:
    form: dict[str, object] = {
        "csrf_token": token,
        "P1_first_response": "5",
        "P1_resolution": "120",
        "P2_first_response": "",
        "P2_resolution": "",
        "hours_enabled": "1",
        "timezone": "Europe/Madrid",
        "days": ["0", "1", "2", "3", "4"],
        "start": "08:30",
        "end": "17:00",
        "expert_delay_factor": "0.25",
        "expert_daily_invitations": "2",
        "rules": json.dumps(triage.DEFAULT_RULES[:3]),
    }
    form.update(overrides)
    return form


def test_only_admins_see_and_save_the_service_policy(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]], forum: Forum
) -> None:
    for role in (None, Role.MEMBER, Role.MODERATOR, Role.AGENT):
        browser, _user = as_role(role)
        assert browser.get(PAGE, follow_redirects=False).status_code in (303, 401, 403), role
        token = csrf_token(browser, "/")
        refused = browser.post(PAGE, data=_form(token), follow_redirects=False)
        assert refused.status_code in (303, 401, 403), role


def test_a_saved_policy_drives_deadlines_and_is_audited(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]], forum: Forum, db: Session
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    page = browser.get(PAGE)
    assert page.status_code == 200
    assert "SLA targets" in page.text and "outage" in page.text  # the default rules, readable
    saved = browser.post(PAGE, data=_form(csrf_token(browser, PAGE)), follow_redirects=False)
    assert saved.status_code == 303, saved.text[:400]
    fresh(db)
    policy = db.get(ServicePolicy, forum.brand_id)
    assert policy is not None
    targets = sla.targets_of(policy)
    assert targets[Priority.P1].first_response.total_seconds() == 5 * 60
    assert targets[Priority.P1].resolution.total_seconds() == 120 * 60
    assert targets[Priority.P2].first_response.total_seconds() == 15 * 60  # blank: the default
    assert policy.business_hours == {
        "timezone": "Europe/Madrid", "days": [0, 1, 2, 3, 4], "start": "08:30", "end": "17:00",
    }  # fmt: skip
    assert len(policy.triage_rules) == 3
    assert policy.expert_delay_factor == 0.25 and policy.expert_daily_invitations == 2
    audit = db.scalars(select(AuditLog).where(AuditLog.action == "service_policy.saved")).one()
    assert audit.after is not None and audit.after["expert_daily_invitations"] == 2
    # A Monday 07:00 UTC (09:00 in Madrid, summer time) question: P1 answer due at 09:05 local.
    monday = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    due = sla.add_business_time(monday, targets[Priority.P1].first_response, policy.business_hours)
    assert due == datetime(2026, 6, 1, 7, 5, tzinfo=UTC)


def test_bad_input_changes_nothing_and_keeps_what_was_typed(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]], forum: Forum, db: Session
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    token = csrf_token(browser, PAGE)
    typed_rules = '[{"name": "mine", "priority": "P9"}'
    refused = browser.post(
        PAGE,
        data=_form(token, rules=typed_rules, P2_first_response="soon", timezone="Mars/Olympus"),
    )
    assert refused.status_code == 422
    assert "Nothing was saved" in refused.text
    assert "P9" in refused.text  # the typed rules are still in the box
    fresh(db)
    assert db.get(ServicePolicy, forum.brand_id) is None
    assert db.scalars(select(AuditLog).where(AuditLog.action == "service_policy.saved")).all() == []


def test_digits_of_other_scripts_are_refused(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]], forum: Forum, db: Session
) -> None:
    """int() raised on "²" (a 500 for the days) and read "١٢" as 12."""
    browser, _admin = as_role(Role.ADMIN)
    token = csrf_token(browser, PAGE)
    for typed in ("²", "١٢"):
        for field, value in (
            ("days", ["0", typed]),
            ("expert_daily_invitations", typed),
            ("expert_delay_factor", f"0.{typed}"),
            ("P1_first_response", typed),
            ("start", f"{typed}:00"),
        ):
            refused = browser.post(PAGE, data=_form(token, **{field: value}))
            assert refused.status_code == 422, (field, value, refused.status_code)
            assert "Nothing was saved" in refused.text
    fresh(db)
    assert db.get(ServicePolicy, forum.brand_id) is None


def test_members_choose_whether_experts_are_invited_and_when_they_are_away(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]], db: Session
) -> None:
    browser, member = as_role(Role.MEMBER)
    assert member is not None
    page = browser.get("/account")
    assert "Invite me to help with unanswered questions" in page.text
    token = csrf_token(browser, "/account")
    base = {"csrf_token": token, "display_name": member.display_name, "expert_fields": "1"}
    saved = browser.post(
        "/account/preferences", data={**base, "away_until": "2031-03-04"}, follow_redirects=False
    )
    assert saved.status_code == 303
    fresh(db)
    stored = db.get(User, member.id)
    assert stored is not None
    assert stored.expert_opt_out is True  # the box was left unticked
    assert stored.vacation_until is not None and stored.vacation_until.date().isoformat() == (
        "2031-03-04"
    )
    again = browser.post(
        "/account/preferences",
        data={**base, "expert_invitations": "1", "away_until": ""},
        follow_redirects=False,
    )
    assert again.status_code == 303
    fresh(db)
    stored = db.get(User, member.id)
    assert stored is not None and stored.expert_opt_out is False and stored.vacation_until is None
    bad = browser.post("/account/preferences", data={**base, "away_until": "next week"})
    assert bad.status_code == 422
    fresh(db)
    stored = db.get(User, member.id)
    assert stored is not None and stored.expert_opt_out is False


def test_admins_reach_the_policy_from_the_admin_page(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]], forum: Forum
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    assert "/admin/service" in browser.get("/admin/users").text
    landing = browser.get("/admin/service", follow_redirects=False)
    assert landing.status_code == 303 and landing.headers["location"] == PAGE
    agent, _agent = as_role(Role.AGENT)
    assert "/agent" in agent.get("/").text  # the support queue is in agents' navigation
    member, _member = as_role(Role.MEMBER)
    assert 'href="/agent"' not in member.get("/").text
