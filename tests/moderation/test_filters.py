"""Spam and abuse filters on new posts: what is held for review and why, log-only patterns,
the admins' pattern pages, the pending queue page and the code of conduct."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community import thread_editing, threads
from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.models import (
    Brand,
    Forum,
    ModerationPolicy,
    Post,
    Role,
    Thread,
    User,
    Visibility,
)
from community.core.schemas import AskIn, EditIn
from moderation import decisions, filters
from moderation.models import BlockedPattern, FilterHit, FilterMode, ItemStatus, Queue, QueueItem
from tests.conftest import QA, csrf_token, fresh

UserFactory = Callable[..., User]
T = TypeVar("T")
RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]

FIRST_POST = "first post from a new account (trust level 0)"
PREMODERATED = "this forum reviews every post before it appears"
IMAGES = "images from a trust-level-0 account"


# --- helpers ---------------------------------------------------------------------------------


def _load(db: Session, model: type[T], ident: object) -> T:
    found = db.get(model, ident)
    assert found is not None
    return found


def _question(db: Session, thread: Thread) -> Post:
    return db.scalars(
        select(Post).where(Post.thread_id == thread.id, Post.is_question.is_(True))
    ).one()


def _open_items(db: Session, post: Post, queue: Queue = Queue.PENDING) -> list[QueueItem]:
    return list(
        db.scalars(
            select(QueueItem).where(
                QueueItem.post_id == post.id,
                QueueItem.queue == queue,
                QueueItem.status == ItemStatus.OPEN,
            )
        )
    )


def _held_audits(db: Session, post: Post) -> list[AuditLog]:
    return list(
        db.scalars(
            select(AuditLog).where(
                AuditLog.action == "post.held",
                AuditLog.target_type == "post",
                AuditLog.target_id == str(post.id),
            )
        )
    )


def assert_held(db: Session, post: Post, *reasons: str) -> QueueItem:
    """The post waits (kept, not shown), one pending item lists the reasons in words, and the
    audit log says it was held and why."""
    fresh(db)
    stored = _load(db, Post, post.id)
    assert stored is not None, "a held post must be kept"
    assert stored.visibility == Visibility.PENDING
    if stored.is_question:
        assert stored.thread.visibility == Visibility.PENDING
    [item] = _open_items(db, stored)
    assert item.user_id == stored.author_id
    assert item.brand_id == stored.thread.forum.brand_id
    for reason in reasons:
        assert reason in item.reasons, item.reasons
    [audit] = _held_audits(db, stored)
    assert audit.actor_id is None  # the filter acted, not a person
    assert audit.after == {"visibility": "pending"}
    for reason in reasons:
        assert reason in (audit.reason or "")
    return item


def assert_published(db: Session, post: Post) -> None:
    fresh(db)
    stored = _load(db, Post, post.id)
    assert stored is not None
    assert stored.visibility == Visibility.VISIBLE
    if stored.is_question:
        assert stored.thread.visibility == Visibility.VISIBLE
    assert _open_items(db, stored) == []
    assert _held_audits(db, stored) == []


def _links(count: int, seed: str) -> str:
    return "See " + " ".join(f"https://example.com/{seed}/page{index}" for index in range(count))


@pytest.fixture
def moderator(make_user: UserFactory) -> User:
    return make_user("mod_maria", role=Role.MODERATOR)


@pytest.fixture
def topic(qa: QA, make_user: UserFactory) -> Thread:
    """A visible thread by an established member, for answers."""
    return qa.ask(make_user("asker"), title="Which APN settings work abroad?")


@pytest.fixture
def newcomer(db: Session, qa: QA, make_user: UserFactory, moderator: User) -> User:
    """A trust-level-0 account whose first post a moderator approved."""
    user = make_user("newcomer", trust_level=0)
    first = _question(db, qa.ask(user, title="Hello from a brand new member"))
    [item] = _open_items(db, first)
    decisions.resolve(db, moderator, item, decisions.Decision.APPROVE)
    db.commit()
    return user


# --- new accounts ----------------------------------------------------------------------------


def test_first_post_of_a_new_account_waits_and_is_kept_until_approved(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory, moderator: User
) -> None:
    newbie = make_user("newbie", trust_level=0)
    thread = qa.ask(newbie, title="My phone shows no service")
    question = _question(db, thread)
    item = assert_held(db, question, FIRST_POST)
    fresh(db)
    assert _load(db, Forum, forum.id).thread_count == 0  # not counted while it waits

    # Kept, never lost: approving it publishes the very same post.
    decisions.resolve(db, moderator, _load(db, QueueItem, item.id), decisions.Decision.APPROVE)
    db.commit()
    fresh(db)
    assert _load(db, Post, question.id).visibility == Visibility.VISIBLE
    assert _load(db, Thread, thread.id).visibility == Visibility.VISIBLE
    assert _load(db, Forum, forum.id).thread_count == 1

    # An answer as a first post is held the same way.
    other = make_user("other_newbie", trust_level=0)
    answer = qa.answer(other, thread)
    assert_held(db, answer, FIRST_POST)


def test_trust_level_1_posts_appear_at_once(
    db: Session, qa: QA, make_user: UserFactory, topic: Thread
) -> None:
    member = make_user("member", trust_level=1)
    question = _question(db, qa.ask(member, title="Roaming charges in Spain"))
    assert_published(db, question)
    assert_published(db, qa.answer(member, topic))


def test_a_new_account_s_later_posts_appear_once_one_was_approved(
    db: Session, qa: QA, newcomer: User, topic: Thread
) -> None:
    assert_published(db, qa.answer(newcomer, topic))


# --- links, images, repeats, bursts ----------------------------------------------------------


@pytest.mark.parametrize(("level", "allowed"), [(0, 0), (1, 3), (2, 10)])
def test_links_beyond_the_trust_level_allowance_are_held_naming_the_count(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    newcomer: User,
    topic: Thread,
    level: int,
    allowed: int,
) -> None:
    author = newcomer if level == 0 else make_user(f"level{level}", trust_level=level)
    assert_published(db, qa.answer(author, topic, body=_links(allowed, "fine")))
    over = qa.answer(author, topic, body=_links(allowed + 1, "over"))
    assert_held(
        db,
        over,
        f"{allowed + 1} {'link' if allowed == 0 else 'links'} from a trust-level-{level} account"
        f" (limit {allowed})",
    )


def test_staff_may_post_any_number_of_links(
    db: Session, qa: QA, moderator: User, topic: Thread
) -> None:
    assert_published(db, qa.answer(moderator, topic, body=_links(25, "staff")))


def test_images_from_trust_level_0_are_held(
    db: Session, qa: QA, make_user: UserFactory, newcomer: User, topic: Thread
) -> None:
    body = "This is what I see: ![screenshot](/static/img/screen.png)"
    assert_held(db, qa.answer(newcomer, topic, body=body), IMAGES)
    assert_published(db, qa.answer(make_user("member"), topic, body=body))


def test_a_repeated_identical_post_is_held(
    db: Session, qa: QA, make_user: UserFactory, topic: Thread
) -> None:
    member = make_user("repeater")
    other_topic = qa.ask(make_user("asker2"), title="Voicemail does not work after update")
    text = "Restart the phone, then toggle airplane mode twice."
    assert_published(db, qa.answer(member, topic, body=text))
    # Case and spacing do not make a copy new.
    repeat = qa.answer(
        member, other_topic, body="restart the  phone,\nthen toggle AIRPLANE mode twice."
    )
    item = assert_held(db, repeat)
    assert any(re.fullmatch(r"repeats a post from \d+ minutes? ago", r) for r in item.reasons)
    # Someone else saying the same thing is not a repeat.
    assert_published(db, qa.answer(make_user("another"), other_topic, body=text))
    # A day later the same words are fine again.
    with time_machine.travel(utcnow() + timedelta(hours=25)):
        third = qa.ask(make_user("asker3"), title="Cannot receive calls since yesterday")
        assert_published(db, qa.answer(member, third, body=text))


def test_a_repeat_compares_with_the_posts_as_they_read_now(
    db: Session, qa: QA, make_user: UserFactory, topic: Thread
) -> None:
    # The filter looks up stored fingerprints: an edit changes what the post counts as.
    member = make_user("editor")
    other_topic = qa.ask(make_user("asker2"), title="Voicemail does not work after update")
    text = "Restart the phone, then toggle airplane mode twice."
    first = qa.answer(member, topic, body=text)
    thread_editing.edit_post(db, member, first, EditIn(body="Ask the shop to swap the SIM card."))
    db.commit()
    assert_published(db, qa.answer(member, other_topic, body=text))
    repeat = qa.answer(member, other_topic, body="ask the shop to swap the  SIM card.")
    item = assert_held(db, repeat)
    assert any(re.fullmatch(r"repeats a post from \d+ minutes? ago", r) for r in item.reasons)


def test_a_burst_of_posts_from_a_new_account_is_held(
    db: Session, qa: QA, make_user: UserFactory, newcomer: User, topic: Thread
) -> None:
    # The approved first post counts: posts two and three pass, the fourth is one too many.
    assert_published(db, qa.answer(newcomer, topic))
    assert_published(db, qa.answer(newcomer, topic))
    burst = qa.answer(newcomer, topic)
    assert_held(db, burst, "4 posts in 10 minutes from an account 0 hours old")

    # Established members may post as fast as they like.
    member = make_user("quick_member")
    for _ in range(5):
        assert_published(db, qa.answer(member, topic))


def test_bursts_only_count_for_accounts_younger_than_a_day(
    db: Session, qa: QA, newcomer: User, topic: Thread
) -> None:
    newcomer.created_at = utcnow() - timedelta(days=2)
    db.commit()
    for _ in range(4):
        assert_published(db, qa.answer(newcomer, topic))


def test_a_burst_reports_the_account_to_the_users_queue(
    db: Session, qa: QA, newcomer: User, topic: Thread
) -> None:
    """moderation.models.Queue.USERS: "accounts reported or caught by burst rules"."""
    for _ in range(3):
        qa.answer(newcomer, topic)
    fresh(db)
    items = list(
        db.scalars(
            select(QueueItem).where(
                QueueItem.queue == Queue.USERS,
                QueueItem.user_id == newcomer.id,
                QueueItem.status == ItemStatus.OPEN,
            )
        )
    )
    assert len(items) == 1
    assert any("posts in 10 minutes" in reason for reason in items[0].reasons), items[0].reasons


# --- blocked words and patterns --------------------------------------------------------------


def _pattern(
    db: Session,
    brand_id: int,
    text: str,
    *,
    mode: FilterMode = FilterMode.ENFORCE,
    regex: bool = False,
) -> BlockedPattern:
    db.commit()
    pattern = BlockedPattern(brand_id=brand_id, pattern=text, is_regex=regex, mode=mode)
    db.add(pattern)
    db.commit()
    return pattern


def _hits(db: Session, post: Post) -> list[FilterHit]:
    fresh(db)
    return list(db.scalars(select(FilterHit).where(FilterHit.post_id == post.id)))


def test_an_enforced_pattern_holds_the_post_and_says_which(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory, topic: Thread
) -> None:
    words = _pattern(db, forum.brand_id, "free crypto")
    regex = _pattern(db, forum.brand_id, r"win\s+\$\d+", regex=True)
    member = make_user("member")
    question = _question(db, qa.ask(member, body="Get FREE Crypto with every new contract"))
    assert_held(db, question, "matched blocked pattern “free crypto”")
    [hit] = _hits(db, question)
    assert (hit.pattern_id, hit.excerpt, hit.enforced) == (words.id, "FREE Crypto", True)

    answer = qa.answer(member, topic, body="Reply now and WIN   $500 instantly")
    assert_held(db, answer, r"matched blocked pattern “win\s+\$\d+”")
    [hit] = _hits(db, answer)
    assert (hit.pattern_id, hit.excerpt, hit.enforced) == (regex.id, "WIN   $500", True)

    # Another brand's patterns do not apply here.
    globex = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(globex)
    db.commit()
    _pattern(db, globex.id, "roaming bundle")
    assert_published(db, qa.answer(member, topic, body="The roaming bundle fixed it for me"))


def test_a_log_only_pattern_publishes_and_records_what_it_would_have_caught(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory, as_role: RoleClient
) -> None:
    pattern = _pattern(db, forum.brand_id, "cheap phones", mode=FilterMode.LOG_ONLY)
    question = _question(db, qa.ask(make_user("member"), body="Where can I find Cheap Phones?"))
    assert_published(db, question)
    [hit] = _hits(db, question)
    assert (hit.pattern_id, hit.excerpt, hit.enforced) == (pattern.id, "Cheap Phones", False)

    admin, _user = as_role(Role.ADMIN)
    page = admin.get("/admin/brands/acme/moderation")
    assert page.status_code == 200
    assert "What log-only filters would have caught" in page.text
    assert "<code>Cheap Phones</code>" in page.text
    assert f"#{question.id}" in page.text
    row = page.text.split("<code>cheap phones</code>", 1)[1].split("</tr>", 1)[0]
    assert "<td>1</td>" in row  # one match counted for the pattern


def test_admins_add_switch_and_remove_patterns(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory, as_role: RoleClient
) -> None:
    admin, admin_user = as_role(Role.ADMIN)
    assert admin_user is not None
    token = csrf_token(admin, "/admin/brands/acme/moderation")
    added = admin.post(
        "/admin/brands/acme/patterns",
        data={"pattern": "  free crypto ", "mode": "log_only", "csrf_token": token},
        follow_redirects=False,
    )
    assert added.status_code == 303
    assert added.headers["location"] == "/admin/brands/acme/moderation"
    fresh(db)
    pattern = db.scalars(select(BlockedPattern)).one()
    assert (pattern.brand_id, pattern.pattern, pattern.is_regex, pattern.mode) == (
        forum.brand_id,
        "free crypto",
        False,
        FilterMode.LOG_ONLY,
    )
    assert pattern.created_by_id == admin_user.id
    page = admin.get("/admin/brands/acme/moderation").text
    assert "<code>free crypto</code>" in page
    assert "Log only" in page

    member = make_user("member")
    assert_published(db, _question(db, qa.ask(member, body="free crypto for everyone")))

    switched = admin.post(
        f"/admin/patterns/{pattern.id}/enforce", data={"csrf_token": token}, follow_redirects=False
    )
    assert switched.status_code == 303
    fresh(db)
    assert _load(db, BlockedPattern, pattern.id).mode == FilterMode.ENFORCE
    held = _question(db, qa.ask(member, body="more free crypto for everyone"))
    assert_held(db, held, "matched blocked pattern “free crypto”")

    assert (
        admin.post(f"/admin/patterns/{pattern.id}/explode", data={"csrf_token": token}).status_code
        == 404
    )
    removed = admin.post(
        f"/admin/patterns/{pattern.id}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert removed.status_code == 303
    fresh(db)
    assert db.scalars(select(BlockedPattern)).all() == []
    assert_published(db, _question(db, qa.ask(member, body="free crypto, third time")))

    actions_logged = [
        row.action
        for row in db.scalars(
            select(AuditLog).where(AuditLog.action.startswith("filter.")).order_by(AuditLog.id)
        )
    ]
    assert actions_logged == ["filter.added", "filter.enforce", "filter.delete"]
    assert all(
        row.actor_id == admin_user.id
        for row in db.scalars(select(AuditLog).where(AuditLog.action.startswith("filter.")))
    )


@pytest.mark.parametrize("role", [Role.MEMBER, Role.MODERATOR, Role.AGENT])
def test_only_admins_may_see_or_change_patterns(
    db: Session, forum: Forum, as_role: RoleClient, role: Role
) -> None:
    pattern = _pattern(db, forum.brand_id, "free crypto", mode=FilterMode.LOG_ONLY)
    browser, _user = as_role(role)
    token = csrf_token(browser, "/")
    assert browser.get("/admin/brands/acme/moderation").status_code == 403
    added = browser.post(
        "/admin/brands/acme/patterns", data={"pattern": "spam", "csrf_token": token}
    )
    assert added.status_code == 403
    for action in ("enforce", "delete"):
        response = browser.post(
            f"/admin/patterns/{pattern.id}/{action}", data={"csrf_token": token}
        )
        assert response.status_code == 403
    settings_change = browser.post(
        "/admin/brands/acme/moderation",
        data={"flag_hide_weight": "1", "code_of_conduct": "anything goes", "csrf_token": token},
    )
    assert settings_change.status_code == 403
    fresh(db)
    [stored] = db.scalars(select(BlockedPattern)).all()
    assert (stored.pattern, stored.mode) == ("free crypto", FilterMode.LOG_ONLY)
    brand = _load(db, Brand, forum.brand_id)
    assert (brand.flag_hide_weight, brand.code_of_conduct) == (3.0, "")


def test_pattern_changes_need_the_csrf_token(
    db: Session, forum: Forum, as_role: RoleClient
) -> None:
    pattern = _pattern(db, forum.brand_id, "free crypto")
    admin, _user = as_role(Role.ADMIN)
    assert admin.post("/admin/brands/acme/patterns", data={"pattern": "spam"}).status_code == 403
    assert admin.post(f"/admin/patterns/{pattern.id}/delete").status_code == 403
    fresh(db)
    assert [p.pattern for p in db.scalars(select(BlockedPattern))] == ["free crypto"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"pattern": "([unclosed", "is_regex": "1"},
            "That is not a valid regular expression: unterminated character set at position 1.",
        ),
        (
            {"pattern": r"(spam)\s+\1", "is_regex": "1"},
            "The filters cannot run this regular expression (invalid escape sequence: \\1)",
        ),
        (
            {"pattern": r"(?<!no )crypto", "is_regex": "1"},
            "back-references and look-ahead or look-behind are not supported",
        ),
        ({"pattern": "   "}, "Write the word, phrase or pattern."),
        ({"pattern": "spam", "mode": "shout"}, "Choose one of the offered options."),
    ],
)
def test_invalid_patterns_are_refused_clearly_and_change_nothing(
    db: Session, forum: Forum, as_role: RoleClient, fields: dict[str, str], message: str
) -> None:
    admin, _user = as_role(Role.ADMIN)
    token = csrf_token(admin, "/admin/brands/acme/moderation")
    response = admin.post("/admin/brands/acme/patterns", data=fields | {"csrf_token": token})
    assert response.status_code == 422
    assert message in response.text
    fresh(db)
    assert db.scalars(select(BlockedPattern)).all() == []
    assert db.scalars(select(AuditLog).where(AuditLog.action == "filter.added")).all() == []


EVIL = r"^(a+)+$"  # catastrophic backtracking: Python's re took ~8 s on 27 characters


def test_a_catastrophic_pattern_runs_in_linear_time(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    as_role: RoleClient,
    topic: Thread,
) -> None:
    admin, _user = as_role(Role.ADMIN)
    token = csrf_token(admin, "/admin/brands/acme/moderation")
    added = admin.post(
        "/admin/brands/acme/patterns",
        data={"pattern": EVIL, "is_regex": "1", "csrf_token": token},
        follow_redirects=False,
    )
    assert added.status_code == 303  # RE2 runs it safely, so it may be saved
    member = make_user("member")
    for text in ("a" * 27 + "!", "a" * 40_000 + "!"):
        started = time.monotonic()
        screening = filters.screen(db, member, forum, text)
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, f"screening {len(text)} characters took {elapsed:.1f} s"
        assert not screening.held
    started = time.monotonic()
    published = qa.answer(member, topic, body="a" * 27 + "!")
    assert time.monotonic() - started < 5.0  # the whole post, with its other work
    assert_published(db, published)
    # ...and it still catches what it describes, case-insensitively as before.
    assert_held(db, qa.answer(member, topic, body="A" * 30), f"matched blocked pattern “{EVIL}”")


def test_stored_patterns_re2_cannot_run_are_skipped_and_logged(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    as_role: RoleClient,
    topic: Thread,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Saved before patterns were checked (the page refuses them now). Unique per test: each
    # process says once which stored pattern it skips.
    text = rf"(spam)\s+\1|{uuid.uuid4().hex}"
    unusable = _pattern(db, forum.brand_id, text, regex=True)
    _pattern(db, forum.brand_id, "free crypto")
    member = make_user("member")
    with caplog.at_level(logging.WARNING, logger="moderation.filters"):
        assert_published(db, qa.answer(member, topic, body="spam spam, lovely spam"))
        held = qa.answer(member, topic, body="spam spam and free crypto")
    assert_held(db, held, "matched blocked pattern “free crypto”")
    assert [hit.pattern_id for hit in _hits(db, held)] != [unusable.id]
    assert [record.getMessage() for record in caplog.records if text in record.getMessage()] == [
        f"blocked pattern “{text}” is skipped: RE2 cannot run it (invalid escape sequence: \\1)"
    ]  # once, not once per post
    admin, _user = as_role(Role.ADMIN)
    page = admin.get("/admin/brands/acme/moderation").text
    assert "Not in use:" in page and "invalid escape sequence" in page


# --- premoderated forums ---------------------------------------------------------------------


def test_a_premoderated_forum_holds_every_member_post(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory, moderator: User
) -> None:
    tablets = Forum(brand_id=forum.brand_id, slug="tablets", name="Tablets", description="")
    db.add(tablets)
    forum.moderation_policy = ModerationPolicy.PREMODERATED
    db.commit()
    regular = make_user("regular", trust_level=3)

    held = _question(db, qa.ask(regular, title="Battery drains overnight"))
    assert_held(db, held, PREMODERATED)
    # Staff posts are not screened; members' answers to them are held too.
    announcement = qa.ask(moderator, title="Scheduled maintenance on Sunday")
    assert_published(db, _question(db, announcement))
    assert_held(db, qa.answer(regular, announcement), PREMODERATED)

    # Other forums of the brand keep their own policy.
    db.commit()
    elsewhere = threads.ask(
        db,
        regular,
        tablets,
        AskIn(title="Tablet will not charge past 80%", body="It stops at 80 percent."),
        locale="en",
    )
    db.commit()
    assert_published(db, _question(db, elsewhere))


# --- the moderators' view --------------------------------------------------------------------


def test_the_pending_queue_page_shows_each_reason_in_words(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    as_role: RoleClient,
    topic: Thread,
) -> None:
    _pattern(db, forum.brand_id, "free crypto")
    newbie = make_user("newbie", trust_level=0)
    first = qa.ask(newbie, title="Help with my voicemail PIN")
    member = make_user("member")
    linked = qa.answer(member, topic, body=_links(4, "spam") + " free crypto")

    moderator, _user = as_role(Role.MODERATOR)
    page = moderator.get("/b/acme/mod/pending")
    assert page.status_code == 200
    assert FIRST_POST in page.text
    assert "Help with my voicemail PIN" in page.text
    assert "4 links from a trust-level-1 account (limit 3)" in page.text
    assert "matched blocked pattern “free crypto”" in page.text
    assert f"#post-{linked.id}" in page.text
    assert f"#post-{_question(db, first).id}" in page.text

    visitor, _member = as_role(Role.MEMBER)
    assert visitor.get("/b/acme/mod/pending").status_code == 403


# --- the code of conduct ---------------------------------------------------------------------


def test_the_code_of_conduct_shows_the_brand_s_text_edited_by_admins(
    db: Session, forum: Forum, client: TestClient, as_role: RoleClient
) -> None:
    default = client.get("/b/acme/conduct")
    assert default.status_code == 200
    assert "Be kind, stay on topic" in default.text

    admin, admin_user = as_role(Role.ADMIN)
    assert admin_user is not None
    token = csrf_token(admin, "/admin/brands/acme/moderation")
    text = "## House rules\n\nNo **selling** phones here.\n\n<script>alert(1)</script>"
    saved = admin.post(
        "/admin/brands/acme/moderation",
        data={"flag_hide_weight": "4", "code_of_conduct": text, "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    page = client.get("/b/acme/conduct")
    assert "House rules" in page.text
    assert "<strong>selling</strong> phones here" in page.text
    assert "<script>alert(1)" not in page.text
    assert "Be kind, stay on topic" not in page.text
    fresh(db)
    brand = _load(db, Brand, forum.brand_id)
    assert (brand.code_of_conduct, brand.flag_hide_weight) == (text, 4.0)
    [audit] = db.scalars(
        select(AuditLog).where(AuditLog.action == "brand.moderation_settings")
    ).all()
    assert audit.actor_id == admin_user.id
    assert "House rules" in admin.get("/admin/brands/acme/moderation").text

    refused = admin.post(
        "/admin/brands/acme/moderation",
        data={"flag_hide_weight": "lots", "code_of_conduct": "Nothing", "csrf_token": token},
    )
    assert refused.status_code == 422
    fresh(db)
    assert _load(db, Brand, forum.brand_id).code_of_conduct == text
