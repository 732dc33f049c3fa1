"""The admin's service-policy page and members' expert-invitation preferences."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.audit import AuditLog
from community.core.models import Forum, Role, User
from crowdservice import sla, triage
from crowdservice.models import Priority, ServicePolicy
from tests.conftest import csrf_token, fresh

PAGE = "/admin/brands/acme/service"


def _rule_fields(rules: list[dict[str, object]], blank: int = 0) -> dict[str, object]:
    """What the rules form sends for `rules` in order (and `blank` untouched empty rows)."""
    fields: dict[str, object] = {"rule_rows": str(len(rules) + blank)}
    for index, rule in enumerate(rules):
        prefix = f"rule-{index}-"
        words = rule.get("any_words", [])
        assert isinstance(words, list)
        fields |= {
            f"{prefix}position": str(index + 1),
            f"{prefix}name": rule["name"],
            f"{prefix}description": rule.get("description", ""),
            f"{prefix}types": rule.get("types", []),
            f"{prefix}sentiments": rule.get("sentiments", []),
            f"{prefix}segments": rule.get("segments", []),
            f"{prefix}words": ", ".join(words),
            f"{prefix}max_score": str(rule.get("max_score", "")),
            f"{prefix}outcome": "none" if rule.get("no_response") else rule["priority"],
        }
    for index in range(len(rules), len(rules) + blank):
        fields |= {f"rule-{index}-position": str(index + 1), f"rule-{index}-outcome": "P3"}
    return fields


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
        **_rule_fields(triage.DEFAULT_RULES[:3], blank=3),
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
    refused = browser.post(
        PAGE,
        data=_form(
            token,
            **{"rule-1-max_score": "lots", "rule-4-name": "typed-but-refused"},
            P2_first_response="soon",
            timezone="Mars/Olympus",
        ),
    )
    assert refused.status_code == 422
    assert "Nothing was saved" in refused.text
    assert 'Rule 2: "max_score" must be a number from -1 to 1.' in html.unescape(refused.text)
    # What was typed is still in the rows.
    assert 'name="rule-1-max_score" value="lots"' in refused.text
    assert 'name="rule-4-name" value="typed-but-refused"' in refused.text
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


# --- the priority rules form and its JSON import and export ----------------------------------


def _stored_rules(db: Session, forum: Forum) -> list[dict[str, object]]:
    fresh(db)
    policy = db.get(ServicePolicy, forum.brand_id)
    return list(policy.triage_rules) if policy is not None else []


def test_the_rules_form_reorders_removes_and_adds_rules_without_javascript(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]], forum: Forum, db: Session
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    page = browser.get(PAGE).text
    defaults = triage.DEFAULT_RULES
    # One row per default rule, then three empty rows to add rules in; no JSON to edit.
    assert f'name="rule_rows" value="{len(defaults) + 3}"' in page
    assert 'name="rule-1-name" value="critical-words"' in page
    assert page.count("New rule") == 3
    assert 'name="rules"' not in page

    first_four = defaults[:4]
    fields = _form(csrf_token(browser, PAGE), **_rule_fields(first_four, blank=1))
    fields |= {
        "rule-1-remove": "1",  # critical-words goes
        "rule-2-position": "0",  # influential-negative-complaint moves to the top
        "rule-4-position": "2.5",  # the new rule lands after troll-noise
        "rule-4-name": "vip-billing",
        "rule-4-types": ["complaint"],
        "rule-4-segments": ["customer"],
        "rule-4-words": "invoice,\nbill*",
        "rule-4-outcome": "P2",
    }
    saved = browser.post(PAGE, data=fields, follow_redirects=False)
    assert saved.status_code == 303, saved.text[:300]
    stored = _stored_rules(db, forum)
    assert [rule["name"] for rule in stored] == [
        "influential-negative-complaint",
        "troll-noise",
        "vip-billing",
        "negative-problem-or-complaint",
    ]
    assert stored[2] == {
        "name": "vip-billing",
        "any_words": ["invoice", "bill*"],
        "types": ["complaint"],
        "segments": ["customer"],
        "priority": "P2",
    }
    shown = browser.get(PAGE).text
    assert 'name="rule-0-name" value="influential-negative-complaint"' in shown
    assert 'name="rule-2-name" value="vip-billing"' in shown
    assert f'name="rule_rows" value="{4 + 3}"' in shown


def test_rules_typed_in_the_form_or_imported_as_json_are_checked_alike(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]], forum: Forum, db: Session
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    twice = [{"name": "same", "priority": "P1"}, {"name": "same", "priority": "P2"}]
    from_form = browser.post(PAGE, data=_form(csrf_token(browser, PAGE), **_rule_fields(twice)))
    from_json = browser.post(
        f"{PAGE}/rules",
        data={"csrf_token": csrf_token(browser, PAGE), "rules_json": json.dumps(twice)},
    )
    message = 'Rule 2: the name "same" is used twice.'
    assert from_form.status_code == from_json.status_code == 422
    assert message in html.unescape(from_form.text) and message in html.unescape(from_json.text)
    # Tampered choices are refused too, and nothing is stored.
    odd = _form(csrf_token(browser, PAGE), **_rule_fields(twice[:1])) | {"rule-0-types": ["x"]}
    assert browser.post(PAGE, data=odd).status_code == 422
    assert browser.post(PAGE, data={**odd, "rule_rows": "9999"}).status_code == 422
    assert _stored_rules(db, forum) == []


def test_rules_export_and_import_as_json(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]], forum: Forum, db: Session
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    exported = browser.get(f"{PAGE}/rules.json")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/json")
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.json() == triage.DEFAULT_RULES
    assert f'href="{PAGE}/rules.json"' in browser.get(PAGE).text

    mine = [
        {"name": "outage", "any_words": ["outage"], "priority": "P1"},
        {"name": "rest", "priority": "P4"},
    ]
    token = csrf_token(browser, PAGE)
    imported = browser.post(
        f"{PAGE}/rules", data={"csrf_token": token, "rules_json": json.dumps(mine)},
        follow_redirects=False,
    )  # fmt: skip
    assert imported.status_code == 303
    assert _stored_rules(db, forum) == mine
    assert browser.get(f"{PAGE}/rules.json").json() == mine
    assert 'name="rule-1-name" value="rest"' in browser.get(PAGE).text
    audit = db.scalars(select(AuditLog).where(AuditLog.action == "service_policy.saved")).one()
    assert audit.reason == "rules imported"

    broken = browser.post(f"{PAGE}/rules", data={"csrf_token": token, "rules_json": "[{oops"})
    assert broken.status_code == 422
    assert "This is not valid JSON" in broken.text and "[{oops" in broken.text
    assert _stored_rules(db, forum) == mine
    refused = browser.post(f"{PAGE}/rules", data={"rules_json": "[]"})
    assert refused.status_code == 403  # no CSRF token
    back = browser.post(f"{PAGE}/rules", data={"csrf_token": token, "rules_json": "[]"})
    assert back.status_code == 200  # followed to the page
    assert _stored_rules(db, forum) == [] and "These are the defaults." in back.text

    member, _member = as_role(Role.MEMBER)
    assert member.get(f"{PAGE}/rules.json", follow_redirects=False).status_code == 403
    member_token = csrf_token(member, "/")
    assert (
        member.post(
            f"{PAGE}/rules", data={"csrf_token": member_token, "rules_json": "[]"},
            follow_redirects=False,
        ).status_code
        == 403
    )  # fmt: skip


def test_saving_the_default_rules_as_shown_keeps_following_the_defaults(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]], forum: Forum, db: Session
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    fields = _form(csrf_token(browser, PAGE), **_rule_fields(triage.DEFAULT_RULES, blank=3))
    assert browser.post(PAGE, data=fields, follow_redirects=False).status_code == 303
    fresh(db)
    policy = db.get(ServicePolicy, forum.brand_id)
    assert policy is not None and policy.triage_rules == []
