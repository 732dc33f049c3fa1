"""Shared fixtures: real databases (SQLite always, PostgreSQL when reachable, required in CI),
a real Meilisearch server for the session, the app, clients and user factories.

Every test that touches the database runs once per backend: the `database_url` fixture is
parametrized, so pytest groups the whole suite by backend.

`make test` spreads the suite over the cores with pytest-xdist (`-n auto`). Each worker is a
process with its own session: its own throwaway databases (one per backend, built by
`alembic upgrade head`), its own Meilisearch server, its own app per backend and its own
Chromium. Nothing is shared between workers but the PostgreSQL and Redis servers, where every
worker has its own database and every test its own key prefix.

How each test is isolated, and why:

- Database rows: every test that takes `db`, `app` or `clean_db` starts from empty tables,
  cleared after it (a failure leaves its rows to look at until the next test): a DELETE per
  table in one round trip, with PostgreSQL's sequences set back to 1 as TRUNCATE ... RESTART
  IDENTITY did, at a hundredth of TRUNCATE's cost. Not a transaction rolled back per test,
  because nearly every test needs real commits seen by other connections: the app under
  TestClient (its own session per request, on another thread), the worker, the view buffers,
  the concurrency tests' threads, uvicorn for the browser. Only the service tests that use `db`
  alone could run inside one outer transaction rolled back at the end (424 of about 2,100),
  and what that would save is their clearing: measured, the DELETEs take 0.7 ms on SQLite and
  2 ms on PostgreSQL, under a second for the whole suite, against a second way of isolating
  tests whose mistakes (a service's own commit, SQLite's BEGIN IMMEDIATE, a test that checks
  from another connection) would pass unseen.
- Meilisearch: every test's settings carry an index prefix of their own, so its indexes and
  search key are its own on the worker's server.
- Rate limits: every test's counters live in a fresh in-memory store, or under a prefix of
  their own in Redis.
- The app: building it costs little, but its first request makes FastAPI analyse every route
  (about a second of CPU). So a worker builds one app per set of settings that differ in more
  than the per-test values (one per backend, one per module with a `settings` of its own) and
  keeps it for the session; the `app` fixture hands it to each test with the test's settings
  and fresh per-test state (search engine, counters, caches); its write buffers (views, search
  log) are flushed when the test ends, before the tables are cleared, so nothing of one test
  reaches the next. Whether a test can share an app is judged against the settings the app was
  built with, never its current `state.settings`, which a test may replace: judged against
  those, one such test once left every later test of its worker building an app of its own
  (385 apps a run, a sixth of the suite's CPU spent analysing routes).
- The databases and apps live per backend for the whole session (`WorkerDatabases`), not in
  the parametrized fixtures that pytest tears down at every switch of backend.
- Periodic view flushes are off in tests (an hour apart): the buffers are stored when a
  client's lifespan ends or when a test flushes them, never at a moment that depends on the
  machine's load (a flush committing between a test's read and its write on SQLite fails that
  write with "database is locked").
"""

from __future__ import annotations

import email
import functools
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from community import threads, visibility
from community.all_models import Base
from community.app import create_app
from community.core import meili, migrate
from community.core.auth import Passwords
from community.core.clock import utcnow
from community.core.db import begin_write, make_engine, make_session_factory
from community.core.errors import AppError
from community.core.identity import normalise_email, normalise_username
from community.core.models import Brand, Forum, Post, Role, Thread, ThreadKind, User
from community.core.outbox import OutboxEvent, mark_done
from community.core.page_cache import PageCache
from community.core.ratelimit import RateLimiter
from community.core.schemas import AnswerIn, AskIn
from community.core.settings import Settings, normalise_database_url
from community.core.throttle import LimitStore, LoginThrottle
from community.wiring import subscribe_all
from community.worker import Worker
from kb.search import SearchEngine

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PASSWORD = "tall-orange-kettle-41"
MEILI_TEST_KEY = "test-master-key-0123456789abcdef"
# One secret per test process: a test's settings must sign as the shared app's middleware does.
SECRET_KEY = "test-secret-key-" + uuid.uuid4().hex


def _postgres_reachable() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


_PG_PROBLEM = _postgres_reachable()
if _PG_PROBLEM and IN_CI:
    raise pytest.UsageError(
        f"CI=true requires PostgreSQL at {PG_ADMIN_URL} (TEST_DATABASE_URL): {_PG_PROBLEM}"
    )
