"""Trust levels: earned from real activity against the documented thresholds (or a brand's own),
raised by the periodic sweep, lowered or pinned by moderators, and what each level may do."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community import thread_editing, voting
from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.errors import FormErrors, PermissionDenied
from community.core.models import Brand, Forum, Post, Role, Thread, User, Visibility
from community.core.schemas import EditIn
from community.core.settings import Settings
from community.core.staff import remember_brand_roles
from community.core.viewcount import ViewCounter, viewer_key
from community.core.workspace_models import BrandRole
from community.worker import Worker
from moderation import accounts, actions, decisions, queue, trust
from moderation.models import FlagReason, ItemStatus, Queue, QueueItem
from moderation.trust import Activity
from tests.conftest import QA, csrf_token, fresh, log_in

UserFactory = Callable[..., User]
T = TypeVar("T")
RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}

# The table in moderation/trust.py's docstring: what each level takes by default.
DOCUMENTED = {
    1: {"days_visited": 1, "threads_read": 5, "posts": 0, "upvotes": 0, "accepted": 0,
        "account_days": 1},
    2: {"days_visited": 10, "threads_read": 50, "posts": 5, "upvotes": 5, "accepted": 0,
        "account_days": 14},
    3: {"days_visited": 40, "threads_read": 200, "posts": 20, "upvotes": 25, "accepted": 3,
        "account_days": 60},
}  # fmt: skip
# Flags upheld against the member in 90 days: level 1 any, level 2 at most 1, level 3 none.
MAX_FLAGS_UPHELD = {2: 1, 3: 0}


def _load(db: Session, model: type[T], ident: object) -> T:
    found = db.get(model, ident)
    assert found is not None
    return found


def _stats(level: int, **changes: int) -> Activity:
    return Activity(**(DOCUMENTED[level] | {"flags_upheld": 0} | changes))


def _audits(db: Session, action: str, user: User) -> list[AuditLog]:
    return list(
        db.scalars(
            select(AuditLog)
            .where(
                AuditLog.action == action,
                AuditLog.target_type == "user",
                AuditLog.target_id == str(user.id),
            )
            .order_by(AuditLog.id)
        )
    )


def _level(db: Session, user: User) -> tuple[int, bool]:
    fresh(db)
    stored = _load(db, User, user.id)
    assert stored is not None
    return stored.trust_level, stored.trust_locked


@pytest.fixture
def make_member(db: Session, make_user: UserFactory) -> Callable[..., User]:
    """A member with the given activity figures and an account `age_days` old."""

    def factory(
        username: str,
        *,
        level: int = 0,
        age_days: int = 2,
        days_visited: int = 1,
        threads_read: int = 5,
        last_seen: datetime | None = None,
        locked: bool = False,
    ) -> User:
        user = make_user(username, trust_level=level)
        user.created_at = utcnow() - timedelta(days=age_days)
        user.days_visited = days_visited
        user.threads_read = threads_read
        user.last_seen_at = last_seen
        user.trust_locked = locked
        db.commit()
        return user

    return factory


# --- the thresholds --------------------------------------------------------------------------


def test_exactly_the_documented_figures_earn_each_level() -> None:
    rules = trust.thresholds(None)
    assert trust.earned_level(Activity(0, 0, 0, 0, 0, 0, 0), rules) == 0
    for level in (1, 2, 3):
        assert trust.earned_level(_stats(level), rules) == level


@pytest.mark.parametrize(
    ("level", "figure"),
    [(level, figure) for level, needs in DOCUMENTED.items() for figure, n in needs.items() if n],
)
def test_one_short_of_any_threshold_stays_a_level_below(level: int, figure: str) -> None:
    short = _stats(level, **{figure: DOCUMENTED[level][figure] - 1})
    assert trust.earned_level(short, trust.thresholds(None)) == level - 1


def test_flags_upheld_against_a_member_block_promotion() -> None:
    rules = trust.thresholds(None)
    for level, allowed in MAX_FLAGS_UPHELD.items():
        assert trust.earned_level(_stats(level, flags_upheld=allowed), rules) == level
        assert trust.earned_level(_stats(level, flags_upheld=allowed + 1), rules) == level - 1
    assert trust.earned_level(_stats(1, flags_upheld=40), rules) == 1  # level 1: any


def test_level_4_is_never_earned_automatically() -> None:
    huge = Activity(10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 0)
    assert trust.earned_level(huge, trust.thresholds(None)) == 3


def test_a_brand_s_overrides_merge_into_the_defaults() -> None:
    brand = Brand(
        slug="acme",
        name="Acme",
        trust_thresholds={
            "2": {"days_visited": "3", "posts": 2, "bogus": 9},
            "4": {"days_visited": 1},
            "1": "nonsense",
        },
    )
    merged = trust.thresholds(brand)
    assert merged["2"]["days_visited"] == 3
    assert merged["2"]["posts"] == 2
    assert merged["2"]["threads_read"] == DOCUMENTED[2]["threads_read"]
    assert "bogus" not in merged["2"]
    assert set(merged) == {"1", "2", "3"}
    assert merged["1"] == trust.thresholds(None)["1"]
    # The defaults themselves are untouched.
    assert trust.thresholds(None)["2"]["days_visited"] == DOCUMENTED[2]["days_visited"]
    early = _stats(2, days_visited=3, posts=2)
    assert trust.earned_level(early, merged) == 2
    assert trust.earned_level(early, trust.thresholds(None)) == 1


# --- promotion -------------------------------------------------------------------------------


def test_promotion_raises_the_level_and_records_the_figures(
    db: Session, forum: Forum, make_member: Callable[..., User]
) -> None:
    member = make_member("learner", days_visited=1, threads_read=5, age_days=2)
    assert trust.promote_if_earned(db, member, forum.brand) == 1
    db.commit()
    assert _level(db, member) == (1, False)
    [audit] = _audits(db, "trust.promoted", member)
    assert audit.actor_id is None
    assert (audit.before, audit.after) == ({"trust_level": 0}, {"trust_level": 1})
    for figure in ("days_visited 1", "threads_read 5", "posts 0", "account_days 2"):
        assert figure in (audit.reason or "")

    assert trust.promote_if_earned(db, _load(db, User, member.id), forum.brand) is None
    db.commit()
    assert len(_audits(db, "trust.promoted", member)) == 1


def test_promotion_never_lowers_and_leaves_pinned_levels_alone(
    db: Session, forum: Forum, make_member: Callable[..., User]
) -> None:
    higher = make_member("veteran", level=2)  # activity only earns level 1
    pinned = make_member("pinned", level=0, locked=True)
    assert trust.promote_if_earned(db, higher, forum.brand) is None
    assert trust.promote_if_earned(db, pinned, forum.brand) is None
    db.commit()
    assert _level(db, higher) == (2, False)
    assert _level(db, pinned) == (0, True)
    assert _audits(db, "trust.promoted", higher) == _audits(db, "trust.promoted", pinned) == []


def test_promotion_follows_the_brand_s_thresholds_and_stops_at_level_3(
    db: Session, forum: Forum, make_member: Callable[..., User]
) -> None:
    brand = forum.brand
    brand.trust_thresholds = {"1": {"threads_read": 8}}
    db.commit()
    reader = make_member("reader", threads_read=5)
    assert trust.promote_if_earned(db, reader, brand) is None

    easy = {"days_visited": 1, "threads_read": 1, "posts": 0, "upvotes": 0, "accepted": 0,
            "account_days": 0}  # fmt: skip
    brand.trust_thresholds = {"1": easy, "2": easy, "3": easy}
    db.commit()
    assert trust.promote_if_earned(db, _load(db, User, reader.id), brand) == 3
    db.commit()
    assert _level(db, reader) == (3, False)
    assert trust.promote_if_earned(db, _load(db, User, reader.id), brand) is None
    assert _level(db, reader) == (3, False)


def test_activity_counts_real_posts_votes_acceptance_and_upheld_flags(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    make_member: Callable[..., User],
) -> None:
    member = make_member("helper", level=1, age_days=15, days_visited=10, threads_read=50)
    asker, voter = make_user("asker"), make_user("voter")
    moderator = make_user("mod_maria", role=Role.MODERATOR)
    topic = qa.ask(asker, title="Wi-Fi calling keeps dropping")
    answers = [qa.answer(member, topic) for _ in range(7)]
    for answer in answers:
        voting.cast_vote(db, voter, answer.id, 1)
    voting.accept(db, asker, answers[-1].id)
    db.commit()
    stats = trust.activity(db, member)
    assert (stats.posts, stats.upvotes, stats.accepted, stats.flags_upheld) == (7, 7, 1, 0)
    assert (stats.days_visited, stats.threads_read, stats.account_days) == (10, 50, 15)

    # Two posts removed on members' flags: the posts no longer count, the flags do.
    for answer in answers[:2]:
        queue.flag(db, voter, answer, FlagReason.OFFENSIVE)
        [item] = db.scalars(
            select(QueueItem).where(
                QueueItem.post_id == answer.id,
                QueueItem.queue == Queue.FLAGGED,
                QueueItem.status == ItemStatus.OPEN,
            )
        ).all()
        decisions.resolve(db, moderator, item, decisions.Decision.HIDE, reason="rude")
    db.commit()
    stats = trust.activity(db, member)
    assert (stats.posts, stats.upvotes, stats.flags_upheld) == (5, 5, 2)
    assert trust.promote_if_earned(db, member, forum.brand) is None  # level 2 allows 1 flag
    db.commit()
    assert _level(db, member) == (1, False)

    # Flags older than 90 days are forgiven.
    with time_machine.travel(utcnow() + timedelta(days=91)):
        assert trust.promote_if_earned(db, _load(db, User, member.id), forum.brand) == 2
        db.commit()
    assert _level(db, member) == (2, False)


def test_the_sweep_promotes_members_seen_lately(
    db: Session, forum: Forum, make_member: Callable[..., User]
) -> None:
    recent = utcnow() - timedelta(hours=1)
    active = make_member("active", last_seen=recent)
    away = make_member("away", last_seen=utcnow() - timedelta(days=3))
    pinned = make_member("pinned", last_seen=recent, locked=True)
    gone = make_member("gone", last_seen=recent)
    gone.deactivated_at = utcnow()
    db.commit()
    assert trust.promote_active_members(db) == 1
    db.commit()
    assert _level(db, active)[0] == 1
    assert [_level(db, user)[0] for user in (away, pinned, gone)] == [0, 0, 0]


def test_the_worker_s_periodic_sweep_promotes(
    db: Session,
    engine: Engine,
    settings: Settings,
    forum: Forum,
    make_member: Callable[..., User],
) -> None:
    active = make_member("active", last_seen=utcnow() - timedelta(minutes=5))
    worker = Worker(settings, make_session_factory(engine))
    assert "trust and suspensions" in [task.name for task in worker.periodic]
    worker.run_periodic()
    assert _level(db, active) == (1, False)
    assert len(_audits(db, "trust.promoted", active)) == 1


# --- the inputs: days visited and threads read -----------------------------------------------


def _figures(db: Session, user: User) -> tuple[int, int]:
    fresh(db)
    stored = _load(db, User, user.id)
    assert stored is not None
    return stored.days_visited, stored.threads_read


def test_a_visit_on_a_new_day_counts_once(
    db: Session, make_client: Callable[[], TestClient], make_user: UserFactory
) -> None:
    member = make_user("visitor")
    browser = make_client()
    log_in(browser, "visitor")
    days, _read = _figures(db, member)
    tomorrow = (utcnow() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    with time_machine.travel(tomorrow, tick=False):
        assert browser.get("/account").status_code == 200
    assert _figures(db, member)[0] == days + 1
    with time_machine.travel(tomorrow + timedelta(minutes=30), tick=False):
        assert browser.get("/account").status_code == 200
    assert _figures(db, member)[0] == days + 1
    with time_machine.travel(tomorrow + timedelta(days=1), tick=False):
        assert browser.get("/account").status_code == 200
    assert _figures(db, member)[0] == days + 2


def test_signing_in_on_a_new_day_counts_as_a_visit(
    db: Session, make_client: Callable[[], TestClient], make_user: UserFactory
) -> None:
    member = make_user("returning")
    member.last_seen_at = utcnow() - timedelta(days=1)
    member.days_visited = 3
    db.commit()
    browser = make_client()
    log_in(browser, "returning")
    assert browser.get("/account").status_code == 200
    assert _figures(db, member)[0] == 4
    log_in(make_client(), "returning")  # a second device the same day
    assert _figures(db, member)[0] == 4


def test_viewing_threads_signed_in_adds_to_threads_read_once_per_thread_and_day(
    app: FastAPI,
    db: Session,
    qa: QA,
    make_client: Callable[[], TestClient],
    make_user: UserFactory,
) -> None:
    asker = make_user("asker")
    topics = [qa.ask(asker, title=f"Question {index} about roaming abroad") for index in range(3)]
    member = make_user("reader")
    reader, anonymous = make_client(), make_client()
    log_in(reader, "reader")
    for thread in topics:
        for _ in range(2):
            assert reader.get(f"/t/{thread.id}", headers=BROWSER).status_code == 200
            assert anonymous.get(f"/t/{thread.id}", headers=BROWSER).status_code == 200
    counter: ViewCounter = app.state.view_counter
    counter.flush()
    assert _figures(db, member)[1] == 3
    assert _figures(db, asker)[1] == 0

    reader.get(f"/t/{topics[0].id}", headers=BROWSER)
    counter.flush()
    assert _figures(db, member)[1] == 3  # the same thread the same day
    with time_machine.travel(utcnow() + timedelta(days=1)):
        reader.get(f"/t/{topics[0].id}", headers=BROWSER)
        counter.flush()
    assert _figures(db, member)[1] == 4


def test_two_processes_count_one_read_once(
    app: FastAPI, db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"))
    member = make_user("reader")
    key = viewer_key(user_id=member.id, session_token=None, ip=None)
    first = ViewCounter(app.state.session_factory)
    second = ViewCounter(app.state.session_factory)
    first.record(thread.id, key, user_id=member.id)
    second.record(thread.id, key, user_id=member.id)
    first.flush()
    second.flush()
    assert _figures(db, member)[1] == 1


# --- moderators set and pin levels -----------------------------------------------------------


def test_moderators_set_and_pin_a_level(
    db: Session, forum: Forum, make_user: UserFactory, make_member: Callable[..., User]
) -> None:
    moderator = make_user("mod_maria", role=Role.MODERATOR)
    member = make_member("linker", level=1, days_visited=50, threads_read=500, age_days=90)
    assert accounts.set_trust_level(db, moderator, member, 0, reason="affiliate links")
    db.commit()
    assert _level(db, member) == (0, True)
    [audit] = _audits(db, "trust.set", member)
    assert audit.actor_id == moderator.id
    assert (audit.before, audit.after, audit.reason) == (
        {"trust_level": 1},
        {"trust_level": 0},
        "affiliate links",
    )
    # Pinned: the sweep does not undo it; setting the same level again changes nothing.
    member = _load(db, User, member.id)
    assert trust.promote_if_earned(db, member, forum.brand) is None
    assert not accounts.set_trust_level(db, moderator, member, 0)
    db.commit()
    assert _level(db, member) == (0, True)
    assert len(_audits(db, "trust.set", member)) == 1

    assert accounts.set_trust_level(db, moderator, member, 4)  # level 4 only by hand
    db.commit()
    assert _level(db, member) == (4, True)


def test_members_cannot_set_levels_and_levels_stay_0_to_4(
    db: Session, make_user: UserFactory
) -> None:
    moderator = make_user("mod_maria", role=Role.MODERATOR)
    member, other = make_user("member", trust_level=3), make_user("other")
    with pytest.raises(PermissionDenied):
        accounts.set_trust_level(db, member, other, 4)
    for level in (-1, 5):
        with pytest.raises(FormErrors):
            accounts.set_trust_level(db, moderator, other, level)
    db.rollback()
    assert _level(db, other) == (1, False)
    assert _audits(db, "trust.set", other) == []


def test_the_moderator_page_sets_a_level(
    db: Session, make_user: UserFactory, as_role: RoleClient
) -> None:
    member = make_user("member_jo")
    moderator, moderator_user = as_role(Role.MODERATOR)
    assert moderator_user is not None
    page = moderator.get("/mod/users/member_jo")
    assert page.status_code == 200
    assert "trust level 1" in page.text
    token = csrf_token(moderator, "/mod/users/member_jo")
    response = moderator.post(
        "/mod/users/member_jo/trust",
        data={"trust_level": "3", "reason": "long-time helper", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/mod/users/member_jo"
    assert _level(db, member) == (3, True)
    [audit] = _audits(db, "trust.set", member)
    assert (audit.actor_id, audit.reason) == (moderator_user.id, "long-time helper")
    after = moderator.get("/mod/users/member_jo").text
    assert "trust level 3" in after
    assert "set by a moderator" in after
    assert "trust.set" in after


def test_the_trust_form_refuses_members_and_bad_levels(
    db: Session, make_user: UserFactory, as_role: RoleClient
) -> None:
    member = make_user("member_jo")
    visitor, _user = as_role(Role.MEMBER)
    assert visitor.get("/mod/users/member_jo").status_code == 403
    denied = visitor.post(
        "/mod/users/member_jo/trust",
        data={"trust_level": "4", "csrf_token": csrf_token(visitor, "/")},
    )
    assert denied.status_code == 403
    moderator, _user = as_role(Role.MODERATOR)
    token = csrf_token(moderator, "/")
    for bad in ("7", "-1", "two", ""):
        response = moderator.post(
            "/mod/users/member_jo/trust", data={"trust_level": bad, "csrf_token": token}
        )
        assert response.status_code == 422, bad
        assert "Trust levels go from 0 to 4." in response.text
    no_token = moderator.post("/mod/users/member_jo/trust", data={"trust_level": "0"})
    assert no_token.status_code == 403
    assert _level(db, member) == (1, False)
    assert _audits(db, "trust.set", member) == []


# --- what each level may do ------------------------------------------------------------------


def test_flag_weights_grow_with_the_level(db: Session, make_user: UserFactory) -> None:
    documented = {0: 0.5, 1: 1.0, 2: 1.5, 3: 2.0, 4: 3.0}
    brand, other = 1, 2
    for level, weight in documented.items():
        assert trust.flag_weight(make_user(f"level{level}", trust_level=level), brand) == weight
    assert trust.flag_weight(make_user("mod_sam", role=Role.MODERATOR, trust_level=0), brand) == 3.0
    # A moderator of one brand flags another brand's posts as the member they are there.
    brand_moderator = make_user("mod_bea", trust_level=0)
    remember_brand_roles(brand_moderator, {brand: frozenset({BrandRole.MODERATOR})})
    assert trust.flag_weight(brand_moderator, brand) == 3.0
    assert trust.flag_weight(brand_moderator, other) == 0.5


def test_flags_carry_their_weight_and_hide_a_post_at_the_brand_s_limit(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    topic = qa.ask(make_user("asker"), title="Is this offer from the shop real?")
    post = qa.answer(make_user("seller"), topic)
    first = queue.flag(db, make_user("tl2_a", trust_level=2), post, FlagReason.OFFENSIVE)
    queue.flag(db, make_user("tl0", trust_level=0), post, FlagReason.OFFENSIVE)
    db.commit()
    assert first.weight == 1.5
    item = db.scalars(select(QueueItem).where(QueueItem.post_id == post.id)).one()
    assert item.flag_weight == 2.0
    assert _load(db, Post, post.id).visibility == Visibility.VISIBLE
    queue.flag(db, make_user("tl2_b", trust_level=2), post, FlagReason.OFFENSIVE)
    db.commit()
    fresh(db)
    assert _load(db, Post, post.id).visibility == Visibility.HIDDEN
    item = _load(db, QueueItem, item.id)
    assert item.auto_hidden
    assert "hidden automatically: flag weight 3.5 reached 3" in item.reasons


def test_a_spam_flag_from_trust_level_3_hides_at_once_but_not_from_level_2(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    topic = qa.ask(make_user("asker"), title="Best way to unlock a phone?")
    first, second = qa.answer(make_user("spammer1"), topic), qa.answer(make_user("spammer2"), topic)
    queue.flag(db, make_user("regular", trust_level=3), first, FlagReason.SPAM)
    queue.flag(db, make_user("member2", trust_level=2), second, FlagReason.SPAM)
    db.commit()
    fresh(db)
    assert _load(db, Post, first.id).visibility == Visibility.HIDDEN
    assert _load(db, Post, second.id).visibility == Visibility.VISIBLE
    item = db.scalars(select(QueueItem).where(QueueItem.post_id == first.id)).one()
    assert item.auto_hidden
    assert "hidden at once: spam flag from a trust-level-3 member" in item.reasons


@pytest.fixture
def tablets(db: Session, forum: Forum) -> Forum:
    created = Forum(brand_id=forum.brand_id, slug="tablets", name="Tablets", description="")
    db.add(created)
    db.commit()
    return created


def test_trust_level_3_may_move_threads_and_level_2_may_not(
    db: Session, qa: QA, forum: Forum, tablets: Forum, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"), title="iPad will not join my Wi-Fi")
    with pytest.raises(PermissionDenied):
        actions.move(db, make_user("member2", trust_level=2), thread, tablets)
    db.rollback()
    fresh(db)
    assert _load(db, Thread, thread.id).forum_id == forum.id

    regular = make_user("regular", trust_level=3)
    assert actions.move(db, regular, _load(db, Thread, thread.id), tablets, reason="it is a tablet")
    db.commit()
    fresh(db)
    assert _load(db, Thread, thread.id).forum_id == tablets.id
    assert (_load(db, Forum, forum.id).thread_count, _load(db, Forum, tablets.id).thread_count) == (
        0,
        1,
    )
    audit = db.scalars(select(AuditLog).where(AuditLog.action == "thread.moved")).one()
    assert (audit.actor_id, audit.before, audit.after) == (
        regular.id,
        {"forum": "mobile"},
        {"forum": "tablets"},
    )


def test_moving_through_the_page_follows_the_level(
    db: Session,
    qa: QA,
    forum: Forum,
    tablets: Forum,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
) -> None:
    thread = qa.ask(make_user("asker"), title="Galaxy Tab keeps restarting")
    make_user("member2", trust_level=2)
    make_user("regular", trust_level=3)
    member, regular = make_client(), make_client()
    log_in(member, "member2")
    log_in(regular, "regular")
    denied = member.post(
        f"/mod/threads/{thread.id}/move",
        data={"forum": "tablets", "csrf_token": csrf_token(member, "/")},
    )
    assert denied.status_code == 403
    fresh(db)
    assert _load(db, Thread, thread.id).forum_id == forum.id
    moved = regular.post(
        f"/mod/threads/{thread.id}/move",
        data={"forum": "tablets", "csrf_token": csrf_token(regular, "/")},
        follow_redirects=False,
    )
    assert moved.status_code == 303
    fresh(db)
    assert _load(db, Thread, thread.id).forum_id == tablets.id


def test_trust_level_2_may_edit_the_tags_of_others_questions(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    """trust.py: "2 may edit tags". Only tags: the words stay the author's."""
    thread = qa.ask(make_user("asker"), title="Cannot send MMS after update", tags=["mms"])
    question = db.scalars(
        select(Post).where(Post.thread_id == thread.id, Post.is_question.is_(True))
    ).one()
    with pytest.raises(PermissionDenied):
        thread_editing.retag(db, make_user("member1", trust_level=1), thread, ["mms", "android"])
    db.rollback()

    editor = make_user("member2", trust_level=2)
    thread_editing.retag(db, editor, _load(db, Thread, thread.id), ["mms", "android"])
    db.commit()
    fresh(db)
    assert sorted(tag.name for tag in _load(db, Thread, thread.id).tags) == ["android", "mms"]

    # Only the tags: the words stay the author's.
    rewrite = EditIn(body="Something else entirely", title=thread.title, reason="clearer")
    with pytest.raises(PermissionDenied):
        thread_editing.edit_post(db, editor, _load(db, Post, question.id), rewrite)


