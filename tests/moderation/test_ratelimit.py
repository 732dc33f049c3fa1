"""Rate limits on posting, voting, flagging, searching and registering: 429 with Retry-After as a
page or as JSON, nothing done when refused, tighter limits for trust level 0, counters in memory
or shared through Redis, and a site that keeps working when Redis is down."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from community.app import create_app
from community.core import meili
from community.core.activity_models import Vote
from community.core.clock import utcnow
from community.core.errors import TooManyRequests
from community.core.models import Forum, Post, Thread, User
from community.core.ratelimit import RateLimiter
from community.core.settings import Settings
from community.core.throttle import LimitStore
from kb.models import SearchQuery
from moderation.models import Flag
from tests.conftest import (
    LIMIT_STORAGES,
    PASSWORD,
    QA,
    REDIS_URL,
    csrf_token,
    fresh,
    log_in,
    make_settings,
)

UserFactory = Callable[..., User]
T = TypeVar("T")


class Answer(Protocol):
    """An HTTP response as the test client returns it."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...
    def json(self, **kwargs: Any) -> Any: ...


UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"

# (action, limit, limit for trust level 0, window in seconds) as community/core/ratelimit.py sets
# them.
DOCUMENTED = [
    ("register", 10, None, 3600),
    ("post", 20, 5, 600),
    ("vote", 60, 20, 60),
    ("flag", 30, 10, 3600),
    ("search", 120, None, 60),
]


def _load(db: Session, model: type[T], ident: object) -> T:
    found = db.get(model, ident)
    assert found is not None
    return found


@pytest.fixture
def limit_storage(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "memory"))


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, meili_server: meili.MeiliServer, limit_storage: str
) -> Settings:
    """The app's settings with rate-limit counters in memory, or in Redis for tests marked
    ON_EACH_STORAGE (each test gets its own key prefix)."""
    redis_url = REDIS_URL if limit_storage == "redis" else None
    return make_settings(tmp_path, database_url, meili_server.url, redis_url=redis_url)


ON_EACH_STORAGE = pytest.mark.parametrize("limit_storage", LIMIT_STORAGES, indirect=True)


def _limiter(tmp_path: Path, storage: str, **extra: object) -> RateLimiter:
    redis_url = {"memory": None, "redis": REDIS_URL, "unreachable": UNREACHABLE_REDIS}[storage]
    return RateLimiter(
        Settings(
            instance_dir=tmp_path,
            secret_key="x",
            redis_url=redis_url,
            rate_limit_prefix=f"t{uuid.uuid4().hex[:10]}",
            **extra,  # type: ignore[arg-type]
        )
    )


def _signed_in(make_client: Callable[[], TestClient], username: str) -> TestClient:
    browser = make_client()
    log_in(browser, username)
    return browser


def _assert_page_429(response: Answer, window: int) -> None:
    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= window + 1
    assert response.headers["content-type"].startswith("text/html")
    assert "Slow down a little" in response.text
    assert "You are doing that too often" in response.text


def _assert_json_429(response: Answer, window: int) -> None:
    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= window + 1
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "rate_limited"
    assert "You are doing that too often" in body["error"]["message"]


def _ask_form(token: str, index: int) -> dict[str, str]:
    return {
        "forum": "mobile",
        "title": f"Question {index} about my contract",
        "body": f"Details of question {index}.",
        "kind": "question",
        "tags": "",
        "csrf_token": token,
    }


def _threads_by(db: Session, user: User) -> int:
    fresh(db)
    return (
        db.scalar(select(func.count()).select_from(Thread).where(Thread.author_id == user.id)) or 0
    )


# --- the limiter -----------------------------------------------------------------------------


@pytest.mark.parametrize("storage", LIMIT_STORAGES)
@pytest.mark.parametrize(("action", "limit", "new_account_limit", "window"), DOCUMENTED)
def test_each_action_allows_its_limit_then_refuses_until_the_window_passes(
    tmp_path: Path,
    storage: str,
    action: str,
    limit: int,
    new_account_limit: int | None,
    window: int,
) -> None:
    limiter = _limiter(tmp_path, storage)
    for _ in range(limit):
        limiter.hit(action, "user:1")
    with pytest.raises(TooManyRequests) as refused:
        limiter.hit(action, "user:1")
    assert refused.value.status_code == 429
    assert 0 < refused.value.retry_after_seconds <= window + 1
    limiter.hit(action, "user:2")  # everyone has their own counter

    strict = new_account_limit or limit
    for _ in range(strict):
        limiter.hit(action, "user:3", new_account=True)
    with pytest.raises(TooManyRequests):
        limiter.hit(action, "user:3", new_account=True)

    with time_machine.travel(utcnow() + timedelta(seconds=window + 1)):
        limiter.hit(action, "user:1")
        limiter.hit(action, "user:3", new_account=True)


