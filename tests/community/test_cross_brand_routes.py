"""Across brands and into restricted forums, route by route: staff of brand A (moderator, agent,
brand admin, the moderator's API token), a verified customer and a plain member walk every
route that takes an id or a brand slug, with the ids of brand B's staff-only, held, hidden and
private things; none shows or changes them (404/403, nothing written), while A's staff still
work on A."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from community.all_models import Base
from community.core import api_tokens
from community.core.account_models import UserSession
from community.core.auth import start_session
from community.core.models import Brand, Forum, ForumAccess, Post, User, Visibility
from community.core.staff import load_brand_roles
from community.core.workspace_models import BrandRole, StaffGrant
from crowdservice import escalation
from crowdservice.followup import service as followup
from crowdservice.known_issues import service as known_issues
from crowdservice.known_issues.forms import IssueForm
from crowdservice.known_issues.models import KnownIssueThread
from crowdservice.models import EscalationReason
from crowdservice.saved_replies import service as saved_replies
from kb import service as kb_service
from kb.schemas import ArticleCreateIn
from moderation import actions
from moderation.models import QueueItem
from tests.conftest import QA, api_routes, csrf_token, fresh, log_in

UserFactory = Callable[..., User]
PARAM = re.compile(r"\{([a-z_]+)(?::[a-z]+)?\}")
SECRETS = (
    "Backoffice secret",
    "Held first post",
    "Hidden answer text",
    "Private words",
    "Back office",
)


@dataclass
class World:
    a: Brand
    b: Brand
    ids: dict[str, list[str]] = field(default_factory=dict)
    people: dict[str, User] = field(default_factory=dict)
    token: str = ""


def _grant(db: Session, user: User, brand: Brand, role: BrandRole) -> User:
    db.add(StaffGrant(user_id=user.id, brand_id=brand.id, role=role))
    db.commit()
    return load_brand_roles(db, user)


@pytest.fixture
def world(db: Session, qa: QA, make_user: UserFactory) -> World:
    acme = qa.forum.brand
    globex = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(globex)
    db.flush()
    routers = Forum(brand_id=globex.id, slug="routers", name="Routers", description="")
    backoffice = Forum(brand_id=globex.id, slug="backoffice", name="Back office", position=1)
    db.add_all([routers, backoffice])
    db.commit()
    qa_b, staff_b = QA(db, routers), QA(db, backoffice)
    asker, helper = make_user("asker"), make_user("helper")
    b_mod = _grant(db, make_user("gil"), globex, BrandRole.MODERATOR)
    b_agent = _grant(db, make_user("gus"), globex, BrandRole.AGENT)
    b_admin = _grant(db, make_user("gwen"), globex, BrandRole.BRAND_ADMIN)
    secret = staff_b.ask(asker, title="Backoffice secret about the routers")
    secret_answer = staff_b.answer(helper, secret, "Backoffice secret answer, staff only.")
    backoffice.access = ForumAccess.STAFF
    db.commit()
    held = qa_b.ask(make_user("newbie", trust_level=0), title="Held first post: router reset?")
    public = qa_b.ask(asker, title="Public router question tonight")
    hidden = qa_b.answer(helper, public, "Hidden answer text about the router.")
    fresh(db)
    b_mod = load_brand_roles(db, db.get(User, b_mod.id))  # type: ignore[arg-type]
    to_hide = db.get(Post, hidden.id)
    assert to_hide is not None
    actions.set_post_visibility(db, b_mod, to_hide, Visibility.HIDDEN, reason="spam")
    db.commit()
    item = escalation.escalate(db, public, EscalationReason.AUTHOR_REQUEST, actor=asker)
    db.commit()
    b_agent = load_brand_roles(db, db.get(User, b_agent.id))  # type: ignore[arg-type]
    issue = known_issues.publish(
        db, b_agent, globex, IssueForm(title="Routers reboot at night", summary="Looking at it.")
    )
    db.add_all(
        [
            KnownIssueThread(known_issue_id=issue.id, thread_id=secret.id),
            KnownIssueThread(known_issue_id=issue.id, thread_id=held.id),
        ]
    )
    conversation = followup.open_followup(db, b_agent, public, "Private words: your serial?")
    article = kb_service.create_article(
        db, b_agent, globex, ArticleCreateIn(title="Draft router guide", summary="s", body="b")
    )
    db.commit()
    b_admin = load_brand_roles(db, db.get(User, b_admin.id))  # type: ignore[arg-type]
    reply = saved_replies.create_reply(
        db,
        b_admin,
        globex,
        saved_replies.ReplyFields(title="Router reset", locale="en", body="Hold the button."),
    )
    db.commit()
    queue = db.scalars(select(QueueItem.id).where(QueueItem.brand_id == globex.id)).all()
    held_post = db.scalar(select(Post.id).where(Post.thread_id == held.id))
    made = World(acme, globex)
    made.ids = {
        "thread_id": [str(secret.id), str(held.id)],
        "post_id": [str(secret_answer.id), str(held_post), str(hidden.id)],
        "escalation_id": [str(item.id)],
        "issue_id": [str(issue.id)],
        "conversation_id": [str(conversation.id)],
        "article_id": [str(article.id)],
        "reply_id": [str(reply.id)],
        "item_id": [str(queue_id) for queue_id in queue],
        "forum_id": [str(backoffice.id)],
    }
    # Brand B's moderator's own session and API token: nobody else signs them out.
    start_session(db, b_mod, max_age=timedelta(days=1), ip=None, user_agent="Firefox")
    b_token, _raw = api_tokens.create_token(db, b_mod, "gil's")
    db.commit()
    made.ids["session_id"] = [
        str(db.scalar(select(UserSession.id).where(UserSession.user_id == b_mod.id)))
    ]
    made.ids["token_id"] = [str(b_token.id)]
    people = made.people
    people["moderator"] = _grant(db, make_user("mona"), acme, BrandRole.MODERATOR)
    people["agent"] = _grant(db, make_user("abe"), acme, BrandRole.AGENT)
    people["brand_admin"] = _grant(db, make_user("bea"), acme, BrandRole.BRAND_ADMIN)
    verified = make_user("vera")
    verified.verified_customer = True
    people["verified"] = verified
    people["member"] = make_user("plainmember")
    db.commit()
    _token, made.token = api_tokens.create_token(db, people["moderator"], "walk")
    db.commit()
    return made


# Tables a request may write whatever it asks (sessions, limits, logs of requests and views).
_NOISE = {
    "user_sessions",
    "api_tokens",
    "thread_views",
}


def _snapshot(db: Session) -> dict[str, list[tuple[object, ...]]]:
    fresh(db)
    shot = {}
    for table in Base.metadata.sorted_tables:
        if table.name in _NOISE:
            continue
        rows = db.execute(text(f'SELECT * FROM "{table.name}"')).all()
        shot[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return shot


def _fill(template: str, ids: dict[str, list[str]]) -> list[str]:
    names = PARAM.findall(template)
    paths = [template]
    for name in names:
        if name == "brand_slug":
            values = ["globex"]
        elif name in ids:
            values = ids[name]
        else:
            values = {
                "forum_slug": ["backoffice"],
                "queue_name": ["held"],
                "action": ["approve", "hide", "lock", "claim", "close", "resolve", "reopen"],
                "decision": ["approve", "reject"],
                "panel": ["volume"],
                "number": ["1"],
                "username": ["asker"],
                "role": ["moderator"],
                "tag": ["x"],
            }.get(name, ["1"])
        paths = [PARAM.sub(value, path, count=1) for path in paths for value in values]
    return paths


BODY = {
    "body": "Some words and more words, to take a turn here.",
    "title": "A title long enough to pass",
    "summary": "A summary",
    "value": "1",
    "reason": "spam",
    "status": "published",
    "note": "A note",
    "message": "A reply of some length",
    "text": "A reply of some length",
    "locale": "en",
    "interaction_type": "praise",
    "forum": "backoffice",
}


JSON = {
    **BODY,
    "value": 1,
    "tags": ["router"],
    "decision": "approve",
    "status": "investigating",
    "role": "moderator",
    "username": "mona",
    "slug": "newforum",
    "name": "New forum",
    "forum": "routers",
    "thread_ids": [1, 2],
    "model": "none",
}


def _json(route: APIRoute) -> dict[str, object]:
    if route.body_field is None:
        return {}
    model = route.body_field.field_info.annotation
    fields = getattr(model, "model_fields", {})
    body = {name: JSON[name] for name in fields if name in JSON}
    if "status" in body and "/kb/" in route.path:
        body["status"] = "published"
    return body


def walk(
    app: FastAPI, world: World, client: TestClient, bearer: bool, db: Session
) -> tuple[int, list[str]]:
    token = "" if bearer else csrf_token(client, "/")
    headers = (
        {"Authorization": f"Bearer {world.token}"}
        if bearer
        else {"X-CSRF-Token": token, "HX-Request": "true"}
    )
    found, checked = [], 0
    for route in api_routes(app):
        if "{" not in route.path or route.path.startswith("/uploads"):
            continue
        for method in sorted(route.methods or ()):
            public = f"{method} {route.path}" in PUBLIC
            for path in _fill(route.path, world.ids):
                checked += 1
                before = _snapshot(db) if method != "GET" else None
                if path.startswith("/api/"):
                    response = client.request(
                        method, path, json=_json(route), headers=headers, follow_redirects=False
                    )
                else:
                    response = client.request(
                        method,
                        path,
                        data={**BODY, "csrf_token": token},
                        headers=headers,
                        follow_redirects=False,
                    )
                shown = [word for word in SECRETS if word in response.text]
                changed = []
                if before is not None:
                    after = _snapshot(db)
                    changed = [name for name in after if after[name] != before[name]]
                refused = (
                    response.status_code in (401, 403, 404, 405)
                    # A token is no browser session: pages send it away.
                    or (response.status_code == 303 and bearer and not path.startswith("/api/"))
                    # Nothing written: a value the route does not know, or (asking in a forum
                    # one may not read) the form again without it.
                    or (response.status_code == 422 and route.path in _FORM_AGAIN)
                    # An e-mailed link named by a token nobody sent: gone, like a used one.
                    or (response.status_code == 410 and "{token}" in route.path)
                )
                if shown or (changed and not public) or not (refused or public):
                    found.append(f"{method} {path} {response.status_code} {shown} {changed}")
    return checked, found


# Routes about public things of brand B that anyone may open or do (the brand's pages, its public
# known issues, profiles and badges, reporting a person, following an issue, one's own token).
PUBLIC = {
    "GET /api/v1/users/{user_id}",
    "GET /api/v1/brands/{brand_slug}/forums",
    "GET /api/v1/brands/{brand_slug}/search",
    "GET /api/v1/brands/{brand_slug}/kb/articles",
    "GET /b/{brand_slug}/kb",
    "GET /b/{brand_slug}/search",
    "GET /b/{brand_slug}/kb/suggest",
    "GET /b/{brand_slug}/conduct",
    "GET /b/{brand_slug}/known-issues",
    "GET /b/{brand_slug}/known-issues/{issue_id}",
    "POST /known-issues/{issue_id}/follow",
    "POST /known-issues/{issue_id}/unfollow",
    "GET /api/v1/brands/{brand_slug}/known-issues",
    "GET /api/v1/known-issues/{issue_id}",
    "GET /b/{brand_slug}",
    "GET /u/{username}",
    "GET /u/{username}/avatar.svg",
    "GET /api/v1/users/{username}/badges",
    "GET /b/{brand_slug}/ask/new",
    "POST /u/{username}/report",
    "DELETE /api/v1/tokens/{token_id}",  # token 1 is the moderator's own
    # Accounts and their sanctions span the brands (community.core.policy.ensure_can_sanction).
    "GET /mod/users/{username}",
}
_FORM_AGAIN = {"/b/{brand_slug}/ask/new", "/agent/known-issues/{issue_id}/{action}"}
WHO = ["moderator", "agent", "brand_admin", "token", "verified", "member"]


@pytest.mark.parametrize("who", WHO)
def test_nobody_outside_brand_b_sees_or_changes_its_restricted_things(
    app: FastAPI, db: Session, world: World, make_client: Callable[[], TestClient], who: str
) -> None:
    client = make_client()
    if who != "token":
        log_in(client, world.people[who].username)
    checked, found = walk(app, world, client, who == "token", db)
    assert checked > 250, checked
    assert not found, "\n".join(found)


def test_the_known_issue_agent_page_is_for_the_issues_brand_agents(
    db: Session, world: World, make_client: Callable[[], TestClient], make_user: UserFactory
) -> None:
    """It lists every linked thread (held ones and those in staff-only forums too) and the
    brand's forums: an agent of another brand got it whole."""
    issue_id = world.ids["issue_id"][0]
    outsider = make_client()
    log_in(outsider, world.people["agent"].username)
    page = outsider.get(f"/agent/known-issues/{issue_id}")
    assert page.status_code == 403
    assert "Backoffice secret" not in page.text and "Held first post" not in page.text
    insider = make_client()
    log_in(insider, "gus")
    shown = insider.get(f"/agent/known-issues/{issue_id}")
    assert shown.status_code == 200 and "Backoffice secret" in shown.text
    # A's agents still work on A's issues.
    agent = world.people["agent"]
    own = known_issues.publish(
        db, agent, world.a, IssueForm(title="Billing page is slow", summary="Looking at it.")
    )
    db.commit()
    assert outsider.get(f"/agent/known-issues/{own.id}").status_code == 200


def test_a_known_issue_names_only_the_forums_its_reader_may_read(
    db: Session, world: World, make_client: Callable[[], TestClient]
) -> None:
    """An issue scoped to a staff-only forum: its public page names that forum to the brand's
    staff only (the name alone says what the brand keeps apart)."""
    forums = {
        forum.slug: forum for forum in db.scalars(select(Forum).where(Forum.brand_id == world.b.id))
    }
    agent = load_brand_roles(db, db.scalars(select(User).where(User.username == "gus")).one())
    scope = [str(forums["routers"].id), str(forums["backoffice"].id)]
    issue = known_issues.publish(
        db, agent, world.b, IssueForm(title="Fibre outage", summary="Fixing it.", forum_ids=scope)
    )
    db.commit()
    path = f"/b/globex/known-issues/{issue.id}"
    member = make_client()
    log_in(member, world.people["member"].username)
    shown = member.get(path)
    assert shown.status_code == 200 and "Routers" in shown.text and "Back office" not in shown.text
    staff = make_client()
    log_in(staff, "gus")
    assert "Back office" in staff.get(path).text
