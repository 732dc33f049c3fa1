"""Known issues over HTTP: every page and action by role (anonymous, member, moderator, agent,
admin), CSRF, forms with bad input, follow/unfollow with and without htmx, and the JSON API."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.models import Brand, Forum, Role, Tag, User
from crowdservice.known_issues import service
from crowdservice.known_issues.forms import IssueForm
from crowdservice.known_issues.models import (
    KnownIssue,
    KnownIssueFollower,
    KnownIssueStatus,
    KnownIssueThread,
)
from kb.models import Article, ArticleStatus
from tests.conftest import QA, csrf_token, fresh

RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]
UserFactory = Callable[..., User]
HTMX = {"HX-Request": "true"}
ROLES = [None, Role.MEMBER, Role.MODERATOR, Role.AGENT, Role.ADMIN]
AGENTS = (Role.AGENT, Role.ADMIN)
AGENT_LIST = "/b/acme/agent/known-issues"


@pytest.fixture
def brand(db: Session, forum: Forum) -> Brand:
    found = db.get(Brand, forum.brand_id)
    assert found is not None
    db.add(Tag(brand_id=found.id, name="esim"))
    db.commit()
    return found


@pytest.fixture
def issue(db: Session, brand: Brand, make_user: UserFactory) -> KnownIssue:
    agent = make_user("ava", role=Role.AGENT)
    made = service.publish(
        db, agent, brand, IssueForm(title="Sign-in fails with error 502", summary="Use *the app*.")
    )
    db.commit()
    return made


def _post(
    client: TestClient, path: str, data: dict[str, object] | None = None, **extra: object
) -> object:
    token = csrf_token(client, "/login")
    return client.post(
        path, data={**(data or {}), "csrf_token": token}, follow_redirects=False, **extra
    )


def _code_for(role: Role | None, ok: int) -> int:
    if role is None:
        return 303  # to the sign-in page
    return ok if role in AGENTS else 403


def _reload(db: Session, issue: KnownIssue) -> KnownIssue:
    fresh(db)
    found = db.get(KnownIssue, issue.id)
    assert found is not None
    return found


# --- public pages ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_everyone_reads_the_issue_page_and_the_open_list(
    as_role: RoleClient, db: Session, issue: KnownIssue, role: Role | None
) -> None:
    client, _user = as_role(role)
    page = client.get(f"/b/acme/known-issues/{issue.id}")
    assert page.status_code == 200
    assert "Sign-in fails with error 502" in page.text and "<em>the app</em>" in page.text
    assert "Investigating" in page.text
    assert ("Notify me when it is fixed" in page.text) == (role is not None)
    listing = client.get("/b/acme/known-issues")
    assert listing.status_code == 200 and f"/b/acme/known-issues/{issue.id}" in listing.text


def test_closed_issues_stay_readable_but_leave_the_list_except_for_agents(
    as_role: RoleClient, db: Session, issue: KnownIssue, make_user: UserFactory
) -> None:
    service.close(db, make_user("cai", role=Role.AGENT), issue)
    db.commit()
    member, _ = as_role(Role.MEMBER)
    agent, _ = as_role(Role.AGENT)
    assert member.get(f"/b/acme/known-issues/{issue.id}").status_code == 200
    assert f"/known-issues/{issue.id}" not in member.get("/b/acme/known-issues").text
    assert f"/known-issues/{issue.id}" in agent.get("/b/acme/known-issues").text


def test_another_brands_address_or_an_unknown_issue_is_404(
    client: TestClient, db: Session, issue: KnownIssue
) -> None:
    db.add(Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en"))
    db.commit()
    assert client.get(f"/b/globex/known-issues/{issue.id}").status_code == 404
    assert client.get(f"/b/acme/known-issues/{issue.id + 100}").status_code == 404
    assert client.get("/b/nobrand/known-issues").status_code == 404
    assert client.get("/b/acme/known-issues/99999999999999999999999").status_code in (404, 422)


# --- following -------------------------------------------------------------------------------


def test_follow_and_unfollow_with_and_without_htmx(
    as_role: RoleClient, db: Session, issue: KnownIssue
) -> None:
    client, user = as_role(Role.MEMBER)
    assert user is not None
    page = f"/b/acme/known-issues/{issue.id}"
    response = _post(client, f"/known-issues/{issue.id}/follow")
    assert response.status_code == 303 and response.headers["location"] == page
    fresh(db)
    assert db.get(KnownIssueFollower, (issue.id, user.id)) is not None
    assert "Stop following" in client.get(page).text
    fragment = _post(client, f"/known-issues/{issue.id}/unfollow", headers=HTMX)
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="known-issue-follow">')
    assert "Notify me when it is fixed" in fragment.text and "<html" not in fragment.text
    fresh(db)
    assert db.get(KnownIssueFollower, (issue.id, user.id)) is None
    fragment = _post(client, f"/known-issues/{issue.id}/follow", headers=HTMX)
    assert "Stop following" in fragment.text


def test_following_from_the_ask_forms_suggestions_answers_with_a_sentence_not_a_form(
    as_role: RoleClient, db: Session, issue: KnownIssue
) -> None:
    """The button sits inside the ask form: what replaces it must not be a nested form."""
    client, user = as_role(Role.MEMBER)
    assert user is not None
    target = {**HTMX, "HX-Target": f"follow-known-issue-{issue.id}"}
    response = _post(client, f"/known-issues/{issue.id}/follow", headers=target)
    assert response.status_code == 200
    assert "We will tell you when it is fixed." in response.text
    assert "<form" not in response.text and "<html" not in response.text
    fresh(db)
    assert db.get(KnownIssueFollower, (issue.id, user.id)) is not None
    # A second click (or two at once) is still one follow.
    assert _post(client, f"/known-issues/{issue.id}/follow", headers=target).status_code == 200
    fresh(db)
    followers = db.scalars(select(KnownIssueFollower)).all()
    assert [(row.known_issue_id, row.user_id) for row in followers] == [(issue.id, user.id)]


def test_following_needs_a_signed_in_member_and_the_csrf_token(
    client: TestClient, as_role: RoleClient, db: Session, issue: KnownIssue
) -> None:
    anonymous = _post(client, f"/known-issues/{issue.id}/follow")
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]
    member, _ = as_role(Role.MEMBER)
    forged = member.post(f"/known-issues/{issue.id}/follow", follow_redirects=False)
    assert forged.status_code == 403
    fresh(db)
    assert db.scalars(select(KnownIssueFollower)).all() == []
    assert _post(member, "/known-issues/424242/follow").status_code == 404


def test_a_fixed_issue_offers_no_follow_button_and_refuses_following(
    as_role: RoleClient, db: Session, issue: KnownIssue, make_user: UserFactory
) -> None:
    service.post_update(db, make_user("cai", role=Role.AGENT), issue, "fixed", "Done.")
    db.commit()
    member, _ = as_role(Role.MEMBER)
    assert "Notify me when it is fixed" not in member.get(f"/b/acme/known-issues/{issue.id}").text
    assert _post(member, f"/known-issues/{issue.id}/follow").status_code == 409


# --- the agents' pages -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_agent_pages_by_role(
    as_role: RoleClient, db: Session, issue: KnownIssue, role: Role | None
) -> None:
    client, _user = as_role(role)
    assert client.get(AGENT_LIST, follow_redirects=False).status_code == _code_for(role, 200)
    view = f"/agent/known-issues/{issue.id}"
    assert client.get(view, follow_redirects=False).status_code == _code_for(role, 200)
    published = _post(client, AGENT_LIST, {"title": "Payments are slow", "status": "identified"})
    assert published.status_code == _code_for(role, 303)
    updated = _post(client, f"{view}/update", {"status": "identified", "body": "Found it."})
    assert updated.status_code == _code_for(role, 303)
    edited = _post(client, f"{view}/edit", {"title": "Sign-in fails (502)"})
    assert edited.status_code == _code_for(role, 303)
    closed = _post(client, f"{view}/close")
    assert closed.status_code == _code_for(role, 303)
    made = _post(client, f"{view}/article")
    assert made.status_code == _code_for(role, 303)
    fresh(db)
    titles = set(db.scalars(select(KnownIssue.title)))
    found = _reload(db, issue)
    if role in AGENTS:
        assert titles == {"Sign-in fails (502)", "Payments are slow"}
        assert found.status == KnownIssueStatus.IDENTIFIED and found.closed_at is not None
        assert made.headers["location"] == f"/kb/articles/{found.article_id}/edit"
    else:
        assert titles == {"Sign-in fails with error 502"}
        assert found.status == KnownIssueStatus.INVESTIGATING and found.closed_at is None
        assert db.scalars(select(Article)).all() == []


def test_agent_forms_need_the_csrf_token(
    as_role: RoleClient, db: Session, issue: KnownIssue
) -> None:
    agent, _ = as_role(Role.AGENT)
    for path in [AGENT_LIST, f"/agent/known-issues/{issue.id}/close"]:
        response = agent.post(path, data={"title": "Payments are slow"}, follow_redirects=False)
        assert response.status_code == 403
    assert _reload(db, issue).closed_at is None
    assert len(db.scalars(select(KnownIssue)).all()) == 1


def test_the_agent_list_counts_links_and_followers_and_publishes(
    as_role: RoleClient,
    db: Session,
    issue: KnownIssue,
    qa: QA,
    make_user: UserFactory,
    forum: Forum,
) -> None:
    member = make_user("mia")
    db.add(KnownIssueThread(known_issue_id=issue.id, thread_id=qa.ask(member).id))
    service.follow(db, member, issue)
    db.commit()
    agent, _ = as_role(Role.AGENT)
    page = agent.get(AGENT_LIST)
    row = re.search(r"Sign-in fails with error 502</a></td>(.*?)</tr>", page.text, re.S)
    assert row is not None
    assert re.findall(r"<td>(\d+)</td>", row.group(1)) == ["1", "1"]
    assert "Publish a known issue" in page.text and ">Mobile</option>" in page.text
    response = _post(
        agent, AGENT_LIST,
        {"title": "eSIM activation stuck", "summary": "Wait **an hour**.", "status": "identified",
         "match_terms": "esim, activation\nstuck", "forum_ids": [str(forum.id)], "tags": "esim"},
    )  # fmt: skip
    assert response.status_code == 303
    fresh(db)
    made = db.scalars(select(KnownIssue).where(KnownIssue.title == "eSIM activation stuck")).one()
    assert response.headers["location"] == f"/agent/known-issues/{made.id}"
    assert (made.status, made.match_terms) == (
        KnownIssueStatus.IDENTIFIED, ["esim", "activation", "stuck"],
    )  # fmt: skip
    assert (made.forum_ids, made.tags) == ([forum.id], ["esim"])
    assert "Known issues" in agent.get("/b/acme/agent").text  # linked from the queue


def test_bad_publish_input_is_shown_on_the_form_with_422(
    as_role: RoleClient, db: Session, brand: Brand
) -> None:
    agent, _ = as_role(Role.AGENT)
    response = _post(
        agent, AGENT_LIST,
        {"title": "ab", "status": "weird", "tags": "nosuch", "forum_ids": ["x"],
         "match_terms": "q" * 61},
    )  # fmt: skip
    assert response.status_code == 422
    for field in ("title", "status", "tags", "forum_ids", "match_terms"):
        assert f'id="error-{field}"' in response.text, field
    assert 'value="ab"' in response.text  # what was typed stays
    assert db.scalars(select(KnownIssue)).all() == []


def test_bad_update_and_edit_input_and_conflicts(
    as_role: RoleClient, db: Session, issue: KnownIssue
) -> None:
    agent, _ = as_role(Role.AGENT)
    view = f"/agent/known-issues/{issue.id}"
    response = _post(agent, f"{view}/update", {"status": "investigating", "body": ""})
    assert response.status_code == 422 and 'id="error-body"' in response.text
    response = _post(agent, f"{view}/edit", {"title": "x"})
    assert response.status_code == 422 and 'id="error-title"' in response.text
    assert _post(agent, f"{view}/reopen").status_code == 303  # flashed: it is open
    assert _post(agent, f"{view}/explode").status_code == 422
    assert _reload(db, issue).title == "Sign-in fails with error 502"
    assert len(_reload(db, issue).updates) == 1


def test_the_article_button_makes_one_draft_and_goes_to_the_editor(
    as_role: RoleClient, db: Session, issue: KnownIssue
) -> None:
    agent, _ = as_role(Role.AGENT)
    view = f"/agent/known-issues/{issue.id}"
    early = _post(agent, f"{view}/article")
    assert early.status_code == 303 and early.headers["location"] == view
    assert db.scalars(select(Article)).all() == []
    _post(agent, f"{view}/close")
    first = _post(agent, f"{view}/article")
    second = _post(agent, f"{view}/article")
    assert first.headers["location"] == second.headers["location"]
    fresh(db)
    (article,) = db.scalars(select(Article))
    assert article.status == ArticleStatus.DRAFT and "Use *the app*." in article.body_source
    assert agent.get(first.headers["location"]).status_code == 200
    assert "Open its KB article" in agent.get(view).text


# --- JSON API --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_api_reading_is_public_and_writing_is_for_agents(
    as_role: RoleClient, db: Session, issue: KnownIssue, role: Role | None
) -> None:
    client, _ = as_role(role)
    listed = client.get("/api/v1/brands/acme/known-issues")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()] == [issue.id]
    one = client.get(f"/api/v1/known-issues/{issue.id}").json()
    assert one["status"] == "investigating" and one["updates"][0]["status"] == "investigating"
    assert ("match_terms" in one) == (role in AGENTS)
    token = csrf_token(client, "/login")
    headers = {"x-csrf-token": token}
    expected = 401 if role is None else 403
    created = client.post(
        "/api/v1/brands/acme/known-issues", json={"title": "Payments slow"}, headers=headers
    )
    updated = client.post(
        f"/api/v1/known-issues/{issue.id}/updates",
        json={"status": "fixed", "body": "Done"},
        headers=headers,
    )
    closed = client.post(f"/api/v1/known-issues/{issue.id}/close", headers=headers)
    if role in AGENTS:
        assert created.status_code == 201 and created.json()["match_terms"] == []
        assert updated.status_code == 200 and updated.json()["status"] == "fixed"
        assert closed.status_code == 200 and closed.json()["closed_at"] is not None
        listed = client.get("/api/v1/brands/acme/known-issues?state=all").json()
        assert {item["title"] for item in listed} == {
            "Sign-in fails with error 502",
            "Payments slow",
        }
    else:
        assert (created.status_code, updated.status_code, closed.status_code) == (expected,) * 3
        assert _reload(db, issue).status == KnownIssueStatus.INVESTIGATING


def test_api_lists_open_issues_only_unless_an_agent_asks_for_all(
    as_role: RoleClient, db: Session, issue: KnownIssue, make_user: UserFactory
) -> None:
    service.close(db, make_user("cai", role=Role.AGENT), issue)
    db.commit()
    member, _ = as_role(Role.MEMBER)
    agent, _ = as_role(Role.AGENT)
    assert member.get("/api/v1/brands/acme/known-issues?state=all").json() == []
    assert len(agent.get("/api/v1/brands/acme/known-issues?state=all").json()) == 1
    assert agent.get("/api/v1/brands/acme/known-issues").json() == []
    # Closed issues are public history at their own address.
    assert member.get(f"/api/v1/known-issues/{issue.id}").status_code == 200
    assert member.get("/api/v1/known-issues/99999").status_code == 404


def test_api_bad_input_is_422_naming_the_field(as_role: RoleClient, brand: Brand) -> None:
    agent, _ = as_role(Role.AGENT)
    headers = {"x-csrf-token": csrf_token(agent, "/login")}
    response = agent.post(
        "/api/v1/brands/acme/known-issues",
        json={"title": "ok title", "tags": ["nosuch"], "forum_ids": [999]},
        headers=headers,
    )
    assert response.status_code == 422
    assert {"tags", "forum_ids"} <= set(response.json()["error"]["details"])
    assert (
        agent.post(
            "/api/v1/brands/acme/known-issues", json={"title": 5}, headers=headers
        ).status_code
        == 422
    )


def test_the_app_registers_the_banner_provider(app: FastAPI) -> None:
    from crowdservice.routes_known_issues import known_issue_banners

    assert known_issue_banners in app.state.page_context


@pytest.mark.parametrize("role", ROLES)
def test_every_signed_in_role_may_follow(
    as_role: RoleClient, db: Session, issue: KnownIssue, role: Role | None
) -> None:
    client, user = as_role(role)
    response = _post(client, f"/known-issues/{issue.id}/follow")
    assert response.status_code == 303
    fresh(db)
    followers = db.scalars(select(KnownIssueFollower.user_id)).all()
    assert followers == ([] if user is None else [user.id])
