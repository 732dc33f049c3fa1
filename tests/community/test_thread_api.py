"""The JSON API for threads, posts, votes, accepting, helpful marks, notifications and personal
API tokens: the same rules as the pages, JSON errors, no mass assignment."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from community.core.db import make_session_factory
from community.core.models import ApiToken, Post, Role, Thread, User
from community.core.settings import Settings
from community.worker import Worker
from tests.conftest import QA, csrf_token, drain, fresh, log_in

UserFactory = Callable[..., User]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token_for(make_client: Callable[[], TestClient], make_user: UserFactory) -> Callable[..., str]:
    """A personal API token for a new account, created the way a person would (signed in)."""

    def factory(username: str, role: Role = Role.MEMBER) -> str:
        make_user(username, role=role)
        browser = make_client()
        log_in(browser, username)
        response = browser.post(
            "/api/v1/tokens",
            json={"name": "integration"},
            headers={"X-CSRF-Token": csrf_token(browser, "/")},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    return factory


def test_tokens_are_shown_once_hashed_at_rest_and_revocable(
    client: TestClient,
    db: Session,
    token_for: Callable[..., str],
    make_client: Callable[[], TestClient],
) -> None:
    token = token_for("integrator")
    assert token.startswith("cmt_")
    stored = db.scalars(select(ApiToken)).one()
    assert stored.token_hash != token and token not in stored.token_hash
    me = client.get("/api/v1/me", headers=_bearer(token))
    assert me.json()["username"] == "integrator"
    listed = client.get("/api/v1/tokens", headers=_bearer(token)).json()
    assert [item["prefix"] for item in listed] == [token[:10]]
    assert "token" not in listed[0]
    # A token cannot mint more tokens (that needs a signed-in browser).
    assert (
        client.post("/api/v1/tokens", json={"name": "x"}, headers=_bearer(token)).status_code == 403
    )

    browser = make_client()
    log_in(browser, "integrator")
    revoked = browser.delete(
        f"/api/v1/tokens/{stored.id}", headers={"X-CSRF-Token": csrf_token(browser, "/")}
    )
    assert revoked.status_code == 204
    assert client.get("/api/v1/me", headers=_bearer(token)).status_code == 401
    assert client.get("/api/v1/me", headers=_bearer("cmt_not-a-real-token")).status_code == 401


def test_token_requests_skip_csrf_but_cookie_requests_do_not(
    client: TestClient,
    qa: QA,
    make_user: UserFactory,
    token_for: Callable[..., str],
    make_client: Callable[[], TestClient],
) -> None:
    thread = qa.ask(make_user("asker"))
    token = token_for("helper")
    posted = client.post(
        f"/api/v1/threads/{thread.id}/posts", json={"body": "Via the API"}, headers=_bearer(token)
    )
    assert posted.status_code == 201
    browser = make_client()
    log_in(browser, "helper")
    no_token = browser.post(f"/api/v1/threads/{thread.id}/posts", json={"body": "Cookie only"})
    assert no_token.status_code == 403


def test_create_list_and_read_threads(
    client: TestClient, qa: QA, token_for: Callable[..., str]
) -> None:
    token = token_for("asker")
    forum_id = qa.forum.id
    created = client.post(
        f"/api/v1/forums/{forum_id}/threads",
        json={
            "title": "Roaming in Morocco, what does it cost?",
            "body": "Going in May.",
            "tags": ["roaming"],
        },
        headers=_bearer(token),
    )
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "open" and [tag["name"] for tag in body["tags"]] == ["roaming"]
    assert body["author"]["username"] == "asker" and "email" not in body["author"]
    for index in range(4):
        client.post(
            f"/api/v1/forums/{forum_id}/threads",
            json={"title": f"Another question number {index}", "body": "Details"},
            headers=_bearer(token),
        )
    page = client.get(f"/api/v1/forums/{forum_id}/threads", params={"limit": 3, "sort": "newest"})
    assert page.status_code == 200
    first = page.json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = client.get(
        f"/api/v1/forums/{forum_id}/threads",
        params={"limit": 3, "sort": "newest", "cursor": first["next_cursor"]},
    ).json()
    titles = [item["title"] for item in first["items"] + rest["items"]]
    assert len(titles) == 5 and len(set(titles)) == 5 and rest["next_cursor"] is None
    detail = client.get(f"/api/v1/threads/{body['id']}").json()
    assert detail["question"]["body_html"] == "<p>Going in May.</p>\n"
    assert detail["answers"] == []


@pytest.mark.parametrize(
    "payload",
    [
        {"title": "short", "body": "x"},
        {"title": "A good enough title", "body": ""},
        {"title": "A good enough title", "body": "x", "tags": ["a b/c"]},
        {"title": "A good enough title", "body": "x", "author_id": 1},
        {"title": "A good enough title", "body": "x", "visibility": "hidden"},
        {"title": "A good enough title", "body": "x", "kind": "rant"},
        {"title": "x" * 10_000, "body": "x"},
        {"body": "no title"},
    ],
)
def test_bad_thread_input_is_422_and_creates_nothing(
    client: TestClient,
    db: Session,
    qa: QA,
    token_for: Callable[..., str],
    payload: dict[str, object],
) -> None:
    token = token_for("asker")
    response = client.post(
        f"/api/v1/forums/{qa.forum.id}/threads", json=payload, headers=_bearer(token)
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"
    fresh(db)
    assert db.scalar(select(func.count()).select_from(Thread)) == 0


def test_praise_is_an_askable_kind_and_triage_reads_it_as_praise(
    client: TestClient, db: Session, qa: QA, token_for: Callable[..., str]
) -> None:
    token = token_for("fan")
    created = client.post(
        f"/api/v1/forums/{qa.forum.id}/threads",
        json={
            "title": "Thank you to the shop team in Leeds",
            "body": "They set up my new phone in five minutes. Great service!",
            "kind": "praise",
        },
        headers=_bearer(token),
    )
    assert created.status_code == 201, created.text
    assert created.json()["kind"] == "praise"
    fresh(db)
    thread = db.get(Thread, created.json()["id"])
    assert thread is not None and thread.interaction_type == "praise"


def test_unknown_forum_and_bad_cursor(
    client: TestClient, qa: QA, token_for: Callable[..., str]
) -> None:
    token = token_for("asker")
    missing = client.post(
        "/api/v1/forums/999999/threads",
        json={"title": "A fine title here", "body": "x"},
        headers=_bearer(token),
    )
    assert missing.status_code == 404
    bad = client.get(f"/api/v1/forums/{qa.forum.id}/threads", params={"cursor": "!!"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_cursor"


def test_vote_accept_helpful_watch_through_the_api(
    client: TestClient,
    db: Session,
    qa: QA,
    make_user: UserFactory,
    token_for: Callable[..., str],
    settings: Settings,
    engine: Engine,
) -> None:
    asker_token, helper_token, reader_token = (
        token_for("asker"),
        token_for("helper"),
        token_for("reader"),
    )
    asker = db.scalars(select(User).where(User.username_key == "asker")).one()
    thread = qa.ask(asker)
    answer = client.post(
        f"/api/v1/threads/{thread.id}/posts",
        json={"body": "Restart it."},
        headers=_bearer(helper_token),
    ).json()

    vote = client.put(
        f"/api/v1/posts/{answer['id']}/vote", json={"value": 1}, headers=_bearer(reader_token)
    )
    assert vote.json() == {
        "post_id": answer["id"],
        "score": 1,
        "upvotes": 1,
        "downvotes": 0,
        "my_vote": 1,
    }
    own = client.put(
        f"/api/v1/posts/{answer['id']}/vote", json={"value": 1}, headers=_bearer(helper_token)
    )
    assert own.status_code == 403
    assert (
        client.put(
            f"/api/v1/posts/{answer['id']}/vote", json={"value": 2}, headers=_bearer(reader_token)
        ).status_code
        == 422
    )

    not_asker = client.put(f"/api/v1/posts/{answer['id']}/accept", headers=_bearer(reader_token))
    assert not_asker.status_code == 403
    accepted = client.put(f"/api/v1/posts/{answer['id']}/accept", headers=_bearer(asker_token))
    assert accepted.json()["status"] == "solved"
    assert accepted.json()["accepted_post_id"] == answer["id"]

    helpful = client.put(f"/api/v1/threads/{thread.id}/helpful", headers=_bearer(reader_token))
    assert helpful.json() == {"thread_id": thread.id, "helpful_count": 1, "helped": True}
    assert (
        client.put(f"/api/v1/threads/{thread.id}/watch", headers=_bearer(reader_token)).status_code
        == 204
    )
    detail = client.get(f"/api/v1/threads/{thread.id}", headers=_bearer(reader_token)).json()
    assert detail["my_votes"] == {str(answer["id"]): 1}
    assert (detail["helped"], detail["watching"]) == (True, True)
    assert detail["answers"][0]["accepted"] is True

    # The first upvote's milestone is told by the worker.
    drain(Worker(settings, make_session_factory(engine)))
    notes = client.get("/api/v1/notifications", headers=_bearer(helper_token)).json()
    assert [item["kind"] for item in notes["items"]] == ["vote_milestone", "accepted"]
    unread = client.get("/api/v1/notifications/unread-count", headers=_bearer(helper_token)).json()
    assert unread == {"unread": 2}
    client.post(
        f"/api/v1/notifications/{notes['items'][0]['id']}/read", headers=_bearer(helper_token)
    )
    assert client.get(
        "/api/v1/notifications/unread-count", headers=_bearer(helper_token)
    ).json() == {"unread": 1}
    other = client.post(
        f"/api/v1/notifications/{notes['items'][1]['id']}/read", headers=_bearer(reader_token)
    )
    assert other.status_code == 404


def test_edit_delete_and_revisions_follow_ownership(
    client: TestClient, db: Session, qa: QA, token_for: Callable[..., str]
) -> None:
    owner, stranger, moderator = (
        token_for("owner"),
        token_for("stranger"),
        token_for("moddy", Role.MODERATOR),
    )
    owner_user = db.scalars(select(User).where(User.username_key == "owner")).one()
    thread = qa.ask(owner_user)
    question = db.scalars(select(Post).where(Post.thread_id == thread.id)).one()
    url = f"/api/v1/posts/{question.id}"
    assert (
        client.patch(url, json={"body": "mine now"}, headers=_bearer(stranger)).status_code == 403
    )
    assert (
        client.patch(url, json={"body": "x", "score": 99}, headers=_bearer(owner)).status_code
        == 422
    )
    edited = client.patch(url, json={"body": "Updated **text**"}, headers=_bearer(owner))
    assert edited.json()["body_html"] == "<p>Updated <strong>text</strong></p>\n"
    history = client.get(f"{url}/revisions").json()
    assert [item["number"] for item in history] == [1, 2]
    assert client.patch(url, json={"body": "tidy"}, headers=_bearer(moderator)).status_code == 422
    assert (
        client.patch(
            url, json={"body": "tidy", "reason": "format"}, headers=_bearer(moderator)
        ).status_code
        == 200
    )
    assert client.delete(url, headers=_bearer(stranger)).status_code == 403
    assert client.delete(url, headers=_bearer(owner)).status_code == 204
    assert client.get(f"/api/v1/threads/{thread.id}").status_code == 404


def test_anonymous_api_writes_are_401(client: TestClient, qa: QA, make_user: UserFactory) -> None:
    thread = qa.ask(make_user("asker"))
    token = csrf_token(client, "/")
    for method, path, body in [
        ("post", f"/api/v1/threads/{thread.id}/posts", {"body": "hi"}),
        ("put", f"/api/v1/threads/{thread.id}/helpful", None),
        ("get", "/api/v1/notifications", None),
    ]:
        response = client.request(method, path, json=body, headers={"X-CSRF-Token": token})
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "login_required"


def test_locked_threads_refuse_members_but_not_staff_through_the_api(
    client: TestClient, db: Session, qa: QA, token_for: Callable[..., str]
) -> None:
    from community.core.clock import utcnow

    member, agent = token_for("member1"), token_for("lee", Role.AGENT)
    asker = db.scalars(select(User).where(User.username_key == "member1")).one()
    thread = qa.ask(asker)
    thread.locked_at = utcnow()
    db.commit()
    url = f"/api/v1/threads/{thread.id}/posts"
    assert client.post(url, json={"body": "late"}, headers=_bearer(member)).status_code == 403
    official = client.post(url, json={"body": "Closing note."}, headers=_bearer(agent))
    assert official.status_code == 201
    assert official.json()["is_official"] is True
    assert client.get(f"/api/v1/threads/{thread.id}").json()["locked"] is True


def test_huge_and_malformed_bodies_change_nothing(
    client: TestClient, db: Session, qa: QA, make_user: UserFactory, token_for: Callable[..., str]
) -> None:
    thread = qa.ask(make_user("asker"))
    token = token_for("helper")
    url = f"/api/v1/threads/{thread.id}/posts"
    huge = client.post(url, json={"body": "x" * (10 * 1024 * 1024)}, headers=_bearer(token))
    assert huge.status_code == 413
    broken = client.post(
        url,
        content=b'{"body": "unterminated',
        headers=_bearer(token) | {"content-type": "application/json"},
    )
    assert broken.status_code == 422
    too_long = client.post(url, json={"body": "x" * 30_001}, headers=_bearer(token))
    assert too_long.status_code == 422
    fresh(db)
    assert db.scalar(select(func.count()).select_from(Post)) == 1
