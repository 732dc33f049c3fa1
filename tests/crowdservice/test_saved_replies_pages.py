"""Saved replies over HTTP: who may open every page, fragment and API route (anonymous,
member, moderator, agent, admin), CSRF, the admin pages (add, fix a mistake, edit, archive and
restore), the answer box (search with and without htmx, insert filling the reply and making its
suggested action the default button, archived replies not offered) and a use counted only when
the answer is sent."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community.core import indexing
from community.core.db import make_session_factory
from community.core.models import Brand, Forum, Role, User
from community.core.settings import Settings
from community.worker import Worker
from crowdservice.models import EscalationStatus
from crowdservice.saved_replies import service
from crowdservice.saved_replies.models import SavedReply, SuggestedAction
from kb.models import Article, ArticleStatus
from tests.conftest import QA, csrf_token, drain, fresh
from tests.crowdservice.helpers import escalated, reloaded

AsRole = Callable[[Role | None], tuple[TestClient, User | None]]
UserFactory = Callable[..., User]
HTMX = {"HX-Request": "true"}
ADMIN_PAGE = "/admin/brands/acme/saved-replies"
API_LIST = "/api/v1/brands/acme/saved-replies"
ROLES: list[Role | None] = [None, Role.MEMBER, Role.MODERATOR, Role.AGENT, Role.ADMIN]


def _reply(
    db: Session,
    forum: Forum,
    make_user: UserFactory,
    title: str = "Ask for the order number",
    *,
    action: str = "ask_details",
    locale: str = "en",
    body: str = "Hi {author_name}, what is your order number for {thread_title}?",
    uses: int = 0,
) -> SavedReply:
    admin = db.scalar(select(User).where(User.username == "owner")) or make_user(
        "owner", role=Role.ADMIN
    )
    reply = service.create_reply(
        db, admin, forum.brand,
        service.ReplyFields(title=title, locale=locale, body=body, action=action),
    )  # fmt: skip
    reply.usage_count = uses
    db.commit()
    return reply


def _form(token: str, **changes: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "title": "Known fix",
        "locale": "en",
        "body": "Hi {author_name}, see {kb_link}.",
        "action": "resolve",
        "kb_article": "",
    } | changes


def _refused(status: int, role: Role | None) -> bool:
    """Anonymous visitors are sent to sign in (or told 401); others are forbidden."""
    return status in (303, 401) if role is None else status == 403


# --- who may do what -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.value if role else "anonymous")
def test_every_admin_route_is_for_admins_only(
    db: Session, forum: Forum, qa: QA, make_user: UserFactory, as_role: AsRole, role: Role | None
) -> None:
    reply = _reply(db, forum, make_user)
    browser, _user = as_role(role)
    token = csrf_token(browser, "/")
    one = f"{ADMIN_PAGE}/{reply.id}"
    answers = {
        "list": browser.get(ADMIN_PAGE, follow_redirects=False),
        "edit": browser.get(one, follow_redirects=False),
        "create": browser.post(ADMIN_PAGE, data=_form(token), follow_redirects=False),
        "update": browser.post(one, data=_form(token, title="Changed"), follow_redirects=False),
        "archive": browser.post(
            f"{one}/archive", data={"csrf_token": token}, follow_redirects=False
        ),
        "api create": browser.post(
            API_LIST,
            json={"title": "API", "locale": "en", "body": "Hello"},
            headers={"X-CSRF-Token": token},
        ),
        "api patch": browser.patch(
            f"/api/v1/saved-replies/{reply.id}",
            json={"title": "Patched"},
            headers={"X-CSRF-Token": token},
        ),
    }
    codes = {name: response.status_code for name, response in answers.items()}
    if role == Role.ADMIN:
        assert codes == {
            "list": 200, "edit": 200, "create": 303, "update": 303, "archive": 303,
            "api create": 201, "api patch": 200,
        }  # fmt: skip
        return
    for name, response in answers.items():
        if name.startswith("api"):
            assert response.status_code == (401 if role is None else 403), name
        else:
            assert _refused(response.status_code, role), (name, response.status_code)
    stored = reloaded(db, reply)
    assert stored.title == "Ask for the order number" and stored.archived_at is None
    assert (
        db.scalar(select(SavedReply.id).where(SavedReply.title.in_(["Known fix", "API"]))) is None
    )


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.value if role else "anonymous")
def test_the_answer_box_and_the_search_api_are_for_the_support_team(
    db: Session, forum: Forum, qa: QA, make_user: UserFactory, as_role: AsRole, role: Role | None
) -> None:
    reply = _reply(db, forum, make_user)
    item = escalated(db, qa, make_user("asker"))
    browser, _user = as_role(role)
    base = f"/agent/escalations/{item.id}/saved-replies"
    answers = {
        "search": browser.get(f"{base}?q=order", headers=HTMX, follow_redirects=False),
        "insert": browser.get(f"{base}/{reply.id}", headers=HTMX, follow_redirects=False),
    }
    api = browser.get(API_LIST)
    if role in (Role.AGENT, Role.ADMIN):
        assert all(response.status_code == 200 for response in answers.values())
        assert "Ask for the order number" in answers["search"].text
        assert [found["id"] for found in api.json()] == [reply.id]
        return
    for name, response in answers.items():
        assert _refused(response.status_code, role), (name, response.status_code)
        assert "order number" not in response.text
    assert api.status_code == (401 if role is None else 403)


def test_posts_without_the_csrf_token_are_refused(
    db: Session, forum: Forum, make_user: UserFactory, as_role: AsRole
) -> None:
    reply = _reply(db, forum, make_user)
    browser, _admin = as_role(Role.ADMIN)
    no_token = _form("")
    assert browser.post(ADMIN_PAGE, data=no_token).status_code == 403
    assert browser.post(f"{ADMIN_PAGE}/{reply.id}", data=no_token).status_code == 403
    assert browser.post(f"{ADMIN_PAGE}/{reply.id}/archive", data={}).status_code == 403
    api_answer = browser.patch(f"/api/v1/saved-replies/{reply.id}", json={"archived": True})
    assert api_answer.status_code == 403
    assert reloaded(db, reply).archived_at is None
    assert db.scalar(select(SavedReply.id).where(SavedReply.title == "Known fix")) is None


# --- admin pages -----------------------------------------------------------------------------


def test_an_admin_adds_fixes_edits_archives_and_restores_a_reply(
    db: Session, forum: Forum, as_role: AsRole
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    token = csrf_token(browser, ADMIN_PAGE)
    page = browser.get("/admin/brands/acme/service").text
    assert f'href="{ADMIN_PAGE}"' in page

    wrong = browser.post(ADMIN_PAGE, data=_form(token, title="", body="Hi {nme}", locale="fr"))
    assert wrong.status_code == 422
    assert 'id="error-title"' in wrong.text and 'id="error-locale"' in wrong.text
    assert "{nme}" in html.unescape(wrong.text) and "Hi {nme}" in html.unescape(wrong.text)
    fresh(db)
    assert db.scalar(select(SavedReply.id)) is None

    added = browser.post(ADMIN_PAGE, data=_form(token), follow_redirects=False)
    assert added.status_code == 303
    fresh(db)
    reply = db.scalars(select(SavedReply)).one()
    assert (reply.title, reply.action) == ("Known fix", SuggestedAction.RESOLVE)
    listing = browser.get(ADMIN_PAGE).text
    assert "Saved reply added." in listing and f'id="saved-reply-{reply.id}"' in listing

    again = browser.post(ADMIN_PAGE, data=_form(token))
    assert again.status_code == 422 and 'id="error-title"' in again.text

    edit = f"{ADMIN_PAGE}/{reply.id}"
    assert "Known fix" in browser.get(edit).text
    bad_article = browser.post(edit, data=_form(token, kb_article="/t/3"))
    assert bad_article.status_code == 422 and 'id="error-kb_article_id"' in bad_article.text
    changed = browser.post(
        edit, data=_form(token, title="Known fix (router)"), follow_redirects=False
    )
    assert changed.status_code == 303
    assert reloaded(db, reply).title == "Known fix (router)"

    browser.post(f"{edit}/archive", data={"csrf_token": token})
    assert f'id="saved-reply-{reply.id}"' not in browser.get(ADMIN_PAGE).text
    assert f'id="saved-reply-{reply.id}"' in browser.get(f"{ADMIN_PAGE}?archived=1").text
    browser.post(f"{edit}/unarchive", data={"csrf_token": token})
    assert reloaded(db, reply).archived_at is None
    assert browser.post(f"{edit}/explode", data={"csrf_token": token}).status_code == 404


def test_another_brands_reply_is_not_found_under_this_brand(
    db: Session, forum: Forum, make_user: UserFactory, as_role: AsRole
) -> None:
    reply = _reply(db, forum, make_user)
    db.add(Brand(slug="other", name="Other", description="", theme={}, default_locale="en"))
    db.commit()
    browser, _admin = as_role(Role.ADMIN)
    token = csrf_token(browser, ADMIN_PAGE)
    path = f"/admin/brands/other/saved-replies/{reply.id}"
    assert browser.get(path).status_code == 404
    assert browser.post(f"{path}/archive", data={"csrf_token": token}).status_code == 404
    assert browser.get(f"{ADMIN_PAGE}/{2**70}").status_code in (404, 422)
    assert reloaded(db, reply).archived_at is None


def test_the_api_creates_validates_and_patches(db: Session, forum: Forum, as_role: AsRole) -> None:
    browser, _admin = as_role(Role.ADMIN)
    headers = {"X-CSRF-Token": csrf_token(browser, "/")}
    created = browser.post(
        API_LIST,
        json={"title": "Hola", "locale": "es", "body": "Hola {author_name}", "action": "answer"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    reply_id = created.json()["id"]
    for wrong in ({"locale": "xx"}, {"body": "{0.__class__}"}, {"title": ""}, {"action": "nope"}):
        answer = browser.post(
            API_LIST, json={"title": "T", "locale": "en", "body": "B"} | wrong, headers=headers
        )
        assert answer.status_code == 422, wrong
    duplicate = browser.post(
        API_LIST, json={"title": "Hola", "locale": "es", "body": "B"}, headers=headers
    )
    assert duplicate.status_code == 422 and "title" in duplicate.text
    patched = browser.patch(
        f"/api/v1/saved-replies/{reply_id}",
        json={"archived": True, "action": "resolve"},
        headers=headers,
    )
    assert patched.status_code == 200
    assert patched.json()["action"] == "resolve" and patched.json()["archived_at"] is not None
    assert browser.get(API_LIST).json() == []
    assert (
        browser.patch("/api/v1/saved-replies/999999", json={}, headers=headers).status_code == 404
    )


# --- the answer box --------------------------------------------------------------------------


def test_search_lists_the_threads_language_first_and_never_archived_ones(
    db: Session, forum: Forum, qa: QA, make_user: UserFactory, as_role: AsRole
) -> None:
    english = _reply(db, forum, make_user, "Order number", uses=2)
    spanish = _reply(db, forum, make_user, "Número de pedido", locale="es", body="Pedido", uses=40)
    old = _reply(db, forum, make_user, "Order number (old)", uses=90)
    browser, _agent = as_role(Role.AGENT)
    owner = db.scalar(select(User).where(User.username == "owner"))
    assert owner is not None
    service.set_archived(db, owner, old, True)
    db.commit()
    item = escalated(db, qa, make_user("asker"))
    path = f"/agent/escalations/{item.id}/saved-replies"

    fragment = browser.get(path, headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    found = [int(n) for n in re.findall(r'id="saved-match-(\d+)"', fragment.text)]
    assert found == [english.id, spanish.id]
    assert "español" in fragment.text and "English" in fragment.text
    assert [
        int(n)
        for n in re.findall(
            r'id="saved-match-(\d+)"', browser.get(f"{path}?q=PEDIDO", headers=HTMX).text
        )
    ] == [spanish.id]
    assert "No saved reply matches." in browser.get(f"{path}?q=zzz", headers=HTMX).text

    # Without htmx the whole item page comes back with the matches in the answer box area.
    whole = browser.get(f"{path}?q=order")
    assert "<html" in whole.text and f'id="saved-match-{english.id}"' in whole.text
    assert f'id="saved-match-{old.id}"' not in whole.text
    assert 'value="order"' in whole.text
    # The item page offers the search box wired for htmx.
    page = browser.get(f"/agent/escalations/{item.id}").text
    assert (
        f'hx-get="{path}"' in page and 'hx-trigger="input changed delay:250ms, focus once"' in page
    )
    assert '<label for="saved-reply-q">' in page
    # An archived reply cannot be inserted either.
    assert browser.get(f"{path}/{old.id}", headers=HTMX).status_code == 404


def _buttons(text: str) -> list[str]:
    box = text[text.index('id="answer-box"') :]
    box = box[: box.index("</form>")]
    return re.findall(r'<button type="submit" id="([^"]+)"', box)


def _form_action(text: str) -> str:
    found = re.search(r'<form id="answer-box" class="stack" method="post" action="([^"]+)"', text)
    assert found
    return found.group(1)


@pytest.mark.parametrize(
    ("action", "default"),
    [("answer", "respond"), ("ask_details", "ask-details"), ("resolve", "answer-resolve")],
)
def test_inserting_fills_the_box_and_makes_the_suggested_action_the_default(
    db: Session,
    forum: Forum,
    qa: QA,
    make_user: UserFactory,
    as_role: AsRole,
    action: str,
    default: str,
) -> None:
    reply = _reply(db, forum, make_user, action=action)
    item = escalated(db, qa, make_user("maria"), "Where is my parcel")
    browser, _agent = as_role(Role.AGENT)
    assert _buttons(browser.get(f"/agent/escalations/{item.id}").text)[0] == "respond"

    fragment = browser.get(f"/agent/escalations/{item.id}/saved-replies/{reply.id}", headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "Hi maria, what is your order number for Where is my parcel?" in fragment.text
    assert f'name="saved_reply" value="{reply.id}"' in fragment.text
    assert _buttons(fragment.text)[0] == default
    url_action = {"answer": "respond", "ask_details": "ask", "resolve": "resolve"}[action]
    assert _form_action(fragment.text) == f"/agent/escalations/{item.id}/{url_action}"
    # Without htmx: the whole page, the same filled box.
    whole = browser.get(f"/agent/escalations/{item.id}/saved-replies/{reply.id}")
    assert "<html" in whole.text and _buttons(whole.text)[0] == default
    assert reloaded(db, reply).usage_count == 0  # inserting is not using


def test_sending_an_inserted_reply_counts_one_use_and_does_what_it_suggests(
    db: Session, forum: Forum, qa: QA, make_user: UserFactory, as_role: AsRole
) -> None:
    asking = _reply(db, forum, make_user, "Ask", action="ask_details")
    resolving = _reply(
        db, forum, make_user, "Resolve", action="resolve", body="Fixed, {author_name}."
    )
    browser, _agent = as_role(Role.AGENT)
    first = escalated(db, qa, make_user("asker"), "My router keeps rebooting")
    token = csrf_token(browser, f"/agent/escalations/{first.id}")
    box = browser.get(f"/agent/escalations/{first.id}/saved-replies/{asking.id}", headers=HTMX).text
    sent = browser.post(
        _form_action(box),
        data={"csrf_token": token, "body": "Which model is it?", "saved_reply": str(asking.id)},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert reloaded(db, first).status == EscalationStatus.WAITING
    assert reloaded(db, asking).usage_count == 1

    second = escalated(db, qa, make_user("other"), "Router lights blink red")
    box = browser.get(
        f"/agent/escalations/{second.id}/saved-replies/{resolving.id}", headers=HTMX
    ).text
    browser.post(
        _form_action(box),
        data={"csrf_token": token, "body": "Fixed, other.", "saved_reply": str(resolving.id)},
    )
    assert reloaded(db, second).status == EscalationStatus.RESOLVED
    assert "Fixed, other." in browser.get(f"/t/{second.thread_id}").text
    assert reloaded(db, resolving).usage_count == 1

    # Another brand's reply id, smuggled into the form, is not counted; the answer still goes.
    db.add(Brand(slug="other", name="Other", description="", theme={}, default_locale="en"))
    db.commit()
    other_brand = db.scalars(select(Brand).where(Brand.slug == "other")).one()
    owner = db.scalars(select(User).where(User.username == "owner")).one()
    foreign = service.create_reply(
        db, owner, other_brand, service.ReplyFields(title="Foreign", locale="en", body="x")
    )
    db.commit()
    third = escalated(db, qa, make_user("third"), "Voicemail does not work")
    browser.post(
        f"/agent/escalations/{third.id}/respond",
        data={"csrf_token": token, "body": "Try this.", "saved_reply": str(foreign.id)},
    )
    assert reloaded(db, third).status != EscalationStatus.OPEN
    assert reloaded(db, foreign).usage_count == 0


def test_kb_link_points_at_the_most_similar_kb_entry(
    db: Session,
    forum: Forum,
    qa: QA,
    make_user: UserFactory,
    as_role: AsRole,
    settings: Settings,
    engine: Engine,
) -> None:
    article = Article(
        brand_id=forum.brand_id,
        title="Router reboots every night",
        body_source="Turn off the scheduled reboot.",
        body_html="<p>Turn off the scheduled reboot.</p>",
        status=ArticleStatus.PUBLISHED,
    )
    db.add(article)
    db.flush()
    indexing.article_changed(db, article.id)
    db.commit()
    drain(Worker(settings, make_session_factory(engine)))
    reply = _reply(db, forum, make_user, "Known fix", action="answer", body="See {kb_link}")
    item = escalated(db, qa, make_user("asker"), "My router reboots every night")
    browser, _agent = as_role(Role.AGENT)
    box = browser.get(f"/agent/escalations/{item.id}/saved-replies/{reply.id}", headers=HTMX).text
    assert f"See /kb/articles/{article.id}" in box