def test_admins_set_the_thresholds_on_the_settings_page(
    db: Session, qa: QA, make_user: UserFactory, as_role: RoleClient
) -> None:
    page_url = "/admin/brands/acme/moderation"
    moderator_client, _moderator = as_role(Role.MODERATOR)
    token = csrf_token(moderator_client, "/")
    assert moderator_client.get(page_url).status_code == 403
    assert (
        moderator_client.post(
            "/admin/brands/acme/trust", data={"csrf_token": token, "posts": ["1", "2", "3"]}
        ).status_code
        == 403
    )

    browser, _admin = as_role(Role.ADMIN)
    page = browser.get(page_url)
    assert page.status_code == 200 and "Days visited" in page.text
    token = csrf_token(browser, page_url)
    # Defaults, except that level 1 needs no reading at all and level 2 only one post.
    wanted = {level: dict(values) for level, values in trust.DEFAULTS.items()}
    wanted["1"].update(threads_read=0, days_visited=0, account_days=0)
    wanted["2"].update(posts=1)
    form = {key: [str(wanted[level][key]) for level in ("1", "2", "3")] for key in wanted["1"]}

    broken = dict(form, posts=["1", "two", "3"])
    refused = browser.post("/admin/brands/acme/trust", data={"csrf_token": token, **broken})
    assert refused.status_code == 422
    for typed in ("²", "١٢"):  # int() raised on the first (a 500) and read the second as 12
        other_script = dict(form, posts=["1", typed, "3"])
        assert (
            browser.post(
                "/admin/brands/acme/trust", data={"csrf_token": token, **other_script}
            ).status_code
            == 422
        )
    short = dict(form, upvotes=["1"])
    assert (
        browser.post("/admin/brands/acme/trust", data={"csrf_token": token, **short}).status_code
        == 422
    )
    fresh(db)
    assert not _load(db, Brand, qa.forum.brand_id).trust_thresholds

    saved = browser.post(
        "/admin/brands/acme/trust", data={"csrf_token": token, **form}, follow_redirects=False
    )
    assert saved.status_code == 303
    fresh(db)
    brand = _load(db, Brand, qa.forum.brand_id)
    assert trust.thresholds(brand) == wanted
    assert (
        db.scalars(select(AuditLog).where(AuditLog.action == "brand.trust_thresholds")).one().after
        == wanted
    )
    assert 'value="1"' in browser.get(page_url).text

    newcomer = make_user("newcomer", trust_level=0)
    assert trust.promote_if_earned(db, newcomer, brand) == 1
