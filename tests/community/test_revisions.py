"""Edit history with redacted versions: after staff edit out personal data, the old text is
hidden from everyone but staff in the history page, its diffs and the API; audited."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.audit import AuditLog
from community.core.models import Post, PostRevision, Role, Thread, User
from tests.conftest import QA, csrf_token, fresh, log_in

UserFactory = Callable[..., User]
RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]
PHONE = "+34 612 345 678"
TITLE = "Router keeps dropping the line"


def _question(db: Session, thread: Thread) -> Post:
    return db.scalars(
        select(Post).where(Post.thread_id == thread.id, Post.is_question.is_(True))
    ).one()


def _redactions(db: Session) -> list[AuditLog]:
    fresh(db)
    return list(db.scalars(select(AuditLog).where(AuditLog.action == "post.revisions_redacted")))


def _edit(browser: TestClient, post: Post, body: str, **extra: str) -> int:
    response = browser.post(
        f"/posts/{post.id}/edit",
        data={"title": TITLE, "body": body, "kind": "question", "tags": "", **extra}
        | {"csrf_token": csrf_token(browser, "/")},
        follow_redirects=False,
    )
    return response.status_code


def test_an_edit_for_personal_data_hides_the_old_text_from_non_staff(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    as_role: RoleClient,
    make_client: Callable[[], TestClient],
) -> None:
    asker = make_user("asker")
    question = _question(
        db, qa.ask(asker, title=TITLE, body=f"It drops at night. Call me on {PHONE}.")
    )
    moderator, moderator_user = as_role(Role.MODERATOR)
    form = moderator.get(f"/posts/{question.id}/edit").text
    assert 'name="redact_earlier"' in form  # offered to staff...
    owner = make_client()
    log_in(owner, "asker")
    assert 'name="redact_earlier"' not in owner.get(f"/posts/{question.id}/edit").text  # ...only
    assert (
        _edit(moderator, question, "It drops at night.", reason="personal data", redact_earlier="1")
        == 303
    )

    readers = {"anonymous": make_client(), "the author": owner, "a member": as_role(Role.MEMBER)[0]}
    for who, reader in readers.items():
        page = reader.get(f"/posts/{question.id}/revisions")
        assert page.status_code == 200, who
        assert "Redacted by staff" in page.text, who
        assert "612 345 678" not in page.text, who  # neither as text nor in a diff
        assert "It drops at night." in page.text, who  # the current version, in full
        api = reader.get(f"/api/v1/posts/{question.id}/revisions")
        assert "612 345 678" not in api.text, who
        first, second = api.json()
        assert (first["number"], first["redacted"], first["body_source"]) == (
            1,
            True,
            "Redacted by staff",
        )
        assert first["title"] is None and first["tags"] is None
        assert (second["redacted"], second["body_source"]) == (False, "It drops at night.")

    for role in (Role.MODERATOR, Role.AGENT, Role.ADMIN):
        staff, _user = as_role(role)
        page = staff.get(f"/posts/{question.id}/revisions").text
        assert PHONE in page and "Redacted by staff" in page, role
        assert staff.get(f"/api/v1/posts/{question.id}/revisions").json()[0]["body_source"] == (
            f"It drops at night. Call me on {PHONE}."
        )
    [audit] = _redactions(db)
    assert moderator_user is not None
    assert (audit.actor_id, audit.target_id, audit.after, audit.reason) == (
        moderator_user.id,
        str(question.id),
        {"revisions": [1]},
        "personal data",
    )
    fresh(db)
    stored = db.scalars(select(PostRevision).where(PostRevision.number == 1)).one()
    assert stored.body_source.endswith(PHONE + ".")  # kept for staff, not erased
    assert stored.redacted_by_id == moderator_user.id


def test_staff_redact_one_version_from_the_history_and_the_next_diff_does_not_leak_it(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    as_role: RoleClient,
    make_client: Callable[[], TestClient],
) -> None:
    make_user("asker")
    owner = make_client()
    log_in(owner, "asker")
    asker = db.scalars(select(User).where(User.username == "asker")).one()
    question = _question(db, qa.ask(asker, title=TITLE, body="It drops at night."))
    assert _edit(owner, question, f"It drops at night.\nMy number is {PHONE}.") == 303
    assert _edit(owner, question, "It drops at night.\nAny ideas?") == 303
    reader = make_client()
    # Without redaction the diff of version 3 shows the removed line.
    assert PHONE in reader.get(f"/posts/{question.id}/revisions").text

    agent, _agent = as_role(Role.AGENT)
    token = csrf_token(agent, "/")
    url = f"/posts/{question.id}/revisions/2/redact"
    assert (
        agent.post(
            url, data={"csrf_token": token, "reason": "phone number"}, follow_redirects=False
        )
    ).status_code == 303
    page = reader.get(f"/posts/{question.id}/revisions").text
    assert PHONE not in page and "Redacted by staff" in page
    assert "Any ideas?" in page  # version 3 in full instead of a diff against the hidden one

    # Again: nothing new. The latest version is the post itself. Members may not.
    assert agent.post(url, data={"csrf_token": token}, follow_redirects=False).status_code == 303
    latest = agent.post(f"/posts/{question.id}/revisions/3/redact", data={"csrf_token": token})
    assert latest.status_code == 409
    assert (
        agent.post(
            f"/posts/{question.id}/revisions/9/redact", data={"csrf_token": token}
        ).status_code
        == 404
    )
    member = owner.post(
        f"/posts/{question.id}/revisions/1/redact", data={"csrf_token": csrf_token(owner, "/")}
    )
    assert member.status_code == 403
    api = owner.post(
        f"/api/v1/posts/{question.id}/revisions/1/redact",
        json={},
        headers={"X-CSRF-Token": csrf_token(owner, "/")},
    )
    assert api.status_code == 403
    assert [entry.after for entry in _redactions(db)] == [{"revisions": [2]}]
    fresh(db)
    redacted = [
        rev.number
        for rev in db.scalars(select(PostRevision).where(PostRevision.redacted_at.is_not(None)))
    ]
    assert redacted == [2]


def test_members_cannot_redact_through_an_edit(
    db: Session, qa: QA, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    asker = make_user("asker")
    question = _question(db, qa.ask(asker, title=TITLE, body=f"Call me on {PHONE}."))
    owner = make_client()
    log_in(owner, "asker")
    refused = owner.patch(
        f"/api/v1/posts/{question.id}",
        json={"body": "Call me.", "redact_earlier": True},
        headers={"X-CSRF-Token": csrf_token(owner, "/")},
    )
    assert refused.status_code == 403
    fresh(db)
    stored = db.get(Post, question.id)
    assert stored is not None and stored.body_source == f"Call me on {PHONE}."
    assert db.scalars(select(PostRevision)).all() == []
