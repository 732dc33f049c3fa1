"""Held content from its author's side: after asking or answering they land on what they wrote,
marked as waiting for a moderator (nobody else sees it), and they hear how it ended, in the app
and by e-mail."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.models import Forum, Post, Role, Thread, User, Visibility
from community.worker import Worker
from moderation.models import Queue, QueueItem
from tests.conftest import QA, Inbox, csrf_token, fresh, log_in

UserFactory = Callable[..., User]
RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]
WAITING = '<span class="badge warn">Waiting for a moderator</span>'
STAFF_BADGE = '<span class="badge danger">Pending approval</span>'
TITLE = "Pangolin setting vanished after the update"


def _signed_in(make_client: Callable[[], TestClient], username: str) -> TestClient:
    browser = make_client()
    log_in(browser, username)
    return browser


def _question(db: Session, thread_id: int) -> Post:
    fresh(db)
    return db.scalars(
        select(Post).where(Post.thread_id == thread_id, Post.is_question.is_(True))
    ).one()


def _pending_item(db: Session, post_id: int) -> QueueItem:
    fresh(db)
    return db.scalars(
        select(QueueItem).where(QueueItem.post_id == post_id, QueueItem.queue == Queue.PENDING)
    ).one()


def test_a_held_question_waits_visibly_for_its_author_and_nobody_else(
    db: Session,
    forum: Forum,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
    as_role: RoleClient,
) -> None:
    make_user("newbie", trust_level=0)
    author = _signed_in(make_client, "newbie")
    asked = author.post(
        "/b/acme/ask/new",
        data={
            "forum": "mobile",
            "title": TITLE,
            "body": "The tapir option is gone from the settings.",
            "kind": "question",
            "tags": "settings",
            "csrf_token": csrf_token(author, "/b/acme/ask/new"),
        },
        follow_redirects=False,
    )
    assert asked.status_code == 303
    location = asked.headers["location"]
    thread_id = int(location.rsplit("/", 1)[1])
    question = _question(db, thread_id)
    assert question.visibility == Visibility.PENDING

    page = author.get(location)
    assert page.status_code == 200
    assert "Your question is waiting for a moderator" in page.text
    assert "Your question is posted." not in page.text
    assert TITLE in page.text and "tapir option" in page.text
    header, question_card = page.text.split('<section class="card post', 1)
    assert WAITING in header and WAITING in question_card and STAFF_BADGE not in page.text
    assert "Only you and the moderators can see it until it is approved" in page.text
    # Theirs to read, not to change while it is reviewed: no edit, delete or retag offered.
    for offer in (f"/posts/{question.id}/edit", f"/posts/{question.id}/delete", "/tags"):
        assert offer not in page.text, offer
    edited = author.post(
        f"/posts/{question.id}/edit",
        data={"body": "Changed.", "title": TITLE, "csrf_token": csrf_token(author, location)},
    )
    assert edited.status_code == 403
    assert _question(db, thread_id).body_source == "The tapir option is gone from the settings."
    detail = author.get(f"/api/v1/threads/{thread_id}")
    assert detail.status_code == 200
    assert detail.json()["visibility"] == "pending"
    assert detail.json()["question"]["visibility"] == "pending"
    assert "Pangolin" not in author.get("/b/acme/mobile").text  # listings stay as they were

    member, _member = as_role(Role.MEMBER)
    anonymous, _nobody = as_role(None)
    for other in (member, anonymous):
        assert other.get(location).status_code == 404
        refused = other.get(f"/api/v1/threads/{thread_id}")
        assert refused.status_code == 404 and "Pangolin" not in refused.text
    moderator, _moderator = as_role(Role.MODERATOR)
    staff_page = moderator.get(location)
    assert staff_page.status_code == 200 and STAFF_BADGE in staff_page.text
    assert WAITING not in staff_page.text


def test_a_held_answer_shows_to_its_author_only_and_the_api_returns_held_threads(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
    as_role: RoleClient,
) -> None:
    host = qa.ask(make_user("asker"), title="Hedgehog hub keeps rebooting overnight")
    make_user("newbie", trust_level=0)
    author = _signed_in(make_client, "newbie")
    answered = author.post(
        f"/t/{host.id}/answers",
        data={"body": "The okapi trick helped me.", "csrf_token": csrf_token(author, "/")},
        follow_redirects=False,
    )
    assert answered.status_code == 303
    anchor = re.search(r"#post-(\d+)$", answered.headers["location"])
    assert anchor is not None
    page = author.get(answered.headers["location"])
    assert "Your answer is waiting for a moderator" in page.text
    section = page.text.split(f'id="post-{anchor.group(1)}"', 1)[1].split("</section>", 1)[0]
    assert "okapi" in section and WAITING in section
    assert "Only you and the moderators can see this answer until it is approved." in section
    asker = _signed_in(make_client, "asker")
    assert "okapi" not in asker.get(f"/t/{host.id}").text
    answers = asker.get(f"/api/v1/threads/{host.id}").json()["answers"]
    assert answers == []

    # Asking through the API: the held thread comes back (it used to be a 404 after a 201).
    created = author.post(
        f"/api/v1/forums/{qa.forum.id}/threads",
        json={"title": TITLE, "body": "The tapir option is gone."},
        headers={"X-CSRF-Token": csrf_token(author, "/")},
    )
    assert created.status_code == 201, created.text
    assert created.json()["visibility"] == "pending"


def test_the_author_hears_when_a_moderator_approves_or_rejects(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
    smtp: tuple[Inbox, int],
    mail_worker: Callable[[], Worker],
) -> None:
    inbox, _port = smtp
    newbie = make_user("newbie", trust_level=0)
    make_user("warden", role=Role.MODERATOR)
    held = qa.ask(newbie, title=TITLE)
    host = qa.ask(make_user("asker"), title="Hedgehog hub keeps rebooting overnight")
    held_answer = qa.answer(newbie, host, "The okapi trick helped me.")
    assert (held.visibility, held_answer.visibility) == (Visibility.PENDING, Visibility.PENDING)
    question = _question(db, held.id)

    moderator = _signed_in(make_client, "warden")
    token = csrf_token(moderator, "/")
    approved = moderator.post(
        f"/mod/items/{_pending_item(db, question.id).id}/approve", data={"csrf_token": token}
    )
    rejected = moderator.post(
        f"/mod/items/{_pending_item(db, held_answer.id).id}/reject",
        data={"csrf_token": token, "reason": "Please keep answers about the hub"},
    )
    assert approved.status_code == rejected.status_code == 200

    mail_worker().run_once()
    address = "newbie@example.com"
    assert {inbox.subject(index, address) for index in range(len(inbox.to(address)))} == {
        f"A moderator approved your question “{TITLE}”: everyone can see it now",
        "Your post was not published: Please keep answers about the hub",
    }
    author = _signed_in(make_client, "newbie")
    items = author.get("/api/v1/notifications").json()["items"]
    texts = {item["kind"]: item["text"] for item in items}
    assert texts == {
        "approved": f"A moderator approved your question “{TITLE}”: everyone can see it now",
        "moderation": "Your post was not published: Please keep answers about the hub",
    }
    listed = author.get("/notifications").text
    assert "A moderator approved your question" in listed and "keep answers about the hub" in listed
    approval = next(item for item in items if item["kind"] == "approved")
    opened = author.post(
        f"/notifications/{approval['id']}/open",
        data={"csrf_token": csrf_token(author, "/")},
        follow_redirects=False,
    )
    assert opened.headers["location"] == f"/t/{held.id}#post-{question.id}"
    fresh(db)
    assert db.get(Thread, held.id).visibility == Visibility.VISIBLE  # type: ignore[union-attr]