BACKENDS = ["sqlite"] if _PG_PROBLEM else ["sqlite", "postgresql"]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_reachable() -> str | None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return str(exc) or type(exc).__name__
    return None


_REDIS_PROBLEM = _redis_reachable()
if _REDIS_PROBLEM and IN_CI:
    raise pytest.UsageError(f"CI=true requires Redis at {REDIS_URL}: {_REDIS_PROBLEM}")
# Shared-counter storages the rate limiters are tested with (memory always, Redis when present).
LIMIT_STORAGES = ["memory"] if _REDIS_PROBLEM else ["memory", "redis"]


def pytest_report_header() -> list[str]:
    lines = [f"databases: {', '.join(BACKENDS)}; limit storages: {', '.join(LIMIT_STORAGES)}"]
    if _PG_PROBLEM:
        lines.append(f"PostgreSQL left out of this local run ({PG_ADMIN_URL}: {_PG_PROBLEM})")
    if _REDIS_PROBLEM:
        lines.append(f"Redis left out of this local run ({REDIS_URL}: {_REDIS_PROBLEM})")
    return lines


# --- databases -------------------------------------------------------------------------------


@dataclass
class ThrowawayPostgres:
    """A database created for this run and dropped afterwards."""

    name: str
    url: str

    @classmethod
    def create(cls, prefix: str = "community_test") -> ThrowawayPostgres:
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            # A throwaway database need not survive a crash: commits do not wait for the disk.
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        return cls(name=name, url=normalise_database_url(f"{base}/{name}"))

    def drop(self) -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def fresh_database_url(backend: str, tmp_dir: Path) -> tuple[str, Callable[[], None]]:
    """An empty database of the given backend and a function that removes it."""
    if backend == "sqlite":
        path = tmp_dir / f"{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", lambda: None
    database = ThrowawayPostgres.create()
    return database.url, database.drop


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long tests first (after pytest's grouping by backend): a worker that takes one
    late would still be at it after the other has run out of tests."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _no_autovacuum(engine: Engine) -> None:
    """Autovacuum would chase the suite's emptied tables, taking CPU the tests need; a database
    that lives for one run never needs its space back."""
    with engine.begin() as connection:
        connection.exec_driver_sql(
            ";".join(
                f'ALTER TABLE "{table.name}" SET (autovacuum_enabled = off)'
                for table in Base.metadata.sorted_tables
            )
        )


@dataclass
class BackendDatabase:
    url: str
    engine: Engine
    remove: Callable[[], None]


class WorkerDatabases:
    """The worker's database per backend, built on first use and kept until the session ends.

    `backend` is a parametrized session fixture, and pytest tears such a fixture (and all that
    depends on it) down whenever the next test wants the other parameter: under xdist a worker
    switches backends about twenty times a run. Kept here, a switch costs a lookup instead of
    a new database, its migrations and a new app."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._databases: dict[str, BackendDatabase] = {}

    def __getitem__(self, backend: str) -> BackendDatabase:
        if backend not in self._databases:
            url, remove = fresh_database_url(backend, self._tmp_path_factory.mktemp(backend))
            migrate.upgrade(url)
            engine = make_engine(url)
            if engine.dialect.name == "postgresql":
                _no_autovacuum(engine)
            self._databases[backend] = BackendDatabase(url, engine, remove)
        return self._databases[backend]

    def close(self) -> None:
        for database in self._databases.values():
            database.engine.dispose()
            database.remove()


@pytest.fixture(scope="session")
def _worker_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerDatabases]:
    databases = WorkerDatabases(tmp_path_factory)
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def database_url(backend: str, _worker_databases: WorkerDatabases) -> str:
    return _worker_databases[backend].url


@pytest.fixture(scope="session")
def engine(backend: str, _worker_databases: WorkerDatabases) -> Engine:
    return _worker_databases[backend].engine


def _empty_all_tables(engine: Engine) -> None:
    # Children before parents, so every foreign key holds after each DELETE.
    deletes = [f'DELETE FROM "{table.name}"' for table in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # One round trip (psycopg sends statements without parameters as one query). The
            # sequences restart as TRUNCATE ... RESTART IDENTITY would have made them: ids
            # begin at 1 in every test, as they do on SQLite.
            sequences = connection.execute(
                text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
            ).scalars()
            restarts = [f"SELECT setval('\"{name}\"', 1, false)" for name in sequences]
            connection.exec_driver_sql(";".join(deletes + restarts))
        else:
            for statement in deletes:
                connection.exec_driver_sql(statement)


@pytest.fixture
def clean_db(engine: Engine) -> Iterator[None]:
    """Each test starts from empty tables (cleared after, so a failure leaves evidence)."""
    yield
    _empty_all_tables(engine)


@pytest.fixture
def db(engine: Engine, clean_db: None) -> Iterator[Session]:
    with make_session_factory(engine)() as session:
        yield session


# --- Meilisearch -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def meili_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[meili.MeiliServer]:
    """A real Meilisearch for the whole run, on a free port with a temporary database."""
    server = meili.start_server(
        meili.find_binary(), tmp_path_factory.mktemp("meili"), MEILI_TEST_KEY
    )
    yield server
    server.stop()


# --- the app ---------------------------------------------------------------------------------


def make_settings(
    tmp_path: Path, database_url: str, meili_url: str | None, **extra: object
) -> Settings:
    values: dict[str, object] = {
        "instance_dir": tmp_path / "instance",
        "database_url": database_url,
        "meili_url": meili_url,
        "meili_master_key": MEILI_TEST_KEY,
        # Every test gets its own indexes on the shared server.
        "meili_index_prefix": f"t{uuid.uuid4().hex[:10]}_",
        # ...and its own rate-limit counters when they live in a shared Redis.
        "rate_limit_prefix": f"t{uuid.uuid4().hex[:10]}",
        "secret_key": SECRET_KEY,
        # The cheapest Argon2id argon2-cffi accepts keeps the suite fast; production defaults
        # are tested separately.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        "argon2_parallelism": 1,
        # Lexical search unless a test chooses a model (tests/kb/test_vectors.py and others):
        # loading and running the sentence models in every test that drains the outbox would
        # add minutes to the suite and prove nothing more.
        "search_model": "off",
        # A template that queries the database (a lazy load, an N+1) fails the test.
        "strict_queries": True,
        # No periodic flush of the view and search-log buffers while a test runs (see the
        # module's docstring): they are stored when the client stops, or when a test says so.
        "view_flush_seconds": 3600.0,
        # No anonymous page cache: many tests change rows directly (not by a web write, which
        # would drop the cached pages) and read the page again at once. Its own tests turn it
        # on (tests/community/test_page_cache*.py); it is per test state (PER_TEST_SETTINGS).
        "page_cache_seconds": 0.0,
        # Any Host: tests call the app as "testserver", "t" and more. The Host check's own tests
        # (tests/community/test_brand_hosts.py) name the hosts they allow.
        "allowed_hosts": "*",
    }
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, database_url: str, meili_server: meili.MeiliServer) -> Settings:
    return make_settings(tmp_path, database_url, meili_server.url)


# What differs from one test's settings to the next, and what the shared app is given per test.
# (The rate limits' and the page cache's store are rebuilt per test from redis_url.)
PER_TEST_SETTINGS = frozenset(
    {"instance_dir", "meili_index_prefix", "rate_limit_prefix", "redis_url", "page_cache_seconds"}
)
# The app's state, as create_app leaves it: the fixtures below know what each entry holds, so
# an entry they do not know stops the suite rather than leaking from one test into the next.
_APP_STATE = frozenset(
    {
        "settings", "engine", "session_factory", "templates", "passwords", "limit_store",
        "login_throttle", "view_counter", "article_views", "search_log", "rate_limiter",
        "search", "page_context", "page_cache",
    }
)  # fmt: skip
# Caches requests add to the state: the routes' URL table stays (the same routes), the default
# brand's name goes (another test, another brand).
_APP_STATE_CACHES = {"route_urls": True, "site_brand": False, "known_issue_banners": False}


@dataclass
class SharedApp:
    """An app and the settings it was built with: the yardstick for whether a test can share
    it (a test may replace `app.state.settings` for its own run)."""

    app: FastAPI
    built_with: Settings


@pytest.fixture(scope="session")
def _shared_apps() -> list[SharedApp]:
    """The worker's apps, one per set of settings that differ in more than the per-test values
    (one per backend, and one per module-level `settings` of their own), kept for the session
    like the databases (see WorkerDatabases)."""
    return []


def _shares_app(settings: Settings, shared: Settings) -> bool:
    return settings.model_dump(exclude=set(PER_TEST_SETTINGS)) == shared.model_dump(
        exclude=set(PER_TEST_SETTINGS)
    )


def _give_test_state(app: FastAPI, settings: Settings) -> None:
    """The state create_app would have built from this test's settings (the parts that read
    them), and none of the caches the last test's requests filled."""
    state = app.state
    state.settings = settings
    state.passwords = passwords_for(settings)
    state.limit_store = limit_store = LimitStore(settings)
    state.login_throttle = LoginThrottle(settings, limit_store)
    state.rate_limiter = RateLimiter(settings, limit_store)
    state.search = SearchEngine(settings, writes=False)
    state.page_cache = PageCache(settings)
    for name, keep in _APP_STATE_CACHES.items():
        if not keep and hasattr(state, name):
            delattr(state, name)
    unknown = set(vars(state)["_state"]) - _APP_STATE - set(_APP_STATE_CACHES)
    if unknown:
        raise RuntimeError(f"tests/conftest.py does not know the app's state {sorted(unknown)}")


