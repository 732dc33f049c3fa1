"""Following a forum or a tag: the toggle (page, htmx, JSON API) with its CSRF and sign-in
checks, and who hears of a new thread: once per person, never the author, never a held question
before it is published, never someone who may not read the forum; e-mail as for watched
threads."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.models import (
    EmailPreference,
    Forum,
    ForumAccess,
    Notification,
    NotificationKind,
    Role,
    Tag,
    User,
    Visibility,
)
from community.core.notifications import EMAIL_EVENT, describe, target_path
from community.core.outbox import OutboxEvent
from community.core.workspace_models import ForumFollow, TagFollow
from community.members import follows
from community.visibility import question_of
from moderation import actions
from tests.conftest import QA, csrf_token, fresh, log_in

UserFactory = Callable[..., User]
HTMX = {"HX-Request": "true"}


def _notices(db: Session, user: User) -> list[Notification]:
    fresh(db)
    return list(
        db.scalars(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
        )
    )


def _kinds(db: Session, user: User) -> list[str]:
    return [notice.kind.value for notice in _notices(db, user)]


def _tag(db: Session, forum: Forum, name: str) -> Tag:
    tag = Tag(brand_id=forum.brand_id, name=name)
    db.add(tag)
    db.commit()
    return tag


def _signed_in(make_client: Callable[[], TestClient], user: User) -> TestClient:
    browser = make_client()
    log_in(browser, user.username)
    return browser


# --- following ----------------------------------------------------------------------------------


def test_the_forum_page_toggles_following_with_htmx_and_without(
    db: Session, forum: Forum, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    member = make_user("member")
    browser = _signed_in(make_client, member)
    page = browser.get("/b/acme/mobile")
    assert page.status_code == 200
    assert f'action="/forums/{forum.id}/follow"' in page.text
    assert 'aria-pressed="false"' in page.text
    token = csrf_token(browser, "/b/acme/mobile")

    fragment = browser.post(
        f"/forums/{forum.id}/follow", data={"follow": "1"}, headers=HTMX | {"X-CSRF-Token": token}
    )
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div class="watch" id="follow-forum">')
    assert "Following" in fragment.text
    assert follows.follows_forum(db, member.id, forum.id)
    assert 'aria-pressed="true"' in browser.get("/b/acme/mobile").text

    # Without JavaScript: a form post and a redirect back to the forum.
    plain = browser.post(
        f"/forums/{forum.id}/follow",
        data={"follow": "0", "csrf_token": token},
        follow_redirects=False,
    )
    assert plain.status_code == 303
    assert plain.headers["location"] == "/b/acme/mobile"
    fresh(db)
    assert not follows.follows_forum(db, member.id, forum.id)


def test_following_needs_the_csrf_token_and_a_signed_in_member(
    db: Session, forum: Forum, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    tag = _tag(db, forum, "esim")
    member = make_user("member")
    browser = _signed_in(make_client, member)
    for path in (f"/forums/{forum.id}/follow", "/b/acme/tags/esim/follow"):
        refused = browser.post(path, data={"follow": "1"}, headers=HTMX)
        assert refused.status_code == 403, path
    for path in (f"/api/v1/forums/{forum.id}/follow", "/api/v1/tags/acme/esim/follow"):
        assert browser.post(path).status_code == 403, path
        assert browser.delete(path).status_code == 403, path
    visitor = make_client()
    token = csrf_token(visitor, "/b/acme/mobile")
    anonymous = visitor.post(
        f"/forums/{forum.id}/follow", data={"csrf_token": token}, follow_redirects=False
    )
    assert anonymous.status_code in (303, 401)
    api = visitor.post(f"/api/v1/forums/{forum.id}/follow", headers={"X-CSRF-Token": token})
    assert api.status_code == 401
    fresh(db)
    assert db.scalars(select(ForumFollow)).all() == []
    assert db.scalars(select(TagFollow).where(TagFollow.tag_id == tag.id)).all() == []


def test_the_json_api_follows_and_unfollows_forums_and_tags(
    db: Session, forum: Forum, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    tag = _tag(db, forum, "esim")
    member = make_user("member")
    browser = _signed_in(make_client, member)
    headers = {"X-CSRF-Token": csrf_token(browser, "/b/acme/mobile")}
    for path in (f"/api/v1/forums/{forum.id}/follow", "/api/v1/tags/acme/ESIM/follow"):
        for _twice in range(2):  # idempotent
            followed = browser.post(path, headers=headers)
            assert followed.status_code == 200, followed.text
            assert followed.json() == {"following": True}
    fresh(db)
    assert follows.follows_forum(db, member.id, forum.id)
    assert follows.follows_tag(db, member.id, tag.id)
    for path in (f"/api/v1/forums/{forum.id}/follow", "/api/v1/tags/acme/esim/follow"):
        assert browser.delete(path, headers=headers).json() == {"following": False}
    fresh(db)
    assert not follows.follows_forum(db, member.id, forum.id)
    assert not follows.follows_tag(db, member.id, tag.id)
    for path in ("/api/v1/forums/999999/follow", "/api/v1/tags/acme/nope/follow",
                 "/api/v1/tags/nobrand/esim/follow"):  # fmt: skip
        missing = browser.post(path, headers=headers)
        assert missing.status_code == 404, path
        assert missing.json()["error"]["code"] == "not_found"


def test_a_restricted_forum_cannot_be_followed_by_those_who_may_not_read_it(
    db: Session, forum: Forum, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    forum.access = ForumAccess.STAFF
    db.commit()
    member = _signed_in(make_client, make_user("member"))
    headers = {"X-CSRF-Token": csrf_token(member, "/")}
    assert member.post(f"/api/v1/forums/{forum.id}/follow", headers=headers).status_code == 404
    moderator = make_user("modkim", role=Role.MODERATOR)
    staff = _signed_in(make_client, moderator)
    headers = {"X-CSRF-Token": csrf_token(staff, "/")}
    assert staff.post(f"/api/v1/forums/{forum.id}/follow", headers=headers).status_code == 200


def test_the_tag_page_has_the_follow_toggle_and_the_feed_link(
    db: Session, qa: QA, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    qa.ask(make_user("asker"), "Roaming in Spain", tags=["roaming"])
    member = make_user("member")
    browser = _signed_in(make_client, member)
    page = browser.get("/b/acme/tags/roaming")
    assert page.status_code == 200
    assert "Roaming in Spain" in page.text
    assert 'action="/b/acme/tags/roaming/follow"' in page.text
    assert 'href="/b/acme/tags/roaming/feed.atom"' in page.text
    token = csrf_token(browser, "/b/acme/tags/roaming")
    fragment = browser.post(
        "/b/acme/tags/roaming/follow", data={"follow": "1"}, headers=HTMX | {"X-CSRF-Token": token}
    )
    assert 'id="follow-tag"' in fragment.text and "Following" in fragment.text
    plain = browser.post(
        "/b/acme/tags/roaming/follow",
        data={"follow": "0", "csrf_token": token},
        follow_redirects=False,
    )
    assert plain.headers["location"] == "/b/acme/tags/roaming"
    assert browser.get("/b/acme/tags/nothing-here").status_code == 404
    assert make_client().get("/b/acme/tags/roaming").status_code == 200  # visitors read it too


# --- who hears of a new thread -----------------------------------------------------------------


def test_followers_of_the_forum_and_the_tag_hear_once_and_the_author_never(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory
) -> None:
    asker, by_forum, by_tag, by_both, bystander = (
        make_user(name) for name in ("asker", "byforum", "bytag", "byboth", "bystander")
    )
    tag = _tag(db, forum, "esim")
    follows.follow_forum(db, by_forum, forum)
    follows.follow_tag(db, by_tag, tag)
    follows.follow_forum(db, by_both, forum)
    follows.follow_tag(db, by_both, tag)
    follows.follow_forum(db, asker, forum)
    follows.follow_tag(db, asker, tag)
    db.commit()

    thread = qa.ask(asker, "Moving to an eSIM", tags=["esim"])
    assert _kinds(db, by_forum) == ["followed_forum"]
    assert _kinds(db, by_tag) == ["followed_tag"]
    assert _kinds(db, by_both) == ["followed_forum"]  # one notification, not two
    assert _kinds(db, asker) == []
    assert _kinds(db, bystander) == []
    notice = _notices(db, by_tag)[0]
    assert notice.thread_id == thread.id and notice.actor_id == asker.id
    assert describe(notice) == "asker asked “Moving to an eSIM” with a tag you follow"
    assert target_path(notice) == f"/t/{thread.id}#post-{notice.post_id}"

    # Answers are for the thread's watchers, not the forum's followers.
    qa.answer(make_user("helper"), thread)
    assert _kinds(db, by_forum) == ["followed_forum"]
    # A thread without the tag reaches the forum's followers only.
    qa.ask(asker, "Another question")
    assert _kinds(db, by_forum) == ["followed_forum", "followed_forum"]
    assert _kinds(db, by_tag) == ["followed_tag"]


def test_a_mentioned_follower_hears_of_the_mention_only(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory
) -> None:
    named = make_user("named")
    follows.follow_forum(db, named, forum)
    db.commit()
    qa.ask(make_user("asker"), "Roaming stopped", "What do you think, @named? It stopped.")
    assert _kinds(db, named) == ["mention"]


def test_a_held_question_reaches_followers_only_when_published(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory
) -> None:
    follower = make_user("follower")
    follows.follow_forum(db, follower, forum)
    db.commit()
    newcomer = make_user("newcomer", trust_level=0)  # a first post waits for a moderator
    thread = qa.ask(newcomer, "My first question here")
    fresh(db)
    assert thread.visibility == Visibility.PENDING
    assert _kinds(db, follower) == []

    moderator = make_user("modkim", role=Role.MODERATOR)
    question = question_of(db, thread)
    actions.set_post_visibility(db, moderator, question, Visibility.VISIBLE, reason=None)
    db.commit()
    from tests.conftest import announce_published

    announce_published(db)
    assert _kinds(db, follower) == ["followed_forum"]


def test_followers_who_may_not_read_the_forum_hear_nothing(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory
) -> None:
    member, moderator = make_user("member"), make_user("modkim", role=Role.MODERATOR)
    # Followed while the forum was public; then it became staff-only.
    follows.follow_forum(db, member, forum)
    follows.follow_forum(db, moderator, forum)
    db.commit()
    forum.access = ForumAccess.STAFF
    db.commit()
    qa.ask(make_user("agentann", role=Role.AGENT), "Internal: billing outage runbook")
    assert _kinds(db, member) == []
    assert _kinds(db, moderator) == ["followed_forum"]


def test_e_mail_follows_each_follower_s_preference(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory
) -> None:
    at_once, never = make_user("atonce"), make_user("never")
    never.email_notifications = EmailPreference.OFF
    for user in (at_once, never):
        follows.follow_forum(db, user, forum)
    db.commit()
    qa.ask(make_user("asker"), "Voicemail is gone")
    fresh(db)
    emailed = {
        db.get(Notification, event.payload["notification_id"]).user_id  # type: ignore[union-attr]
        for event in db.scalars(select(OutboxEvent).where(OutboxEvent.kind == EMAIL_EVENT))
    }
    assert at_once.id in emailed
    assert never.id not in emailed
    kinds = {n.kind for n in _notices(db, never)}
    assert kinds == {NotificationKind.FOLLOWED_FORUM}  # in the app all the same
