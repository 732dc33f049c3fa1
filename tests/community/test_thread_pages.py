"""Forum and thread pages and their htmx fragments, with and without HX-Request."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core.activity_models import Vote
from community.core.clock import utcnow
from community.core.models import Notification, Post, Role, Thread, User, Visibility
from tests.conftest import QA, csrf_token, fresh, log_in

UserFactory = Callable[..., User]
RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]
HTMX = {"HX-Request": "true"}


def _signed_in(make_client: Callable[[], TestClient], username: str) -> TestClient:
    browser = make_client()
    log_in(browser, username)
    return browser


def _question(db: Session, thread: Thread) -> Post:
    return db.scalars(
        select(Post).where(Post.thread_id == thread.id, Post.is_question.is_(True))
    ).one()


def test_forum_page_sorts_filters_and_pages(
    client: TestClient, qa: QA, make_user: UserFactory
) -> None:
    author = make_user("asker")
    for index in range(35):
        qa.ask(
            author,
            title=f"Question {index:02d} about roaming",
            tags=["roaming"] if index < 3 else [],
        )
    page = client.get("/b/acme/mobile")
    assert page.status_code == 200
    assert page.text.count('class="thread-row"') == 30
    next_link = re.search(r'rel="next"\s+href="([^"]+)"', page.text)
    assert next_link
    second = client.get("/b/acme/mobile" + next_link.group(1).replace("&amp;", "&"))
    assert second.text.count('class="thread-row"') == 5
    assert 'rel="next"' not in second.text

    tagged = client.get("/b/acme/mobile", params={"tag": "roaming"})
    assert tagged.text.count('class="thread-row"') == 3
    fragment = client.get("/b/acme/mobile", params={"sort": "newest"}, headers=HTMX)
    assert fragment.text.lstrip().startswith('<section class="card" id="thread-list"')
    assert "<html" not in fragment.text
    assert "Question 34 about roaming" in fragment.text.split('class="thread-row"')[1]

    assert client.get("/b/acme/mobile", params={"cursor": "nonsense"}).status_code == 400
    assert client.get("/b/acme/mobile", params={"sort": "bogus", "kind": "x"}).status_code == 200
    assert client.get("/b/acme/nope").status_code == 404


def test_ask_page_requires_login_and_validates(
    make_client: Callable[[], TestClient], db: Session, qa: QA, make_user: UserFactory
) -> None:
    anonymous = make_client()
    assert anonymous.get("/b/acme/ask/new", follow_redirects=False).status_code == 303
    make_user("asker")
    browser = _signed_in(make_client, "asker")
    form = browser.get("/b/acme/ask/new", params={"forum": "mobile"})
    assert 'value="mobile" selected' in form.text
    kinds = re.findall(
        r'<option value="(\w+)"', form.text.split('name="kind"')[1].split("</select>")[0]
    )
    assert kinds == ["question", "problem", "complaint", "idea", "praise", "discussion"]
    token = csrf_token(browser, "/b/acme/ask/new")
    bad = browser.post(
        "/b/acme/ask/new",
        data={
            "forum": "none",
            "title": "short",
            "body": "",
            "tags": "ok bad/tag",
            "csrf_token": token,
        },
    )
    assert bad.status_code == 422
    assert "Choose a forum." in bad.text
    for field in ("title", "body", "tags"):
        assert f'id="error-{field}"' in bad.text
    assert db.scalar(select(func.count()).select_from(Thread)) == 0
    good = browser.post(
        "/b/acme/ask/new",
        data={
            "forum": "mobile",
            "title": "How do I turn on Wi-Fi calling?",
            "body": "My phone has **no signal** at home.",
            "kind": "question",
            "tags": "wifi-calling, signal",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert good.status_code == 303
    page = browser.get(good.headers["location"])
    assert '<h1 id="thread-title">How do I turn on Wi-Fi calling?</h1>' in page.text
    assert "<strong>no signal</strong>" in page.text
    assert "Your question is posted." in page.text


def test_xss_in_titles_tags_and_bodies_is_inert(
    client: TestClient, db: Session, qa: QA, make_user: UserFactory
) -> None:
    author = make_user("asker")
    author.display_name = "<img src=x onerror=alert(1)>"
    db.commit()
    thread = qa.ask(
        author,
        title='"><script>alert(1)</script> in a title',
        body="<script>alert(2)</script> [x](javascript:alert(3)) <img src=x onerror=alert(4)>",
        tags=["c#", "c++"],
    )
    for path in ("/b/acme/mobile", f"/t/{thread.id}", "/u/asker"):
        text = client.get(path).text
        assert "<script>alert" not in text, path
        assert "onerror=alert" not in text or "&lt;img src=x onerror=alert" in text, path
        assert 'href="javascript:' not in text, path
    page = client.get(f"/t/{thread.id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; in a title" in page
    assert "hx-disable><p>&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_thread_page_controls_follow_permissions(
    make_client: Callable[[], TestClient], db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker)
    answer = qa.answer(helper, thread)
    anonymous = make_client().get(f"/t/{thread.id}").text
    assert "Upvote" not in anonymous and "Accept this answer" not in anonymous
    assert "to answer." in anonymous
    as_helper = _signed_in(make_client, "helper").get(f"/t/{thread.id}").text
    assert f'action="/posts/{_question(db, thread).id}/vote"' in as_helper
    assert f'action="/posts/{answer.id}/vote"' not in as_helper  # not on one's own post
    assert "Accept this answer" not in as_helper
    assert f'href="/posts/{answer.id}/edit"' in as_helper
    as_asker = _signed_in(make_client, "asker").get(f"/t/{thread.id}").text
    assert "Accept this answer" in as_asker
    question_id = _question(db, thread).id
    assert f'action="/posts/{question_id}/delete"' not in as_asker  # answered: cannot delete


def test_vote_with_htmx_and_with_a_plain_form(
    make_client: Callable[[], TestClient], db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker)
    answer = qa.answer(helper, thread)
    browser = _signed_in(make_client, "asker")
    token = csrf_token(browser, f"/t/{thread.id}")
    fragment = browser.post(
        f"/posts/{answer.id}/vote", data={"value": "1"}, headers=HTMX | {"X-CSRF-Token": token}
    )
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith(f'<div class="vote" id="vote-{answer.id}">')
    assert '<span class="score" aria-label="Score">1</span>' in fragment.text
    assert 'aria-pressed="true"' in fragment.text
    plain = browser.post(
        f"/posts/{answer.id}/vote", data={"value": "0", "csrf_token": token}, follow_redirects=False
    )
    assert plain.status_code == 303
    assert plain.headers["location"] == f"/t/{thread.id}#post-{answer.id}"
    fresh(db)
    assert db.scalar(select(func.count()).select_from(Vote)) == 0
    bad = browser.post(f"/posts/{answer.id}/vote", data={"value": "5", "csrf_token": token})
    assert bad.status_code == 422
    own = _signed_in(make_client, "helper")
    refused = own.post(
        f"/posts/{answer.id}/vote", data={"value": "1", "csrf_token": csrf_token(own, "/")}
    )
    assert refused.status_code == 403


def test_accept_helpful_and_watch_fragments(
    make_client: Callable[[], TestClient], db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    make_user("reader")
    thread = qa.ask(asker)
    answer = qa.answer(helper, thread)
    browser = _signed_in(make_client, "asker")
    headers = HTMX | {"X-CSRF-Token": csrf_token(browser, f"/t/{thread.id}")}
    accepted = browser.post(f"/posts/{answer.id}/accept", headers=headers)
    assert accepted.text.lstrip().startswith('<section id="answers"')
    assert re.search(
        r'<svg class="icon icon-check"[^>]*aria-hidden="true">.*?</svg> Accepted answer',
        accepted.text,
    )
    assert "Unaccept" in accepted.text
    # The status in the page's heading follows out of band.
    status = re.search(
        r'<span class="thread-status" id="thread-status"([^>]*)>(.*?)</span>\s*$',
        accepted.text,
        re.S,
    )
    assert status is not None
    assert status.group(1) == ' hx-swap-oob="true"'
    assert "Solved" in status.group(2)
    unaccepted = browser.post(f"/t/{thread.id}/unaccept", headers=headers)
    assert "Accept this answer" in unaccepted.text
    assert re.search(
        r'<span class="thread-status" id="thread-status" hx-swap-oob="true"></span>\s*$',
        unaccepted.text,
    )
    # A whole page carries the status once, in the heading, not out of band.
    whole = browser.get(f"/t/{thread.id}").text
    assert whole.count('id="thread-status"') == 1
    assert "hx-swap-oob" not in whole

    reader = _signed_in(make_client, "reader")
    reader_headers = HTMX | {"X-CSRF-Token": csrf_token(reader, f"/t/{thread.id}")}
    helped = reader.post(f"/t/{thread.id}/helpful", data={"helpful": "1"}, headers=reader_headers)
    assert helped.text.lstrip().startswith('<div class="helpful" id="helpful">')
    assert "1 person found this helpful" in helped.text
    assert 'aria-pressed="true"' in helped.text
    watched = reader.post(f"/t/{thread.id}/watch", data={"watch": "1"}, headers=reader_headers)
    assert "Watching" in watched.text
    assert (
        browser.post(f"/t/{thread.id}/helpful", data={"helpful": "1"}, headers=headers).status_code
        == 403
    )


def test_answer_form_errors_and_locked_threads(
    make_client: Callable[[], TestClient], db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"))
    make_user("helper")
    browser = _signed_in(make_client, "helper")
    token = csrf_token(browser, f"/t/{thread.id}")
    empty = browser.post(f"/t/{thread.id}/answers", data={"body": "   ", "csrf_token": token})
    assert empty.status_code == 422
    assert 'id="error-body"' in empty.text
    huge = browser.post(f"/t/{thread.id}/answers", data={"body": "x" * 30_001, "csrf_token": token})
    assert huge.status_code == 422
    thread.locked_at = utcnow()
    db.commit()
    locked = browser.post(f"/t/{thread.id}/answers", data={"body": "hi", "csrf_token": token})
    assert locked.status_code == 403
    assert "takes no new answers" in browser.get(f"/t/{thread.id}").text
    fresh(db)
    assert db.scalar(select(func.count()).select_from(Post)) == 1


def test_hidden_threads_are_404_for_members_and_marked_for_staff(
    as_role: RoleClient, db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"))
    thread.visibility = Visibility.HIDDEN
    db.commit()
    for role in (None, Role.MEMBER):
        browser, _user = as_role(role)
        assert browser.get(f"/t/{thread.id}").status_code == 404
        assert browser.get(f"/api/v1/threads/{thread.id}").status_code == 404
    moderator, _user = as_role(Role.MODERATOR)
    page = moderator.get(f"/t/{thread.id}")
    assert page.status_code == 200
    assert '<span class="badge danger">Hidden</span>' in page.text
    forum_page = as_role(None)[0].get("/b/acme/mobile")
    assert thread.title not in forum_page.text


def test_edit_pages_history_and_permissions(
    make_client: Callable[[], TestClient],
    as_role: RoleClient,
    db: Session,
    qa: QA,
    make_user: UserFactory,
) -> None:
    thread = qa.ask(make_user("asker"), body="Line one\nLine two")
    question = _question(db, thread)
    other = _signed_in(make_client, make_user("other").username)
    assert other.get(f"/posts/{question.id}/edit").status_code == 403
    refused = other.post(
        f"/posts/{question.id}/edit",
        data={"body": "hacked", "csrf_token": csrf_token(other, "/")},
    )
    assert refused.status_code == 403

    owner = _signed_in(make_client, "asker")
    token = csrf_token(owner, "/")
    saved = owner.post(
        f"/posts/{question.id}/edit",
        data={
            "title": "How do I move my number to an eSIM, please?",
            "body": "Line one\nLine 2 changed",
            "tags": "esim",
            "kind": "question",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    history = owner.get(f"/posts/{question.id}/revisions").text
    assert '<span class="diff-del">- Line two</span>' in history
    assert '<span class="diff-add">+ Line 2 changed</span>' in history
    assert "Revision 2" in history and "Revision 1" in history

    moderator, _mod = as_role(Role.MODERATOR)
    no_reason = moderator.post(
        f"/posts/{question.id}/edit",
        data={
            "body": "Tidied",
            "title": "How do I move my number to an eSIM, please?",
            "csrf_token": csrf_token(moderator, "/"),
        },
    )
    assert no_reason.status_code == 422
    assert 'id="error-reason"' in no_reason.text


def test_preview_renders_sanitized_markdown_for_signed_in_people(
    make_client: Callable[[], TestClient], make_user: UserFactory
) -> None:
    anonymous = make_client()
    token = csrf_token(anonymous, "/")
    assert (
        anonymous.post(
            "/preview", data={"body": "x", "csrf_token": token}, follow_redirects=False
        ).status_code
        == 303
    )
    make_user("writer")
    browser = _signed_in(make_client, "writer")
    preview = browser.post(
        "/preview",
        data={"body": "**bold** <script>alert(1)</script>"},
        headers=HTMX | {"X-CSRF-Token": csrf_token(browser, "/")},
    )
    assert "<strong>bold</strong>" in preview.text
    assert "&lt;script&gt;" in preview.text and "<script>" not in preview.text


def test_notifications_page_count_and_open(
    make_client: Callable[[], TestClient], db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    thread = qa.ask(asker)
    answer = qa.answer(make_user("helper"), thread)
    browser = _signed_in(make_client, "asker")
    home = browser.get("/").text
    assert '<span class="count">1</span>' in home
    badge = browser.get("/notifications/count", headers=HTMX)
    assert badge.text.lstrip().startswith('<a id="notification-count"')
    assert 'aria-label="1 unread notification"' in badge.text
    listing = browser.get("/notifications").text
    assert "helper answered your question" in listing
    notification = db.scalars(select(Notification)).one()
    opened = browser.post(
        f"/notifications/{notification.id}/open",
        data={"csrf_token": csrf_token(browser, "/")},
        follow_redirects=False,
    )
    assert opened.headers["location"] == f"/t/{thread.id}#post-{answer.id}"
    assert '<span class="count">' not in browser.get("/").text
    stranger = _signed_in(make_client, make_user("stranger").username)
    assert (
        stranger.post(
            f"/notifications/{notification.id}/open", data={"csrf_token": csrf_token(stranger, "/")}
        ).status_code
        == 404
    )
    assert make_client().get("/notifications/count").text.strip().endswith("</svg></a>")


@pytest.mark.parametrize("path", ["/b/acme/mobile", "/notifications/count"])
def test_fragment_routes_vary_on_hx_request(client: TestClient, qa: QA, path: str) -> None:
    assert "HX-Request" in client.get(path).headers["vary"]


def test_profile_shows_activity_and_reputation_history(
    client: TestClient, db: Session, qa: QA, make_user: UserFactory
) -> None:
    from community import voting

    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker)
    answer = qa.answer(helper, thread)
    voting.accept(db, asker, answer.id)
    db.commit()
    page = client.get("/u/helper").text
    assert "Your answer was accepted" in page
    assert '<td class="positive">+15</td>' in page
    assert re.search(r"<dt>Accepted</dt><dd><strong>1</strong>", page)