def _store_buffered_writes(app: FastAPI) -> None:
    """Views and searches a test left in the app's buffers are stored now, into its own tables,
    before they are cleared: never into the next test's."""
    for buffer in (app.state.view_counter, app.state.article_views, app.state.search_log):
        buffer.flush()
        if buffer.pending():
            raise RuntimeError(f"{type(buffer).__name__} could not store what it buffered")


def _new_app(settings: Settings, engine: Engine) -> FastAPI:
    app = create_app(settings, engine=engine)
    unknown = set(vars(app.state)["_state"]) - _APP_STATE
    if unknown:
        raise RuntimeError(f"tests/conftest.py does not know the app's state {sorted(unknown)}")
    return app


@pytest.fixture
def app(
    settings: Settings, engine: Engine, clean_db: None, _shared_apps: list[SharedApp]
) -> Iterator[FastAPI]:
    """An app of the worker's built with settings like this test's, given this test's own
    per-test values and fresh state; built now if it is the first test with such settings."""
    shared = next((each for each in _shared_apps if _shares_app(settings, each.built_with)), None)
    if shared is None:
        shared = SharedApp(_new_app(settings, engine), settings)
        _shared_apps.append(shared)
    _give_test_state(shared.app, settings)
    try:
        yield shared.app
    finally:
        _store_buffered_writes(shared.app)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def make_client(app: FastAPI) -> Iterator[Callable[[], TestClient]]:
    """More independent browsers (each with its own cookie jar) against the same app."""
    clients: list[TestClient] = []

    def factory() -> TestClient:
        test_client = TestClient(app, base_url="http://testserver")
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield factory
    for test_client in clients:
        test_client.__exit__(None, None, None)


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `community` command's configuration for a test: the real test database, a fresh
    instance folder (a managed Meilisearch starts there if a command needs one), cheap hashing."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.setenv("ARGON2_TIME_COST", "1")
    monkeypatch.setenv("ARGON2_MEMORY_KIB", "8192")
    monkeypatch.setenv("ARGON2_PARALLELISM", "1")
    monkeypatch.delenv("MEILI_URL", raising=False)


