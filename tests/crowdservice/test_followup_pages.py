"""The private follow-up over HTTP: opening from the thread page and the agent workspace, the
conversation page, replying and closing through the forms with the CSRF token, the public
notice on the thread, every page and API path for every kind of viewer, a missing CSRF token,
bad input and odd ids (4xx, nothing changed, never a 500)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from community.core import api_tokens
from community.core.clock import utcnow
from community.core.models import Post, Role, Thread, User
from crowdservice.followup import service as followup
from crowdservice.followup.models import PrivateConversation, PrivateMessage
from tests.conftest import QA, csrf_token, fresh, log_in
from tests.crowdservice.helpers import escalated

UserFactory = Callable[..., User]
ClientFactory = Callable[[], TestClient]
NOTICE = "Continued in private with the support team."
LINK = "Open the private conversation"
START = "Continue in private"
SECRET = "IBAN-DE44-5001-0517-5407-3249-31"
ROLES = ("anonymous", "member", "customer", "moderator", "agent", "admin")
STAFF = ("moderator", "agent", "admin")


@dataclass
class World:
    db: Session
    thread: Thread
    users: dict[str, User]
    browsers: dict[str, TestClient]
    tokens: dict[str, str]

    def post(self, role: str, path: str, data: dict[str, str], *, token_from: str) -> object:
        browser = self.browsers[role]
        token = csrf_token(browser, token_from)
        return browser.post(path, data={**data, "csrf_token": token}, follow_redirects=False)

    def messages(self) -> int:
        fresh(self.db)
        return self.db.scalar(select(func.count()).select_from(PrivateMessage)) or 0

    def conversation(self) -> PrivateConversation | None:
        fresh(self.db)
        return self.db.scalar(select(PrivateConversation))


@pytest.fixture
def world(db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory) -> World:
    users = {
        "member": make_user("member1"),
        "customer": make_user("customer1"),
        "moderator": make_user("mod1", role=Role.MODERATOR),
        "agent": make_user("agent1", role=Role.AGENT),
        "admin": make_user("admin1", role=Role.ADMIN),
    }
    thread = qa.ask(users["customer"], title="Charged twice for the same month")
    browsers = {"anonymous": make_client()}
    tokens: dict[str, str] = {}
    for role, user in users.items():
        browsers[role] = make_client()
        log_in(browsers[role], user.username)
        tokens[role] = api_tokens.create_token(db, user, "tests")[1]
        db.commit()  # before the next sign-in writes (SQLite has one writer)
    return World(db=db, thread=thread, users=users, browsers=browsers, tokens=tokens)


def _open(world: World, role: str = "agent", body: str = f"Send me {SECRET} please") -> int:
    response = world.post(
        role, f"/t/{world.thread.id}/private", {"body": body}, token_from=f"/t/{world.thread.id}"
    )
    assert response.status_code == 303, response.text[:500]  # type: ignore[attr-defined]
    conversation = world.conversation()
    assert conversation is not None
    assert response.headers["location"] == f"/private/{conversation.id}"  # type: ignore[attr-defined]
    return conversation.id


def test_staff_open_from_the_thread_page_and_the_customer_answers(world: World) -> None:
    thread_path = f"/t/{world.thread.id}"
    agent, customer = world.browsers["agent"], world.browsers["customer"]
    page = agent.get(thread_path).text
    assert START in page and f'action="/t/{world.thread.id}/private"' in page
    assert START not in world.browsers["member"].get(thread_path).text
    assert START not in customer.get(thread_path).text
    assert NOTICE not in world.browsers["anonymous"].get(thread_path).text

    conversation_id = _open(world)
    shown = agent.get(f"/private/{conversation_id}")
    assert shown.status_code == 200 and SECRET in shown.text
    assert "Close the conversation" in shown.text

    # Every reader sees the notice; only the customer and staff get the link.
    for role in ROLES:
        text = world.browsers[role].get(thread_path).text
        assert NOTICE in text, role
        assert (LINK in text) == (role in ("customer", *STAFF)), role
        assert SECRET not in text, role
    going = customer.get(f"/t/{world.thread.id}/private", follow_redirects=False)
    assert going.status_code == 303 and going.headers["location"] == f"/private/{conversation_id}"

    page = customer.get(f"/private/{conversation_id}").text
    assert SECRET in page and "Write a message" in page and "Close the conversation" not in page
    replied = world.post(
        "customer", f"/private/{conversation_id}/messages", {"body": "My number is 0176 555 0199"},
        token_from=f"/private/{conversation_id}",
    )  # fmt: skip
    assert replied.status_code == 303  # type: ignore[attr-defined]
    assert "0176 555 0199" in agent.get(f"/private/{conversation_id}").text
    assert world.messages() == 2

    closed = world.post(
        "agent", f"/private/{conversation_id}/close",
        {"public_outcome": "Refunded: the second charge is reversed."},
        token_from=f"/private/{conversation_id}",
    )  # fmt: skip
    conversation = world.conversation()
    assert conversation is not None and conversation.closed_at is not None
    assert closed.headers["location"] == f"{thread_path}#post-{conversation.outcome_post_id}"  # type: ignore[attr-defined]
    public = world.browsers["anonymous"].get(thread_path).text
    assert "Refunded: the second charge is reversed." in public
    assert SECRET not in public and "0176 555 0199" not in public

    # Closed: the customer reads but has no form; staff may open it again.
    page = customer.get(f"/private/{conversation_id}").text
    assert "Write a message" not in page and "This conversation is closed" in page
    refused = world.post(
        "customer", f"/private/{conversation_id}/messages", {"body": "One more thing"},
        token_from=f"/private/{conversation_id}",
    )  # fmt: skip
    assert refused.status_code == 303 and world.messages() == 2  # type: ignore[attr-defined]
    assert "This conversation is closed." in customer.get(refused.headers["location"]).text  # type: ignore[attr-defined]
    assert "Reopen and send" in agent.get(f"/private/{conversation_id}").text
    assert _open(world, "moderator", "Reopening to check the refund arrived") == conversation_id
    assert world.conversation().closed_at is None  # type: ignore[union-attr]


def test_the_agent_workspace_offers_the_follow_up(world: World, db: Session, qa: QA) -> None:
    item = escalated(db, qa, world.users["customer"], "The router keeps dropping the line")
    item_path = f"/agent/escalations/{item.id}"
    agent = world.browsers["agent"]
    page = agent.get(item_path).text
    assert START in page and f'action="/t/{item.thread_id}/private"' in page
    token = csrf_token(agent, item_path)
    opened = agent.post(
        f"/t/{item.thread_id}/private",
        data={"body": "Which router model?", "csrf_token": token},
        follow_redirects=False,
    )
    assert opened.status_code == 303
    page = agent.get(item_path).text
    assert 'id="item-private"' in page and f'href="/t/{item.thread_id}/private"' in page
    assert 'id="followup-start"' not in page


def _page_statuses(world: World, conversation_id: int) -> dict[str, tuple[int, ...]]:
    found: dict[str, tuple[int, ...]] = {}
    for role in ROLES:
        browser = world.browsers[role]
        found[role] = (
            browser.get(f"/private/{conversation_id}", follow_redirects=False).status_code,
            browser.get(f"/t/{world.thread.id}/private", follow_redirects=False).status_code,
        )
    return found


def test_who_may_reach_each_page(world: World) -> None:
    thread_id = world.thread.id
    # Before there is a conversation: staff get the form that opens one, nobody else anything.
    for role in ROLES:
        response = world.browsers[role].get(f"/t/{thread_id}/private", follow_redirects=False)
        expected = {"anonymous": 303, "member": 404, "customer": 404}.get(role, 200)
        assert response.status_code == expected, role
        if role == "anonymous":
            assert response.headers["location"].startswith("/login?next=")
    conversation_id = _open(world)
    assert _page_statuses(world, conversation_id) == {
        "anonymous": (303, 303),
        "member": (404, 404),
        "customer": (200, 303),
        "moderator": (200, 303),
        "agent": (200, 303),
        "admin": (200, 303),
    }
    assert world.browsers["member"].get(f"/private/{conversation_id + 1}").status_code == 404


def test_who_may_act(world: World) -> None:
    conversation_id = _open(world)
    here = f"/private/{conversation_id}"
    token_page = f"/t/{world.thread.id}"
    for role in ("member", "customer"):
        refused = world.post(
            role, f"/t/{world.thread.id}/private", {"body": "Hi"}, token_from=token_page
        )
        assert refused.status_code == 403, role  # type: ignore[attr-defined]
    replied = world.post("member", f"{here}/messages", {"body": "Let me in"}, token_from=token_page)
    assert replied.status_code == 404  # type: ignore[attr-defined]
    for role in ("member", "customer"):
        closed = world.post(role, f"{here}/close", {"public_outcome": ""}, token_from=token_page)
        assert closed.status_code == (404 if role == "member" else 403), role  # type: ignore[attr-defined]
    assert world.messages() == 1 and world.conversation().closed_at is None  # type: ignore[union-attr]
    for role in STAFF:
        sent = world.post(role, f"{here}/messages", {"body": f"From {role}"}, token_from=here)
        assert sent.status_code == 303, role  # type: ignore[attr-defined]
    assert world.messages() == 4

    # A suspended customer's session stops working (community.core.auth.may_sign_in): the
    # reply goes to the sign-in page and writes nothing; the service refuses too
    # (tests/crowdservice/test_followup.py).
    fresh(world.db)
    customer = world.db.get(User, world.users["customer"].id)
    assert customer is not None
    token = csrf_token(world.browsers["customer"], here)
    customer.suspended_until = utcnow() + timedelta(days=2)
    world.db.commit()
    refused = world.browsers["customer"].post(
        f"{here}/messages", data={"body": "Hello?", "csrf_token": token}, follow_redirects=False
    )
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    assert world.messages() == 4
    api = world.browsers["anonymous"].post(
        f"/api/v1/private/{conversation_id}/messages",
        json={"body": "Hello?"},
        headers={"Authorization": f"Bearer {world.tokens['customer']}"},
    )
    assert api.status_code == 401 and world.messages() == 4


def test_api_paths_for_every_viewer(world: World) -> None:
    thread_id = world.thread.id

    def call(role: str, method: str, path: str, body: dict[str, str] | None = None) -> object:
        headers = {"Authorization": f"Bearer {world.tokens[role]}"} if role != "anonymous" else {}
        client = world.browsers["anonymous"]
        return client.request(method, f"/api/v1{path}", json=body, headers=headers)

    # Anonymous writes stop at the CSRF check (no session, no token): 403 like everywhere.
    for role in ("anonymous", "member", "customer"):
        refused = call(role, "POST", f"/threads/{thread_id}/private", {"body": "Hi"})
        assert refused.status_code == 403, role  # type: ignore[attr-defined]
    assert world.conversation() is None
    opened = call("agent", "POST", f"/threads/{thread_id}/private", {"body": f"Your {SECRET}?"})
    assert opened.status_code == 201, opened.text  # type: ignore[attr-defined]
    data = opened.json()  # type: ignore[attr-defined]
    assert data["thread_id"] == thread_id and data["customer"]["id"] == world.users["customer"].id
    assert [m["body"] for m in data["messages"]] == [f"Your {SECRET}?"]
    assert "email" not in repr(data)
    conversation_id = data["id"]

    for role in ROLES:
        response = call(role, "GET", f"/private/{conversation_id}")
        expected = {"anonymous": 401, "member": 404}.get(role, 200)
        assert response.status_code == expected, role  # type: ignore[attr-defined]
        if expected == 200:
            assert SECRET in response.text  # type: ignore[attr-defined]
        else:
            assert SECRET not in response.text  # type: ignore[attr-defined]
    for role, expected in (("anonymous", 403), ("member", 404), ("customer", 201), ("admin", 201)):
        response = call(role, "POST", f"/private/{conversation_id}/messages", {"body": "Noted"})
        assert response.status_code == expected, role  # type: ignore[attr-defined]
    assert world.messages() == 3
    for body in ({"body": ""}, {"body": "x" * 40_001}, {"text": "wrong field"}, {"body": "a\x00b"}):
        response = call("customer", "POST", f"/private/{conversation_id}/messages", body)
        assert response.status_code == 422, body  # type: ignore[attr-defined]
    assert world.messages() == 3
    # The thread's API shows nothing of it.
    thread_json = call("member", "GET", f"/threads/{thread_id}").text  # type: ignore[attr-defined]
    assert SECRET not in thread_json and "Noted" not in thread_json


def test_missing_csrf_changes_nothing(world: World) -> None:
    conversation_id = _open(world)
    agent = world.browsers["agent"]
    for path, data in (
        (f"/t/{world.thread.id}/private", {"body": "Again"}),
        (f"/private/{conversation_id}/messages", {"body": "Hello"}),
        (f"/private/{conversation_id}/close", {"public_outcome": "Done"}),
    ):
        assert agent.post(path, data=data, follow_redirects=False).status_code == 403, path
        wrong = data | {"csrf_token": "0" * 64}
        assert agent.post(path, data=wrong, follow_redirects=False).status_code == 403, path
    # A cookie session calling the API needs the header too.
    refused = agent.post(f"/api/v1/private/{conversation_id}/messages", json={"body": "x"})
    assert refused.status_code == 403
    assert world.messages() == 1 and world.conversation().closed_at is None  # type: ignore[union-attr]
    fresh(world.db)
    assert world.db.scalar(select(func.count()).select_from(Post)) == 1


def test_bad_input_answers_4xx_and_changes_nothing(world: World) -> None:
    thread_id = world.thread.id
    refused = world.post(
        "agent", f"/t/{thread_id}/private", {"body": "  "}, token_from=f"/t/{thread_id}"
    )
    assert refused.status_code == 422 and "Write something first." in refused.text  # type: ignore[attr-defined]
    assert 'id="error-followup-body"' in refused.text  # type: ignore[attr-defined]
    assert world.conversation() is None
    conversation_id = _open(world)
    here = f"/private/{conversation_id}"
    empty = world.post("customer", f"{here}/messages", {"body": ""}, token_from=here)
    assert empty.status_code == 422 and 'id="error-body"' in empty.text  # type: ignore[attr-defined]
    too_long = world.post(
        "agent", f"{here}/close", {"public_outcome": "x" * 30_001}, token_from=here
    )
    assert too_long.status_code == 422 and 'id="error-public_outcome"' in too_long.text  # type: ignore[attr-defined]
    nul = world.post("customer", f"{here}/messages", {"body": "a\x00b"}, token_from=here)
    assert nul.status_code in (400, 422)  # type: ignore[attr-defined]
    assert world.messages() == 1 and world.conversation().closed_at is None  # type: ignore[union-attr]

    agent = world.browsers["agent"]
    for path in (
        "/private/abc",
        "/private/-1",
        f"/private/{2**70}",
        "/t/99999999/private",
        "/private/0",
    ):
        assert agent.get(path).status_code in (400, 404, 422), path
    token = csrf_token(agent, here)
    for path in (f"/private/{2**70}/messages", "/private/x/close", "/t/abc/private"):
        response = agent.post(path, data={"body": "x", "csrf_token": token})
        assert response.status_code in (400, 404, 422), path


def test_htmx_and_plain_requests_both_render(world: World) -> None:
    conversation_id = _open(world)
    page = world.browsers["customer"].get(
        f"/private/{conversation_id}", headers={"HX-Request": "true"}
    )
    assert page.status_code == 200 and SECRET in page.text
    assert re.search(r"<title>[^<]*Private conversation", page.text)


def test_the_conversation_page_costs_the_same_for_few_and_many_messages(
    world: World, engine: Engine
) -> None:
    conversation_id = _open(world)
    path = f"/private/{conversation_id}"
    agent = world.browsers["agent"]

    def statements() -> int:
        assert agent.get(path).status_code == 200  # the per-app caches fill first
        counted: list[str] = []

        def count(*args: Any) -> None:
            counted.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", count)
        try:
            assert agent.get(path).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(counted)

    few = statements()
    authors = [world.users[role] for role in ("customer", "moderator", "admin", "agent")]
    for index in range(12):
        author = authors[index % len(authors)]
        conversation = followup.access_conversation(world.db, author, conversation_id)
        followup.reply(world.db, author, conversation, f"Message number {index}")
        world.db.commit()
    assert few > 0 and statements() == few