def test_limits_can_be_switched_off(tmp_path: Path) -> None:
    limiter = _limiter(tmp_path, "memory", rate_limits_enabled=False)
    for _ in range(200):
        limiter.hit("post", "user:1", new_account=True)


def _degraded_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "community.core.throttle"
        and "rate limits degraded" in record.getMessage()
    ]


def test_an_unreachable_store_allows_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = _limiter(tmp_path, "unreachable")
    with caplog.at_level(logging.WARNING, logger="community.core.throttle"):
        for _ in range(30):
            limiter.hit("post", "user:1", new_account=True)
    [warning] = _degraded_warnings(caplog)  # once per outage, not once per request
    assert "Redis" in warning and "let requests through" in warning


@pytest.mark.parametrize("storage", LIMIT_STORAGES)
def test_the_end_of_an_outage_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, storage: str
) -> None:
    redis_url = REDIS_URL if storage == "redis" else None
    store = LimitStore(
        Settings(instance_dir=tmp_path, secret_key="x", redis_url=redis_url, rate_limit_prefix="t")
    )
    with caplog.at_level(logging.WARNING, logger="community.core.throttle"):
        # What a counter operation reports when its store drops the connection.
        store.failed(ConnectionError("connection refused"))
        store.failed(ConnectionError("connection refused"))
        assert store.degraded
        assert store.probe() and store.probe()  # the store answers (memory always does)
    assert not store.degraded
    assert len(_degraded_warnings(caplog)) == 1
    assert len([r for r in caplog.records if "rate limits restored" in r.getMessage()]) == 1


# --- through the pages and the API -----------------------------------------------------------