@functools.cache
def _passwords(time_cost: int, memory_kib: int, parallelism: int) -> Passwords:
    return Passwords(
        Settings(
            argon2_time_cost=time_cost,
            argon2_memory_kib=memory_kib,
            argon2_parallelism=parallelism,
        )
    )


def passwords_for(settings: Settings) -> Passwords:
    """One hasher per Argon2 cost for the whole run: a Passwords holds nothing of a test (its
    timing-equalising dummy hash costs a hash to build, and every test would build it)."""
    return _passwords(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )


@functools.cache
def _password_hash(passwords: Passwords, password: str) -> str:
    return passwords.hash(password)


@pytest.fixture
def passwords(settings: Settings) -> Passwords:
    return passwords_for(settings)


def add_user(
    db: Session,
    passwords: Passwords,
    name: str,
    *,
    role: Role = Role.MEMBER,
    password: str = PASSWORD,
    trust_level: int = 1,
    **fields: Any,
) -> User:
    """The account registration makes (tests/community/test_accounts.py tests registering
    itself), without its checks' cost: the password policy and an Argon2 hash took 9 ms per
    user, and the suite makes thousands. Every user shares one hash of a password. `fields`
    are more of the account's columns (preferences, activity, dates); the address counts as
    confirmed unless `email_verified_at=None` is among them."""
    # End any read transaction first: on SQLite a reader that turns writer after another
    # connection committed fails at once ("database is locked").
    db.commit()
    username_shown, username_key = normalise_username(name)
    email, email_key = normalise_email(f"{name}@example.com")
    fields.setdefault("email_verified_at", utcnow())
    user = User(
        username=username_shown,
        username_key=username_key,
        email=email,
        email_key=email_key,
        display_name=username_shown,
        password_hash=_password_hash(passwords, password),
        password_changed_at=utcnow(),
        role=role,
        trust_level=trust_level,
        **fields,
    )
    db.add(user)
    db.commit()
    return user


