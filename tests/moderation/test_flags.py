"""Flags: who may flag what, weights by trust level, hiding at a brand's threshold, one queue
item per target, and flaggers hearing the outcome."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community import voting
from community.core.audit import AuditLog
from community.core.errors import Conflict, FormErrors, NotFound, PermissionDenied
from community.core.models import (
    Brand,
    Forum,
    Notification,
    NotificationKind,
    Post,
    Role,
    Thread,
    User,
    Visibility,
)
from community.core.notifications import describe
from moderation import actions, decisions, queue
from moderation.models import Flag, FlagReason, FlagStatus, ItemStatus, Queue, QueueItem
from tests.conftest import QA, csrf_token, fresh

UserFactory = Callable[..., User]


def _items(db: Session, post: Post) -> list[QueueItem]:
    fresh(db)
    return list(db.scalars(select(QueueItem).where(QueueItem.post_id == post.id)))


def _answer_of(qa: QA, make_user: UserFactory) -> Post:
    asker, helper = make_user(), make_user("helper")
    thread = qa.ask(asker)
    return qa.answer(helper, thread, "Buy cheap watches at my shop, best prices.")


def _flag(db: Session, flagger: User, post: Post, reason: FlagReason = FlagReason.SPAM) -> Flag:
    created = queue.flag(db, flagger, post, reason, note="see this")
    db.commit()
    return created


def test_flag_weight_grows_with_the_flaggers_trust_level(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    post = _answer_of(qa, make_user)
    db.scalars(select(Brand)).one().flag_hide_weight = 100  # keep it up while we count
    db.commit()
    weights = {}
    for level in (0, 1, 2, 3):
        flagger = make_user(f"level{level}", trust_level=level)
        weights[level] = _flag(db, flagger, post, FlagReason.OFF_TOPIC).weight
    moderator = make_user("modsam", role=Role.MODERATOR)
    weights[9] = _flag(db, moderator, post, FlagReason.OFF_TOPIC).weight
    assert weights[0] < weights[1] < weights[2] < weights[3] < weights[9]


def test_one_open_flag_per_member_and_post(db: Session, qa: QA, make_user: UserFactory) -> None:
    post = _answer_of(qa, make_user)
    flagger = make_user("flagger")
    _flag(db, flagger, post, FlagReason.OFFENSIVE)
    with pytest.raises(Conflict):
        queue.flag(db, flagger, post, FlagReason.SPAM)
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Flag)) == 1


def test_members_cannot_flag_their_own_or_invisible_posts(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    post = _answer_of(qa, make_user)
    author = db.get(User, post.author_id)
    assert author is not None
    with pytest.raises(PermissionDenied):
        queue.flag(db, author, post, FlagReason.SPAM)
    db.rollback()
    moderator = make_user("modsam", role=Role.MODERATOR)
    actions.set_post_visibility(db, moderator, post, Visibility.HIDDEN, reason="checking")
    db.commit()
    with pytest.raises(NotFound):
        queue.flag(db, make_user("other"), post, FlagReason.SPAM)


def test_other_needs_a_note(db: Session, qa: QA, make_user: UserFactory) -> None:
    post = _answer_of(qa, make_user)
    with pytest.raises(FormErrors):
        queue.flag(db, make_user("flagger"), post, FlagReason.OTHER, note="  ")


def test_many_flags_make_one_queue_item_listing_every_reason(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    post = _answer_of(qa, make_user)
    for index in range(3):
        _flag(db, make_user(f"flagger{index}", trust_level=0), post, FlagReason.OFF_TOPIC)
    items = _items(db, post)
    assert len(items) == 1
    item = items[0]
    assert item.queue == Queue.FLAGGED
    assert item.flag_weight == pytest.approx(1.5)
    assert len(item.reasons) == 3
    assert all("flagger" in reason and "trust level 0" in reason for reason in item.reasons)


def test_content_hides_when_the_brand_threshold_is_reached_and_says_why(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    post = _answer_of(qa, make_user)
    brand = db.scalars(select(Brand)).one()
    brand.flag_hide_weight = 2.0
    db.commit()
    thread = db.get(Thread, post.thread_id)
    assert thread is not None
    replies_before = thread.reply_count

    _flag(db, make_user("first"), post)  # weight 1: still up
    fresh(db)
    assert db.get(Post, post.id).visibility == Visibility.VISIBLE  # type: ignore[union-attr]

    _flag(db, make_user("second"), post)  # weight 2: hidden pending review
    fresh(db)
    stored = db.get(Post, post.id)
    assert stored is not None and stored.visibility == Visibility.HIDDEN
    assert db.get(Thread, post.thread_id).reply_count == replies_before - 1  # type: ignore[union-attr]
    item = _items(db, post)[0]
    assert item.auto_hidden
    assert any("flag weight 2 reached 2" in reason for reason in item.reasons)
    audit = db.scalars(select(AuditLog).where(AuditLog.action == "post.auto_hidden")).one()
    assert audit.actor_id is None and audit.target_id == str(post.id)
    assert audit.before == {"visibility": "visible"} and audit.after == {"visibility": "hidden"}


def test_a_trust_level_3_spam_flag_hides_at_once(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    post = _answer_of(qa, make_user)
    _flag(db, make_user("regular", trust_level=3), post, FlagReason.SPAM)
    fresh(db)
    assert db.get(Post, post.id).visibility == Visibility.HIDDEN  # type: ignore[union-attr]
    assert any("spam flag from a trust-level-3" in reason for reason in _items(db, post)[0].reasons)


def test_a_trust_level_2_spam_flag_alone_does_not_hide(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    post = _answer_of(qa, make_user)
    _flag(db, make_user("member2", trust_level=2), post, FlagReason.SPAM)
    fresh(db)
    assert db.get(Post, post.id).visibility == Visibility.VISIBLE  # type: ignore[union-attr]


def test_flaggers_hear_the_outcome(db: Session, qa: QA, make_user: UserFactory) -> None:
    post = _answer_of(qa, make_user)
    upheld_by = make_user("upheld")
    _flag(db, upheld_by, post)
    moderator = make_user("modsam", role=Role.MODERATOR)
    item = _items(db, post)[0]
    decisions.resolve(db, moderator, item, decisions.Decision.DELETE, reason="advertising")
    db.commit()
    fresh(db)
    flag = db.scalars(select(Flag)).one()
    assert flag.status == FlagStatus.UPHELD and flag.resolved_at is not None
    notices = list(
        db.scalars(
            select(Notification).where(
                Notification.user_id == upheld_by.id,
                Notification.kind == NotificationKind.MODERATION,
            )
        )
    )
    assert len(notices) == 1 and "upheld" in describe(notices[0])
    author_notice = db.scalars(
        select(Notification).where(
            Notification.user_id == post.author_id,
            Notification.kind == NotificationKind.MODERATION,
        )
    ).one()
    assert "advertising" in describe(author_notice)


def test_a_rejected_flag_is_reported_as_such(db: Session, qa: QA, make_user: UserFactory) -> None:
    post = _answer_of(qa, make_user)
    flagger = make_user("flagger")
    _flag(db, flagger, post, FlagReason.OFF_TOPIC)
    moderator = make_user("modsam", role=Role.MODERATOR)
    decisions.resolve(db, moderator, _items(db, post)[0], decisions.Decision.APPROVE)
    db.commit()
    fresh(db)
    assert db.scalars(select(Flag)).one().status == FlagStatus.REJECTED
    assert db.get(Post, post.id).visibility == Visibility.VISIBLE  # type: ignore[union-attr]
    notice = db.scalars(select(Notification).where(Notification.user_id == flagger.id)).one()
    assert "left the post up" in describe(notice)


def test_flagging_through_the_page_and_seeing_the_outcome(
    db: Session, qa: QA, make_user: UserFactory, as_role: Callable[..., tuple]
) -> None:
    post = _answer_of(qa, make_user)
    browser, _member = as_role(Role.MEMBER)
    token = csrf_token(browser, f"/t/{post.thread_id}")
    page = browser.get(f"/t/{post.thread_id}")
    # The thread page carries the menu; its form comes when the menu is opened.
    assert f'hx-get="/posts/{post.id}/flag"' in page.text
    assert f'action="/posts/{post.id}/flag"' not in page.text
    menu = browser.get(f"/posts/{post.id}/flag", headers={"HX-Request": "true"})
    assert menu.status_code == 200
    assert f'action="/posts/{post.id}/flag"' in menu.text
    assert "Offensive or abusive" in menu.text  # the reasons, in words
    assert "<html" not in menu.text  # a fragment for the menu, not a page

    no_csrf = browser.post(f"/posts/{post.id}/flag", data={"reason": "spam"})
    assert no_csrf.status_code == 403
    bad = browser.post(f"/posts/{post.id}/flag", data={"reason": "because", "csrf_token": token})
    assert bad.status_code == 422
    assert db.scalar(select(func.count()).select_from(Flag)) == 0

    sent = browser.post(
        f"/posts/{post.id}/flag",
        data={"reason": "spam", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert sent.status_code == 200
    again = browser.post(f"/posts/{post.id}/flag", data={"reason": "spam", "csrf_token": token})
    assert again.status_code == 409
    fresh(db)
    assert db.scalar(select(func.count()).select_from(Flag)) == 1

    mine = browser.get("/account/flags")
    assert mine.status_code == 200
    assert f"#{post.id}" in mine.text and "waiting for a moderator" in mine.text


def test_duplicate_flags_need_the_original_thread(
    db: Session, qa: QA, make_user: UserFactory, as_role: Callable[..., tuple]
) -> None:
    asker = make_user("asker")
    original = qa.ask(asker, title="How do I set up voicemail on my phone?")
    copy = qa.ask(make_user("copier"), title="Setting up voicemail on the phone")
    question = db.scalars(
        select(Post).where(Post.thread_id == copy.id, Post.is_question.is_(True))
    ).one()
    browser, _member = as_role(Role.MEMBER)
    token = csrf_token(browser, f"/t/{copy.id}")
    missing = browser.post(
        f"/posts/{question.id}/flag", data={"reason": "duplicate", "csrf_token": token}
    )
    assert missing.status_code == 422
    linked = browser.post(
        f"/posts/{question.id}/flag",
        data={
            "reason": "duplicate",
            "note": f"http://testserver/t/{original.id}",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert linked.status_code == 303
    fresh(db)
    assert db.scalars(select(Flag)).one().duplicate_of_id == original.id


def test_the_json_api_flags_with_the_same_rules(
    db: Session, qa: QA, make_user: UserFactory, as_role: Callable[..., tuple]
) -> None:
    post = _answer_of(qa, make_user)
    browser, _member = as_role(Role.MEMBER)
    token = csrf_token(browser, f"/t/{post.thread_id}")
    headers = {"X-CSRF-Token": token}
    created = browser.post(
        f"/api/v1/posts/{post.id}/flags", json={"reason": "offensive"}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "open"
    twice = browser.post(
        f"/api/v1/posts/{post.id}/flags", json={"reason": "offensive"}, headers=headers
    )
    assert twice.status_code == 409
    unknown = browser.post(
        f"/api/v1/posts/{post.id}/flags", json={"reason": "nonsense"}, headers=headers
    )
    assert unknown.status_code == 422
    mine = browser.get("/api/v1/me/flags").json()
    assert [flag["post_id"] for flag in mine] == [post.id]


def test_members_report_accounts_into_the_users_queue(
    db: Session, qa: QA, make_user: UserFactory, as_role: Callable[..., tuple]
) -> None:
    qa.ask(make_user("troll"))
    browser, _member = as_role(Role.MEMBER)
    other, _second = as_role(Role.MEMBER)
    for client in (browser, other):
        token = csrf_token(client, "/u/troll")
        sent = client.post(
            "/u/troll/report",
            data={"note": "sends rude private messages", "csrf_token": token},
            follow_redirects=False,
        )
        assert sent.status_code == 303
    fresh(db)
    items = list(db.scalars(select(QueueItem).where(QueueItem.queue == Queue.USERS)))
    assert len(items) == 1 and len(items[0].reasons) == 2
    assert items[0].status == ItemStatus.OPEN

    moderator = make_user("modsam", role=Role.MODERATOR)
    with pytest.raises(FormErrors):  # an account report has no post to hide
        decisions.resolve(db, moderator, items[0], decisions.Decision.HIDE)
    db.rollback()
    decisions.resolve(db, moderator, items[0], decisions.Decision.SPAM, reason="spammer")
    db.commit()
    fresh(db)
    troll = db.scalars(select(User).where(User.username == "troll")).one()
    assert troll.suspended_until is not None
    thread = db.scalars(select(Thread).where(Thread.author_id == troll.id)).one()
    assert thread.visibility == Visibility.DELETED
    assert db.scalars(select(Forum)).one().thread_count == 0


# --- the flagged queue's actions -------------------------------------------------------------


def _flagged_accepted_answer(
    db: Session, qa: QA, make_user: UserFactory, name: str
) -> tuple[Post, QueueItem]:
    """An accepted answer a member flagged: in the flagged queue, still visible."""
    asker = make_user(f"asker_{name}")
    thread = qa.ask(asker, title=f"How do I reset the router, {name}?")
    answer = qa.answer(make_user(f"helper_{name}"), thread, f"Hold reset for 10 s ({name}).")
    voting.accept(db, asker, answer.id)
    db.commit()
    _flag(db, make_user(f"flagger_{name}"), answer, FlagReason.OFF_TOPIC)
    [item] = _items(db, answer)
    assert item.queue == Queue.FLAGGED
    return answer, item


def _state(db: Session, post: Post, item: QueueItem) -> tuple[Visibility, ItemStatus]:
    fresh(db)
    stored_post, stored_item = db.get(Post, post.id), db.get(QueueItem, item.id)
    assert stored_post is not None and stored_item is not None
    return stored_post.visibility, stored_item.status


def test_the_flagged_queue_names_its_actions_and_r_dismisses_the_flags(
    db: Session, qa: QA, make_user: UserFactory, as_role: Callable[..., tuple]
) -> None:
    """ "Reject" deleted a flagged accepted answer: here it keeps the post and drops the flags."""
    answer, item = _flagged_accepted_answer(db, qa, make_user, "one")
    browser, _moderator = as_role(Role.MODERATOR)
    page = browser.get("/b/acme/mod/flagged").text
    buttons = re.findall(r'data-key="(\w)"[^>]*>\s*([^<]+?)\s*<kbd>', page)
    assert buttons == [
        ("r", "Dismiss flags"),
        ("h", "Hide post"),
        ("d", "Remove post"),
        ("s", "Spam: remove post and suspend"),
    ]
    assert ">Reject" not in page
    assert (
        "Keys: j / k next and previous, r Dismiss flags, h Hide post, d Remove post (asks first), "
        "s Spam: remove post and suspend (asks first), x select." in page
    )
    first_option = re.search(
        r'<select id="bulk-decision" name="decision">\s*<option value="(\w+)">([^<]+)<', page
    )
    assert first_option and first_option.groups() == ("approve", "Dismiss flags")
    assert page.count("hx-confirm=") == 2  # remove and spam ask in the browser

    token = csrf_token(browser, "/b/acme/mod/flagged")
    # The old "reject" is not a flagged-queue action any more: nothing is deleted.
    refused = browser.post(f"/mod/items/{item.id}/reject", data={"csrf_token": token})
    assert refused.status_code == 422
    assert _state(db, answer, item) == (Visibility.VISIBLE, ItemStatus.OPEN)

    kept = browser.post(
        f"/mod/items/{item.id}/approve", data={"csrf_token": token}, follow_redirects=False
    )
    assert kept.status_code == 303
    assert _state(db, answer, item) == (Visibility.VISIBLE, ItemStatus.RESOLVED)
    assert db.scalars(select(Flag.status)).all() == [FlagStatus.REJECTED]
    assert "Done: flags dismissed." in browser.get(kept.headers["location"]).text


def test_removing_a_flagged_post_asks_first_with_and_without_javascript(
    db: Session, qa: QA, make_user: UserFactory, as_role: Callable[..., tuple]
) -> None:
    answer, item = _flagged_accepted_answer(db, qa, make_user, "two")
    browser, _moderator = as_role(Role.MODERATOR)
    token = csrf_token(browser, "/b/acme/mod/flagged")
    url = f"/mod/items/{item.id}/delete"
    # A plain form post (no JavaScript): a confirmation page, nothing removed yet.
    asked = browser.post(url, data={"csrf_token": token, "reason": ""})
    assert asked.status_code == 200
    assert "Remove this post for everyone?" in asked.text
    assert '<input type="hidden" name="confirm" value="1">' in asked.text
    assert "Hold reset for 10 s (two)." in asked.text
    assert _state(db, answer, item) == (Visibility.VISIBLE, ItemStatus.OPEN)
    # htmx without the confirmation (hx-confirm sends confirm=1): the question, in place.
    fragment = browser.post(url, data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith(f'<li class="card mod-item" id="item-{item.id}"')
    assert "<html" not in fragment.text
    assert _state(db, answer, item) == (Visibility.VISIBLE, ItemStatus.OPEN)

    done = browser.post(
        url,
        data={"csrf_token": token, "confirm": "1", "reason": "not an answer"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert _state(db, answer, item) == (Visibility.DELETED, ItemStatus.RESOLVED)
    assert "Done: post removed." in browser.get(done.headers["location"]).text


def test_a_bulk_removal_of_flagged_posts_asks_first(
    db: Session, qa: QA, make_user: UserFactory, as_role: Callable[..., tuple]
) -> None:
    answer, item = _flagged_accepted_answer(db, qa, make_user, "three")
    browser, _moderator = as_role(Role.MODERATOR)
    form = {
        "csrf_token": csrf_token(browser, "/b/acme/mod/flagged"),
        "decision": "delete",
        "items": [str(item.id)],
        "back": "/b/acme/mod/flagged",
    }
    asked = browser.post("/mod/items/bulk", data=form)
    assert asked.status_code == 200
    assert "Remove this post for everyone?" in asked.text
    assert "This applies to 1 selected item:" in asked.text
    assert _state(db, answer, item) == (Visibility.VISIBLE, ItemStatus.OPEN)
    done = browser.post("/mod/items/bulk", data=form | {"confirm": "1"}, follow_redirects=False)
    assert done.status_code == 303
    assert _state(db, answer, item) == (Visibility.DELETED, ItemStatus.RESOLVED)


def test_the_flag_form_is_a_page_of_its_own_without_javascript(
    db: Session, qa: QA, make_user: UserFactory, as_role: Callable[..., tuple]
) -> None:
    post = _answer_of(qa, make_user)
    browser, member = as_role(Role.MEMBER)
    page = browser.get(f"/posts/{post.id}/flag")
    assert page.status_code == 200
    assert "<html" in page.text and "Buy cheap watches" in page.text
    token = csrf_token(browser, f"/posts/{post.id}/flag")
    sent = browser.post(
        f"/posts/{post.id}/flag",
        data={"reason": "spam", "csrf_token": token},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/t/{post.thread_id}#post-{post.id}"

    own = qa.answer(member, db.get(Thread, post.thread_id), "My own answer, not to be flagged.")
    assert browser.get(f"/posts/{own.id}/flag").status_code == 403
    moderator = make_user("tidier", role=Role.MODERATOR)
    actions.set_post_visibility(db, moderator, post, Visibility.HIDDEN, reason="spam")
    db.commit()
    assert browser.get(f"/posts/{post.id}/flag").status_code == 404
    browser.cookies.clear()
    visitor = browser.get(f"/posts/{own.id}/flag", follow_redirects=False)
    assert visitor.status_code == 303 and "/login" in visitor.headers["location"]