@ON_EACH_STORAGE
def test_posting_over_the_limit_is_refused_as_json_and_as_a_page(
    db: Session, forum: Forum, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    poster = make_user("poster")
    browser = _signed_in(make_client, "poster")
    token = csrf_token(browser, "/")
    api = f"/api/v1/forums/{forum.id}/threads"
    headers = {"X-CSRF-Token": token}
    for index in range(20):
        created = browser.post(
            api,
            json={"title": f"Question {index} about roaming", "body": f"Details {index}."},
            headers=headers,
        )
        assert created.status_code == 201, created.text
    refused = browser.post(
        api, json={"title": "One question too many", "body": "Details."}, headers=headers
    )
    _assert_json_429(refused, 600)
    page = browser.post("/b/acme/ask/new", data=_ask_form(token, 99), follow_redirects=False)
    _assert_page_429(page, 600)
    assert _threads_by(db, poster) == 20


@ON_EACH_STORAGE
def test_new_accounts_get_the_tighter_limit(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
) -> None:
    topic = qa.ask(make_user("asker"), title="Which plan includes EU roaming?")
    newbie = make_user("newbie", trust_level=0)
    make_user("regular", trust_level=1)
    browser, regular = _signed_in(make_client, "newbie"), _signed_in(make_client, "regular")
    token = csrf_token(browser, "/")
    for index in range(5):
        response = browser.post(
            "/b/acme/ask/new", data=_ask_form(token, index), follow_redirects=False
        )
        assert response.status_code == 303  # held for review, but taken
    _assert_page_429(
        browser.post(f"/t/{topic.id}/answers", data={"body": "Me too", "csrf_token": token}), 600
    )
    _assert_page_429(browser.post("/b/acme/ask/new", data=_ask_form(token, 5)), 600)
    assert _threads_by(db, newbie) == 5
    assert db.scalar(select(func.count()).select_from(Post).where(Post.author_id == newbie.id)) == 5

    # An established member is not held back by the newcomer's counter.
    regular_token = csrf_token(regular, "/")
    for index in range(6):
        answered = regular.post(
            f"/t/{topic.id}/answers",
            data={"body": f"Answer {index}", "csrf_token": regular_token},
            follow_redirects=False,
        )
        assert answered.status_code == 303


@ON_EACH_STORAGE
def test_voting_over_the_limit_is_refused_and_the_vote_unchanged(
    db: Session, qa: QA, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    answer = qa.answer(make_user("author"), qa.ask(make_user("asker")))
    voter = make_user("voter", trust_level=0)
    browser = _signed_in(make_client, "voter")
    token = csrf_token(browser, "/")
    api = f"/api/v1/posts/{answer.id}/vote"
    for index in range(20):
        voted = browser.put(api, json={"value": 1 - index % 2}, headers={"X-CSRF-Token": token})
        assert voted.status_code == 200, voted.text
    # The twentieth vote withdrew it; refused attempts to vote again change nothing.
    _assert_json_429(browser.put(api, json={"value": 1}, headers={"X-CSRF-Token": token}), 60)
    _assert_page_429(
        browser.post(f"/posts/{answer.id}/vote", data={"value": "1", "csrf_token": token}), 60
    )
    fresh(db)
    assert db.scalars(select(Vote).where(Vote.user_id == voter.id)).all() == []
    assert _load(db, Post, answer.id).upvotes == 0


@ON_EACH_STORAGE
def test_flagging_over_the_limit_is_refused_and_records_no_flag(
    db: Session, qa: QA, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    topic = qa.ask(make_user("asker"))
    author = make_user("author")
    posts = [qa.answer(author, topic) for _ in range(11)]
    flagger = make_user("flagger", trust_level=0)
    browser = _signed_in(make_client, "flagger")
    token = csrf_token(browser, "/")
    for post in posts[:10]:
        flagged = browser.post(
            f"/api/v1/posts/{post.id}/flags",
            json={"reason": "spam"},
            headers={"X-CSRF-Token": token},
        )
        assert flagged.status_code == 201, flagged.text
    last = posts[10]
    _assert_json_429(
        browser.post(
            f"/api/v1/posts/{last.id}/flags",
            json={"reason": "spam"},
            headers={"X-CSRF-Token": token},
        ),
        3600,
    )
    _assert_page_429(
        browser.post(f"/posts/{last.id}/flag", data={"reason": "spam", "csrf_token": token}),
        3600,
    )
    fresh(db)
    assert db.scalars(select(Flag).where(Flag.post_id == last.id)).all() == []
    assert len(db.scalars(select(Flag).where(Flag.flagger_id == flagger.id)).all()) == 10


@ON_EACH_STORAGE
def test_searching_over_the_limit_is_refused_and_not_logged(
    app: FastAPI, db: Session, forum: Forum, client: TestClient
) -> None:
    for _ in range(120):
        assert client.get("/b/acme/search").status_code == 200
    _assert_page_429(client.get("/b/acme/search", params={"q": "roaming"}), 60)
    _assert_json_429(client.get("/api/v1/brands/acme/search", params={"q": "roaming"}), 60)
    app.state.search_log.flush()
    fresh(db)
    assert db.scalars(select(SearchQuery)).all() == []


@ON_EACH_STORAGE
def test_registering_over_the_limit_is_refused_and_creates_no_account(
    db: Session, make_client: Callable[[], TestClient]
) -> None:
    def register(username: str) -> Answer:
        browser = make_client()
        return browser.post(
            "/register",
            data={
                "username": username,
                "email": f"{username}@example.com",
                "password": PASSWORD,
                "display_name": username,
                "csrf_token": csrf_token(browser, "/register"),
            },
            follow_redirects=False,
        )

    for index in range(10):
        assert register(f"signup{index}").status_code == 200  # "we sent a link"
    _assert_page_429(register("onetoomany"), 3600)
    fresh(db)
    assert db.scalar(select(func.count()).select_from(User)) == 10
    assert db.scalar(select(User).where(User.username == "onetoomany")) is None


def test_switching_limits_off_lets_everything_through(
    tmp_path: Path,
    database_url: str,
    meili_server: meili.MeiliServer,
    engine: Engine,
    db: Session,
    forum: Forum,
    make_user: UserFactory,
) -> None:
    newbie = make_user("newbie", trust_level=0)
    settings = make_settings(tmp_path, database_url, meili_server.url, rate_limits_enabled=False)
    with TestClient(create_app(settings, engine=engine)) as browser:
        log_in(browser, "newbie")
        token = csrf_token(browser, "/")
        for index in range(8):
            posted = browser.post(
                "/b/acme/ask/new", data=_ask_form(token, index), follow_redirects=False
            )
            assert posted.status_code == 303
    assert _threads_by(db, newbie) == 8


# --- shared counters and outages -------------------------------------------------------------


@pytest.mark.parametrize("storage", LIMIT_STORAGES)
def test_web_processes_share_counters_through_redis(
    tmp_path: Path,
    database_url: str,
    meili_server: meili.MeiliServer,
    engine: Engine,
    db: Session,
    forum: Forum,
    make_user: UserFactory,
    storage: str,
) -> None:
    """Two app instances (two web processes) on one database: with Redis a member's posts and an
    attacker's failed logins add up across both; in memory each process counts alone."""
    prefix = f"t{uuid.uuid4().hex[:10]}"

    def instance(name: str) -> FastAPI:
        settings = make_settings(
            tmp_path / name,
            database_url,
            meili_server.url,
            redis_url=REDIS_URL if storage == "redis" else None,
            rate_limit_prefix=prefix,
            login_failures_per_account=3,
        )
        return create_app(settings, engine=engine)

    newbie = make_user("newbie", trust_level=0)
    make_user("victim")
    shared = storage == "redis"
    app_a, app_b = instance("a"), instance("b")
    with (
        TestClient(app_a) as first,
        TestClient(app_b) as second,
        TestClient(app_a) as attacker_a,
        TestClient(app_b) as attacker_b,
    ):
        for browser in (first, second):
            log_in(browser, "newbie")
        tokens = {id(first): csrf_token(first, "/"), id(second): csrf_token(second, "/")}
        for index, browser in enumerate([first, first, first, second, second]):
            response = browser.post(
                "/b/acme/ask/new",
                data=_ask_form(tokens[id(browser)], index),
                follow_redirects=False,
            )
            assert response.status_code == 303
        sixth = first.post(
            "/b/acme/ask/new", data=_ask_form(tokens[id(first)], 5), follow_redirects=False
        )
        assert sixth.status_code == (429 if shared else 303)
        assert _threads_by(db, newbie) == (5 if shared else 6)

        attackers = [attacker_a, attacker_b]
        for attacker, tries in zip(attackers, (2, 1), strict=True):
            for _ in range(tries):
                failed = attacker.post(
                    "/login",
                    data={
                        "login": "victim",
                        "password": "wrong-guess-123",
                        "csrf_token": csrf_token(attacker),
                    },
                )
                assert failed.status_code == 401
        right = attackers[0].post(
            "/login",
            data={"login": "victim", "password": PASSWORD, "csrf_token": csrf_token(attackers[0])},
            follow_redirects=False,
        )
        assert right.status_code == (429 if shared else 303)
        if shared:
            assert int(right.headers["retry-after"]) > 0


def test_with_redis_unreachable_the_site_keeps_working(
    tmp_path: Path,
    database_url: str,
    meili_server: meili.MeiliServer,
    engine: Engine,
    db: Session,
    qa: QA,
    make_user: UserFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer = qa.answer(make_user("author"), qa.ask(make_user("asker")))
    newbie = make_user("newbie", trust_level=0)
    settings = make_settings(
        tmp_path,
        database_url,
        meili_server.url,
        redis_url=UNREACHABLE_REDIS,
        login_failures_per_account=2,
    )
    with (
        caplog.at_level(logging.WARNING),
        TestClient(create_app(settings, engine=engine)) as browser,
    ):
        ready = browser.get("/readyz")
        assert ready.status_code == 200  # limits fail open: the site still serves...
        assert ready.json()["status"] == "ok"
        # ...and the probe says what is missing.
        assert ready.json()["checks"]["rate_limits"].startswith("degraded: Redis does not answer")
        for _ in range(4):  # past the login limit: not throttled, and never a 500
            failed = browser.post(
                "/login",
                data={
                    "login": "newbie",
                    "password": "wrong-guess-123",
                    "csrf_token": csrf_token(browser),
                },
            )
            assert failed.status_code == 401
        log_in(browser, "newbie")
        token = csrf_token(browser, "/")
        for index in range(7):  # past trust level 0's limit of 5
            posted = browser.post(
                "/b/acme/ask/new", data=_ask_form(token, index), follow_redirects=False
            )
            assert posted.status_code == 303
        vote = browser.put(
            f"/api/v1/posts/{answer.id}/vote", json={"value": 1}, headers={"X-CSRF-Token": token}
        )
        assert vote.status_code == 200
        assert browser.get("/b/acme/search").status_code == 200
    assert _threads_by(db, newbie) == 7
    assert len(_degraded_warnings(caplog)) == 1  # one outage, one warning, for every limit
