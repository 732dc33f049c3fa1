"""Restricted forums (issue 16): a forum open to verified customers only, or to its brand's staff
only, is missing (404, never 403) for everyone else: its page, threads, posts, revisions, the
ask form in it, votes and answers on it, the API's equivalents, the brand's forum list, other
people's profiles and notifications. Staff of another brand are nobody special here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from community.core import api_tokens, notifications, policy
from community.core.auth import ANONYMOUS, Viewer
from community.core.models import Brand, Forum, ForumAccess, Post, Role, Thread, User
from community.core.page_cache import PageCache
from community.core.settings import Settings
from community.core.staff import load_brand_roles
from community.core.workspace_models import BrandRole, StaffGrant
from tests.conftest import QA, csrf_token, log_in

UserFactory = Callable[..., User]

PUBLIC, VERIFIED, STAFF = "mobile", "vip", "staffroom"
# Who reads which of acme's forums: the public one, the verified customers' and the staff's.
READS = {
    "anonymous": {PUBLIC},
    "member": {PUBLIC},
    "verified": {PUBLIC, VERIFIED},
    "moderator": {PUBLIC, VERIFIED, STAFF},
    "agent": {PUBLIC, VERIFIED, STAFF},
    "other_brand_staff": {PUBLIC},
    "admin": {PUBLIC, VERIFIED, STAFF},
}


@dataclass
class World:
    """acme's three forums (a thread with an answer in each), globex's staff-only forum, and
    one person per kind of reader."""

    acme: Brand
    forums: dict[str, Forum]
    threads: dict[str, Thread]
    answers: dict[str, Post]
    backoffice_thread: Thread
    asker: User
    helper: User
    readers: dict[str, User] = field(default_factory=dict)


def _grant(db: Session, user: User, brand: Brand, role: BrandRole) -> None:
    db.add(StaffGrant(user_id=user.id, brand_id=brand.id, role=role))
    db.commit()


def acme_and_globex(db: Session, forum: Forum) -> tuple[dict[str, Forum], Brand]:
    """acme's forums by slug (the fixture's public one, the verified customers' and the staff's,
    all public until `restrict`: people write in them first) and a second brand, globex."""
    acme = forum.brand
    vip = Forum(brand_id=acme.id, slug=VERIFIED, name="Customers lounge", position=1)
    staffroom = Forum(brand_id=acme.id, slug=STAFF, name="Staff room", position=2)
    globex = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add_all([vip, staffroom, globex])
    db.commit()
    return {PUBLIC: forum, VERIFIED: vip, STAFF: staffroom}, globex


def restrict(db: Session, forums: dict[str, Forum]) -> None:
    forums[VERIFIED].access, forums[STAFF].access = ForumAccess.VERIFIED, ForumAccess.STAFF
    db.commit()


def add_readers(db: Session, make_user: UserFactory, acme: Brand, globex: Brand) -> dict[str, User]:
    """One person per kind of reader in READS (but the visitor, who is nobody)."""
    readers = {"member": make_user("plainmember"), "verified": make_user("verifiedcust")}
    readers["verified"].verified_customer = True
    for who, name, brand, role in (
        ("moderator", "acmemod", acme, BrandRole.MODERATOR),
        ("agent", "acmeagent", acme, BrandRole.AGENT),
        ("other_brand_staff", "globexmod", globex, BrandRole.MODERATOR),
    ):
        readers[who] = make_user(name)
        _grant(db, readers[who], brand, role)
    readers["admin"] = make_user("siteboss", role=Role.ADMIN)
    db.commit()
    return readers


@pytest.fixture
def world(db: Session, forum: Forum, make_user: UserFactory) -> World:
    forums, globex = acme_and_globex(db, forum)
    backoffice = Forum(brand_id=globex.id, slug="backoffice", name="Back office")
    db.add(backoffice)
    db.commit()
    asker, helper = make_user("asker"), make_user("helper")
    backoffice_thread = QA(db=db, forum=backoffice).ask(
        asker, title="Roaming question in the globex back office"
    )
    made = World(forum.brand, forums, {}, {}, backoffice_thread, asker=asker, helper=helper)
    # Written while every forum is public (the asker may then post anywhere), restricted after.
    for slug, target in forums.items():
        qa = QA(db=db, forum=target)
        thread = qa.ask(asker, title=f"Roaming question number {slug} abroad")
        made.threads[slug] = thread
        made.answers[slug] = qa.answer(helper, thread, f"An answer about {slug} roaming.")
    restrict(db, forums)
    backoffice.access = ForumAccess.STAFF
    made.readers = add_readers(db, make_user, forum.brand, globex)
    return made


def _browser(make_client: Callable[[], TestClient], world: World, who: str) -> TestClient:
    browser = make_client()
    if who != "anonymous":
        log_in(browser, world.readers[who].username)
    return browser


def _found(expected: bool) -> int:
    return 200 if expected else 404


@pytest.mark.parametrize("who", sorted(READS))
def test_each_reader_opens_exactly_the_forums_they_may_read(
    make_client: Callable[[], TestClient], world: World, who: str
) -> None:
    browser = _browser(make_client, world, who)
    for slug, thread in world.threads.items():
        status = _found(slug in READS[who])
        forum = world.forums[slug]
        answer = world.answers[slug]
        for path in (
            f"/b/acme/{slug}",
            f"/t/{thread.id}",
            f"/posts/{answer.id}/revisions",
            f"/api/v1/threads/{thread.id}",
            f"/api/v1/forums/{forum.id}/threads",
            f"/api/v1/posts/{answer.id}/revisions",
        ):
            assert browser.get(path).status_code == status, (who, path)
        if who != "anonymous":
            asking = browser.get("/b/acme/ask/new", params={"forum": slug})
            assert asking.status_code == status, (who, slug)


@pytest.mark.parametrize("who", sorted(READS))
def test_listings_show_only_what_the_reader_may_read(
    make_client: Callable[[], TestClient], world: World, who: str
) -> None:
    browser = _browser(make_client, world, who)
    brand_page = browser.get("/b/acme").text
    api_forums = {forum["slug"] for forum in browser.get("/api/v1/brands/acme/forums").json()}
    profile = browser.get(f"/u/{world.asker.username}").text
    assert api_forums == READS[who]
    for slug, thread in world.threads.items():
        readable = slug in READS[who]
        assert (f'href="/b/acme/{slug}"' in brand_page) == readable, (who, slug)
        assert (thread.title in profile) == readable, (who, slug)
    # The other brand's staff-only forum: its own staff (and site admins) only.
    in_profile = world.backoffice_thread.title in profile
    assert in_profile == (who in ("other_brand_staff", "admin")), who


def test_the_profile_counts_only_readable_threads(
    make_client: Callable[[], TestClient], world: World
) -> None:
    member = _browser(make_client, world, "member")
    admin = _browser(make_client, world, "admin")
    # The profile's "Questions" figure: 1 public thread for a member, all 4 for a site admin.
    questions = "<dd><strong>{}</strong></dd></div>\n    <div><dt>Answers"
    assert questions.format(1) in member.get(f"/u/{world.asker.username}").text
    assert questions.format(4) in admin.get(f"/u/{world.asker.username}").text


def test_writes_on_a_restricted_forum_are_404_for_those_who_may_not_read_it(
    db: Session, make_client: Callable[[], TestClient], world: World
) -> None:
    member = _browser(make_client, world, "member")
    token = csrf_token(member, "/b/acme")
    answer, thread = world.answers[VERIFIED], world.threads[VERIFIED]
    headers = {"X-CSRF-Token": token, "HX-Request": "true"}
    for path, data in (
        (f"/posts/{answer.id}/vote", {"value": "1"}),
        (f"/t/{thread.id}/answers", {"body": "Me too, and here is what I did."}),
        (f"/t/{thread.id}/helpful", {}),
        (f"/posts/{answer.id}/accept", {}),
        (f"/posts/{answer.id}/flag", {"reason": "spam"}),
        (f"/t/{thread.id}/watch", {}),
    ):
        response = member.post(path, data=data, headers=headers, follow_redirects=False)
        assert response.status_code == 404, (path, response.status_code)
    asked = member.post(
        "/b/acme/ask/new",
        data={"forum": VERIFIED, "title": "A question for the lounge", "body": "Hello there."},
        headers={"X-CSRF-Token": token},
    )
    assert asked.status_code == 422  # as for a forum that does not exist: "Choose a forum."
    _token, raw = api_tokens.create_token(db, world.readers["member"], "tests")
    db.commit()
    bearer = {"Authorization": f"Bearer {raw}"}
    assert (
        member.put(f"/api/v1/posts/{answer.id}/vote", json={"value": 1}, headers=bearer).status_code
        == 404
    )
    assert (
        member.post(
            f"/api/v1/threads/{thread.id}/posts", json={"body": "Through the API."}, headers=bearer
        ).status_code
        == 404
    )
    # A verified customer may.
    verified = _browser(make_client, world, "verified")
    vote = verified.post(
        f"/posts/{answer.id}/vote",
        data={"value": "1"},
        headers={"X-CSRF-Token": csrf_token(verified, "/b/acme"), "HX-Request": "true"},
    )
    assert vote.status_code == 200


def test_a_kept_members_page_is_never_served_to_a_member_who_may_not_read_it(
    app: FastAPI, settings: Settings, make_client: Callable[[], TestClient], world: World
) -> None:
    """Members' shared thread pages are served without the route running: a verified customer's
    page of the lounge must not reach a plain member of the same role and trust level."""
    app.state.page_cache = PageCache(settings.model_copy(update={"page_cache_seconds": 30.0}))
    thread = world.threads[VERIFIED]
    verified = _browser(make_client, world, "verified")
    member = _browser(make_client, world, "member")
    for browser in (verified, member):
        browser.get("/b/acme")  # shows (and so clears) the "Signed in" flash message
    kept = verified.get(f"/t/{thread.id}")
    assert (kept.status_code, kept.headers.get("x-cache")) == (200, "miss")
    assert verified.get(f"/t/{thread.id}").headers.get("x-cache") == "hit"
    assert member.get(f"/t/{thread.id}").status_code == 404


def test_notifications_about_a_restricted_forum_reach_only_those_who_may_read_it(
    db: Session, make_client: Callable[[], TestClient], world: World
) -> None:
    """The asker watches the staff room thread they wrote before it was restricted: a new answer
    there is not shown (nor counted, nor e-mailed) to them."""
    before = notifications.unread_count(db, world.asker.id)
    moderator = load_brand_roles(db, world.readers["moderator"])  # as the request's user is
    QA(db=db, forum=world.forums[STAFF]).answer(
        moderator, world.threads[STAFF], "Staff only: the fix is on its way."
    )
    QA(db=db, forum=world.forums[PUBLIC]).answer(
        moderator, world.threads[PUBLIC], "Public: restart the phone."
    )
    assert notifications.unread_count(db, world.asker.id) == before + 1
    asker = make_client()
    log_in(asker, world.asker.username)
    listed = asker.get("/notifications").text
    assert world.threads[PUBLIC].title in listed
    assert world.threads[STAFF].title not in listed


def test_the_policy_answers_by_brand_and_verified_state(world: World) -> None:
    acme_id = world.acme.id
    staffroom, vip = world.forums[STAFF], world.forums[VERIFIED]
    verified_viewer = Viewer(user_id=1, role=Role.MEMBER, verified_customer=True)
    # Not signed in: never verified, whatever the object says.
    assert policy.readable_access_levels(ANONYMOUS, acme_id) == {ForumAccess.PUBLIC}
    assert policy.readable_access_levels(None, acme_id) == {ForumAccess.PUBLIC}
    assert policy.can_read_forum(verified_viewer, vip)
    assert not policy.can_read_forum(verified_viewer, staffroom)
    other = Viewer(
        user_id=2,
        role=Role.MEMBER,
        brand_roles={acme_id + 1000: frozenset({BrandRole.MODERATOR})},
    )
    assert not policy.can_read_forum(other, staffroom)
    assert not policy.can_read_forum(other, vip)
    mine = Viewer(user_id=3, role=Role.MEMBER, brand_roles={acme_id: frozenset({BrandRole.AGENT})})
    assert policy.can_read_forum(mine, staffroom)
    assert policy.readable_access_levels(world.readers["admin"], acme_id) == set(ForumAccess)