@pytest.fixture
def make_user(db: Session, passwords: Passwords) -> Callable[..., User]:
    counter = iter(range(1, 10_000))

    def factory(
        username: str | None = None,
        *,
        role: Role = Role.MEMBER,
        password: str = PASSWORD,
        trust_level: int = 1,
    ) -> User:
        """An established member by default (trust level 1: posts appear at once); pass
        trust_level=0 for a brand-new account whose first post waits for review."""
        name = username or f"user{next(counter)}"
        return add_user(db, passwords, name, role=role, password=password, trust_level=trust_level)

    return factory


# --- helpers ---------------------------------------------------------------------------------


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every route of the app, looking inside included routers (FastAPI includes them lazily)."""

    def walk(routes: list[BaseRoute]) -> list[APIRoute]:
        found: list[APIRoute] = []
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            inner = getattr(route, "original_router", None)
            if inner is not None:
                found.extend(walk(inner.routes))
        return found

    return walk(app.router.routes)


def fresh(db: Session) -> None:
    """See what other connections committed: end this session's transaction (SQLite's WAL
    keeps a reader on its first snapshot) and forget loaded rows."""
    db.rollback()
    db.expire_all()


@contextmanager
def loopback_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A real HTTP server on 127.0.0.1 for what lies outside the product (the brand's helpdesk,
    its embedding service), serving `handler` on threads; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    # Polled every 10 ms for the shutdown request: the default half-second made every test
    # that used such a server wait about that long at its end.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def drain(worker: Worker) -> None:
    """Run the worker until its outbox is empty (failing if it never empties)."""
    for _ in range(20):
        if worker.run_once() == 0:
            return
    raise AssertionError("the outbox did not drain")


_CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


def csrf_token(client: TestClient, path: str = "/login") -> str:
    """The CSRF token the site would give this browser (from a page's meta tag)."""
    response = client.get(path)
    match = _CSRF_META.search(response.text)
    assert match, f"no csrf meta tag on {path} ({response.status_code})"
    return match.group(1)


def log_in(client: TestClient, login: str, password: str = PASSWORD) -> None:
    token = csrf_token(client)
    response = client.post(
        "/login",
        data={"login": login, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:500]


@pytest.fixture
def as_role(
    make_user: Callable[..., User], make_client: Callable[[], TestClient]
) -> Callable[[Role | None], tuple[TestClient, User | None]]:
    """A client signed in with a fresh account of the given role (None: anonymous)."""

    def factory(role: Role | None) -> tuple[TestClient, User | None]:
        test_client = make_client()
        if role is None:
            return test_client, None
        user = make_user(f"{role.value}{uuid.uuid4().hex[:6]}", role=role)
        log_in(test_client, user.username)
        return test_client, user

    return factory


# --- concurrency ---------------------------------------------------------------------------


def _slow_network(*_args: object) -> None:
    # A few milliseconds per statement widen every read-then-write window, so overlapping
    # transactions really interleave (on a fast loopback they otherwise often run in turn).
    time.sleep(0.003)


def run_concurrently(
    engine: Engine, actions: list[Callable[[Session], object]]
) -> list[tuple[str, str]]:
    """Run each action in its own thread and session (a write transaction), all released at
    once, with a little latency per statement. Returns ("ok", "") or (error code, message)."""
    event.listen(engine, "after_cursor_execute", _slow_network)
    try:
        return _run_at_once(engine, actions)
    finally:
        event.remove(engine, "after_cursor_execute", _slow_network)


def _run_at_once(
    engine: Engine, actions: list[Callable[[Session], object]]
) -> list[tuple[str, str]]:
    factory = make_session_factory(engine)
    barrier = threading.Barrier(len(actions))
    outcomes: list[tuple[str, str]] = [("", "") for _ in actions]

    def run(index: int, action: Callable[[Session], object]) -> None:
        with factory() as session:
            barrier.wait()
            begin_write(session)
            try:
                action(session)
                session.commit()
                outcomes[index] = ("ok", "")
            except AppError as exc:
                session.rollback()
                outcomes[index] = (exc.code, exc.message or "")

    workers = [threading.Thread(target=run, args=pair) for pair in enumerate(actions)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return outcomes


# --- a real server for browsers and process-level tests ----------------------------------------


@dataclass
class LiveServer:
    url: str
    app: FastAPI


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    port = meili.free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    yield LiveServer(url=f"http://127.0.0.1:{port}", app=app)
    server.should_exit = True
    thread.join(timeout=10)


# --- Q&A content -----------------------------------------------------------------------------


@pytest.fixture
def forum(db: Session) -> Forum:
    brand = Brand(slug="acme", name="Acme", description="", theme={}, default_locale="en")
    db.add(brand)
    db.flush()
    created = Forum(brand_id=brand.id, slug="mobile", name="Mobile", description="Phones")
    db.add(created)
    db.commit()
    return created


@dataclass
class QA:
    """Creates questions and answers through the real services."""

    db: Session
    forum: Forum
    made: int = 0

    def _unique(self, text: str) -> str:
        # Identical posts in a row are held as repeats by the spam filter, as they should be.
        self.made += 1
        return f"{text} (note {self.made})"

    def ask(
        self,
        author: User,
        title: str = "How do I move my number to an eSIM?",
        body: str | None = None,
        *,
        tags: list[str] | None = None,
        kind: ThreadKind = ThreadKind.QUESTION,
    ) -> Thread:
        self.db.commit()  # see make_user: start writing from a fresh transaction
        thread = threads.ask(
            self.db,
            author,
            self.forum,
            AskIn(
                title=title,
                body=body or self._unique("I have a new phone and want to keep my number."),
                kind=kind,
                tags=tags or [],
            ),
            locale="en",
        )
        self.db.commit()
        announce_published(self.db)
        return thread

    def answer(self, author: User, thread: Thread, body: str | None = None) -> Post:
        self.db.commit()
        text = body or self._unique("Use the app: Account > SIM.")
        post = threads.answer(self.db, author, thread, AnswerIn(body=text))
        self.db.commit()
        announce_published(self.db)
        return post


def announce_published(db: Session) -> int:
    """Run the worker's job for every post published and not yet announced (its notifications),
    as the worker would right after; the other outbox events keep waiting. How many it ran."""
    waiting = db.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.kind == visibility.ANNOUNCE_EVENT, OutboxEvent.done_at.is_(None))
        .order_by(OutboxEvent.id)
    ).all()
    for waiting_event in waiting:
        visibility.announce(db, waiting_event)
        mark_done(db, waiting_event)
    db.commit()
    return len(waiting)


@pytest.fixture
def qa(db: Session, forum: Forum) -> QA:
    return QA(db=db, forum=forum)


# --- e-mail ----------------------------------------------------------------------------------


@dataclass
class Inbox:
    """Messages a real SMTP server on loopback received, and a switch to make it refuse."""

    messages: list[Message] = field(default_factory=list)
    refuse: bool = False

    async def handle_DATA(  # noqa: N802 - aiosmtpd's handler protocol
        self, server: SMTP, session: SmtpSession, envelope: Envelope
    ) -> str:
        if self.refuse:
            return "451 4.3.0 Try again later"
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        message = email.message_from_bytes(content)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list[Message]:
        return [message for message in self.messages if message["To"] == address]

    def subject(self, index: int, address: str | None = None) -> str:
        messages = self.to(address) if address else self.messages
        return str(make_header(decode_header(messages[index]["Subject"])))

    def bodies(self) -> list[str]:
        texts = []
        for message in self.messages:
            for part in message.walk():
                if part.get_content_type() == "text/plain":
                    payload = part.get_payload(decode=True)
                    texts.append(payload.decode() if isinstance(payload, bytes) else "")
        return texts


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = meili.free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def mail_settings(settings: Settings, port: int) -> Settings:
    """The test settings with e-mail going to the loopback SMTP server on `port`."""
    return settings.model_copy(
        update={"smtp_url": f"smtp://127.0.0.1:{port}", "base_url": "https://support.example"}
    )


@pytest.fixture
def mail_worker(
    settings: Settings, engine: Engine, smtp: tuple[Inbox, int]
) -> Callable[[], Worker]:
    """Makes workers that send e-mail to the `smtp` fixture's server."""
    configured = mail_settings(settings, smtp[1])
    return lambda: Worker(configured, make_session_factory(engine))


@pytest.fixture(autouse=True, scope="session")
def _domain_events() -> None:
    """Services publish domain events; the app, the worker and the CLI connect the packages'
    handlers at start-up, and so does the suite, for the tests that call services directly."""
    subscribe_all()
