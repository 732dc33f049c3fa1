"""The deflection holdout (kb.ask_sessions): a stable share of visitors get no suggestions from
the ask form's endpoint, every signed-in visitor's session is stored with its group, posting a
question ends it, and only admins set the share (CSRF, bounds, nothing changed when refused)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community.core.audit import AuditLog
from community.core.db import make_session_factory
from community.core.errors import FormErrors
from community.core.models import Brand, Forum, Role, Thread, User
from community.core.settings import Settings
from community.core.viewcount import viewer_key
from community.worker import Worker
from kb.ask_sessions import (
    HoldoutForm,
    assigned_arm,
    do_set_holdout,
    holdout_percent,
    record_question,
    visit,
)
from kb.models import AskArm, AskSession
from tests.conftest import QA, csrf_token, drain, fresh, log_in

UserFactory = Callable[..., User]
AsRole = Callable[[Role | None], tuple[TestClient, User | None]]
PAGE = "/admin/brands/acme/search"
SAVE = "/admin/brands/acme/search/holdout"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _member_key(user: User) -> str:
    return viewer_key(user_id=user.id, session_token=None, ip=None)


# --- assignment ---------------------------------------------------------------------------------


def test_the_assignment_is_stable_and_near_the_configured_share() -> None:
    """2,000 synthetic visitor keys. The hash is fixed, so the counts are too; the bounds say
    what a fair split must meet: within 4 binomial standard deviations of the expected count
    (10%: 200 ± 4·√(2000·0.1·0.9) = 200 ± 54; 50%: 1000 ± 4·√(2000·0.25) = 1000 ± 90)."""
    keys = [viewer_key(user_id=n, session_token=None, ip=None) for n in range(2000)]
    at_ten = [assigned_arm(7, key, 10) for key in keys]
    assert at_ten == [assigned_arm(7, key, 10) for key in keys]  # the same every time
    assert 146 <= at_ten.count(AskArm.HOLDOUT) <= 254
    at_half = [assigned_arm(7, key, 50) for key in keys]
    assert 910 <= at_half.count(AskArm.HOLDOUT) <= 1090
    # Raising the share only adds visitors to the holdout: nobody held back at 10% gets
    # suggestions at 50% (the bucket is compared with the share).
    assert all(
        wide == AskArm.HOLDOUT
        for narrow, wide in zip(at_ten, at_half, strict=True)
        if narrow == AskArm.HOLDOUT
    )
    assert {assigned_arm(7, key, 0) for key in keys} == {AskArm.SUGGESTIONS}
    # The brand is in the hash: another brand holds back other visitors.
    elsewhere = [assigned_arm(8, key, 10) for key in keys]
    assert elsewhere != at_ten
    assert 146 <= elsewhere.count(AskArm.HOLDOUT) <= 254


# --- sessions (service) -------------------------------------------------------------------------


def test_typing_in_one_go_writes_the_session_once(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    """Requests come every few hundred milliseconds while a title is typed: the last activity
    moves on only once a minute has passed since the stored one."""
    brand, key = forum.brand, _member_key(make_user("typist"))
    visit(db, brand, key, signed_in=True, now=T0)
    db.commit()
    for tenths in range(1, 200, 3):  # 20 s of typing
        visit(db, brand, key, signed_in=True, now=T0 + timedelta(milliseconds=100 * tenths))
        assert not db.dirty
    visit(db, brand, key, signed_in=True, now=T0 + timedelta(seconds=61))
    db.commit()
    [session] = db.scalars(select(AskSession)).all()
    assert session.last_activity_at == T0 + timedelta(seconds=61)


def test_a_session_lasts_while_requests_come_within_30_minutes(
    db: Session, forum: Forum, qa: QA, make_user: UserFactory
) -> None:
    brand, asker = forum.brand, make_user("asker")
    key = _member_key(asker)
    arm = visit(db, brand, key, signed_in=True, now=T0)
    visit(db, brand, key, signed_in=True, now=T0 + timedelta(minutes=29))
    # 30 minutes after the last request the session is over: the next request opens another.
    visit(db, brand, key, signed_in=True, now=T0 + timedelta(minutes=59))
    visit(db, brand, key, signed_in=True, now=T0 + timedelta(minutes=88))
    db.commit()
    sessions = db.scalars(select(AskSession).order_by(AskSession.number)).all()
    assert [(s.number, s.started_at, s.last_activity_at) for s in sessions] == [
        (1, T0, T0 + timedelta(minutes=29)),
        (2, T0 + timedelta(minutes=59), T0 + timedelta(minutes=88)),
    ]
    assert {s.arm for s in sessions} == {arm} == {AskArm.SUGGESTIONS}  # the brand's share is 0
    assert all(s.holdout_percent == 0 and s.visitor_key == key for s in sessions)

    question = qa.ask(asker)
    ended = record_question(db, brand, key, question, now=T0 + timedelta(minutes=100))
    assert ended is not None and ended.number == 2
    assert (ended.thread_id, ended.ended_with_thread_at) == (
        question.id,
        T0 + timedelta(minutes=100),
    )
    # A session that ended with a question is over: the next request opens a third.
    visit(db, brand, key, signed_in=True, now=T0 + timedelta(minutes=101))
    db.commit()
    assert db.scalar(select(AskSession.number).order_by(AskSession.number.desc())) == 3
    # A question 30 minutes after the last request belongs to no session.
    late = qa.ask(asker, title="How do I keep my number when I move abroad?")
    assert record_question(db, brand, key, late, now=T0 + timedelta(minutes=131)) is None


def test_a_session_keeps_its_group_when_the_share_changes(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    """A visitor held back at 50% starts a session; the admin switches the experiment off; the
    session stays in the holdout until it ends, and the next one gets suggestions."""
    brand = forum.brand
    brand.holdout_percent = 50
    key = next(
        k
        for k in (viewer_key(user_id=n, session_token=None, ip=None) for n in range(100))
        if assigned_arm(brand.id, k, 50) == AskArm.HOLDOUT
    )
    assert visit(db, brand, key, signed_in=True, now=T0) == AskArm.HOLDOUT
    brand.holdout_percent = 0
    assert visit(db, brand, key, signed_in=True, now=T0 + timedelta(minutes=5)) == AskArm.HOLDOUT
    later = T0 + timedelta(minutes=36)
    assert visit(db, brand, key, signed_in=True, now=later) == AskArm.SUGGESTIONS
    db.commit()
    assert [(s.arm, s.holdout_percent) for s in db.scalars(select(AskSession))] == [
        (AskArm.HOLDOUT, 50),
        (AskArm.SUGGESTIONS, 0),
    ]


def test_anonymous_requests_are_treated_by_the_hash_and_not_stored(
    db: Session, forum: Forum
) -> None:
    brand = forum.brand
    brand.holdout_percent = 50
    key = viewer_key(user_id=None, session_token="abc", ip=None)
    expected = assigned_arm(brand.id, key, 50)
    assert visit(db, brand, key, signed_in=False, now=T0) == expected
    db.commit()
    assert db.scalars(select(AskSession)).all() == []


# --- over HTTP ----------------------------------------------------------------------------------


def _links(page: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)"[^>]*data-deflect', page)


def test_a_holdout_visitor_gets_no_suggestions_and_a_question_ends_the_session(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
    settings: Settings,
    engine: Engine,
) -> None:
    brand = forum.brand
    brand.holdout_percent = 50
    db.commit()
    helper = make_user("helper")
    members = [make_user(f"member{n}") for n in range(24)]
    arms = {user.username: assigned_arm(brand.id, _member_key(user), 50) for user in members}
    held = next(user for user in members if arms[user.username] == AskArm.HOLDOUT)
    shown = next(user for user in members if arms[user.username] == AskArm.SUGGESTIONS)
    answered = qa.ask(helper, title="Tubeless tyre keeps losing pressure", body="Sealant twice.")
    qa.answer(shown, answered, "Check the valve core and add fresh sealant.")
    drain(Worker(settings, make_session_factory(engine)))

    browsers = {}
    for user in (held, shown):
        browsers[user.username] = make_client()
        log_in(browsers[user.username], user.username)

    def suggested(user: User, title: str) -> list[str]:
        page = browsers[user.username].get(
            "/b/acme/kb/suggest", params={"title": title}, headers={"HX-Request": "true"}
        )
        assert page.status_code == 200
        return _links(page.text)

    assert suggested(shown, "tubeless tyre pressure") == [f"/t/{answered.id}"]
    assert suggested(held, "tubeless tyre pressure") == []
    assert suggested(held, "tubeless tyre losing pressure") == []
    # Too short to search: no session starts.
    assert suggested(shown, "tub") == []
    ask_page = browsers[held.username].get("/b/acme/ask/new")
    assert ask_page.status_code == 200 and 'hx-get="/b/acme/kb/suggest"' in ask_page.text

    fresh(db)
    stored = {(s.visitor_key, s.arm) for s in db.scalars(select(AskSession))}
    assert stored == {
        (_member_key(held), AskArm.HOLDOUT),
        (_member_key(shown), AskArm.SUGGESTIONS),
    }
    # Nothing in the table can lead back to an address: keys are 32-hex hashes.
    assert all(re.fullmatch(r"[0-9a-f]{32}", key) for key, _arm in stored)

    browser = browsers[held.username]
    posted = browser.post(
        "/b/acme/ask/new",
        data={
            "csrf_token": csrf_token(browser, "/b/acme/ask/new"),
            "forum": forum.slug,
            "title": "Tubeless tyre loses pressure overnight",
            "body": "It is flat every morning although I added sealant.",
            "kind": "question",
        },
        follow_redirects=False,
    )
    assert posted.status_code == 303
    fresh(db)
    thread_id = db.scalar(select(Thread.id).where(Thread.title.like("%overnight%")))
    sessions = {s.visitor_key: s for s in db.scalars(select(AskSession))}
    assert sessions[_member_key(held)].thread_id == thread_id
    assert sessions[_member_key(held)].ended_with_thread_at is not None
    assert sessions[_member_key(shown)].thread_id is None


# --- the admin setting --------------------------------------------------------------------------


def test_the_form_reads_the_switch_and_the_share() -> None:
    assert holdout_percent(HoldoutForm(enabled=False, percent="30")) == 0
    assert holdout_percent(HoldoutForm(enabled=True, percent="")) == 10
    assert holdout_percent(HoldoutForm(enabled=True, percent=" 25 ")) == 25
    assert holdout_percent(HoldoutForm(enabled=True, percent="0")) == 0
    assert holdout_percent(HoldoutForm(enabled=True, percent="50")) == 50
    for typed in ("51", "-1", "12.5", "ten", "²", "١٢", "1e1"):
        with pytest.raises(FormErrors) as refused:
            holdout_percent(HoldoutForm(enabled=True, percent=typed))
        assert set(refused.value.errors) == {"holdout_percent"}, typed


def test_saving_the_share_is_audited_once_per_change(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    admin, brand = make_user("ada", role=Role.ADMIN), forum.brand
    assert do_set_holdout(db, admin, brand, HoldoutForm(enabled=True), ip="192.0.2.1") == 10
    do_set_holdout(db, admin, brand, HoldoutForm(enabled=True, percent="10"))  # unchanged
    db.commit()
    (entry,) = db.scalars(select(AuditLog).where(AuditLog.action == "brand.holdout"))
    assert (entry.before, entry.after) == ({"holdout_percent": 0}, {"holdout_percent": 10})


def _brand(db: Session) -> Brand:
    fresh(db)
    return db.scalars(select(Brand).where(Brand.slug == "acme")).one()


@pytest.mark.usefixtures("forum")
def test_admins_switch_the_holdout_on_and_bad_shares_are_refused(
    as_role: AsRole, db: Session
) -> None:
    admin, _user = as_role(Role.ADMIN)
    page = admin.get(PAGE)
    assert page.status_code == 200 and f'action="{SAVE}"' in page.text
    token = csrf_token(admin, PAGE)
    assert admin.post(SAVE, data={"holdout_enabled": "1"}).status_code == 403  # no token
    assert _brand(db).holdout_percent == 0

    on = admin.post(SAVE, data={"csrf_token": token, "holdout_enabled": "1",
                                "holdout_percent": ""}, follow_redirects=False)  # fmt: skip
    assert on.status_code == 303
    assert _brand(db).holdout_percent == 10
    for typed in ("51", "-5", "abc"):
        refused = admin.post(
            SAVE, data={"csrf_token": token, "holdout_enabled": "1", "holdout_percent": typed}
        )
        assert refused.status_code == 422, typed
        assert "Enter a whole number of percent from 0 to 50" in refused.text
        assert 'id="error-holdout_percent"' in refused.text
        assert _brand(db).holdout_percent == 10
    changed = admin.post(SAVE, data={"csrf_token": token, "holdout_enabled": "1",
                                     "holdout_percent": "25"}, follow_redirects=False)  # fmt: skip
    assert changed.status_code == 303
    assert _brand(db).holdout_percent == 25
    off = admin.post(SAVE, data={"csrf_token": token, "holdout_percent": "25"},
                     follow_redirects=False)  # fmt: skip
    assert off.status_code == 303
    assert _brand(db).holdout_percent == 0


@pytest.mark.parametrize("role", [None, Role.MEMBER, Role.MODERATOR, Role.AGENT])
@pytest.mark.usefixtures("forum")
def test_only_admins_change_the_holdout(as_role: AsRole, role: Role | None, db: Session) -> None:
    browser, _user = as_role(role)
    token = csrf_token(browser, "/")
    posted = browser.post(
        SAVE,
        data={"csrf_token": token, "holdout_enabled": "1", "holdout_percent": "20"},
        follow_redirects=False,
    )
    assert posted.status_code == (303 if role is None else 403)  # anonymous: to the login page
    assert _brand(db).holdout_percent == 0
