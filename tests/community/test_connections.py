"""PostgreSQL connections as the site uses them (community/core/db.py), on a real server: a
pooled connection that died while idle is replaced before use, without the request noticing; one
back in use within PING_AFTER_IDLE_SECONDS is not pinged (a dead one fails its statement, and the
pool recovers on the next checkout); the viewer's reads run outside a transaction."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from community.core import db as database
from tests.conftest import PG_ADMIN_URL, ThrowawayPostgres


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    throwaway = ThrowawayPostgres.create()
    yield throwaway.url
    throwaway.drop()


@pytest.fixture
def pool(postgres_url: str) -> Iterator[Engine]:
    engine = database.make_engine(postgres_url, concurrency=1, max_overflow=0)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return pid


def _terminate(pid: int) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # Until the backend is gone, the pool's next statement could still reach it.
        for _ in range(200):
            row = admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            if row is None:
                return
            admin.execute("SELECT pg_sleep(0.01)")
    raise AssertionError(f"backend {pid} did not end")


def test_a_connection_that_died_while_idle_is_replaced_before_use(
    pool: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(pool)
    _terminate(first)
    # As if it had been idle in the pool longer than the threshold (a restarted server at night).
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend_pid(pool) != first  # no error: the ping found it dead, the pool replaced it


def test_a_connection_in_steady_use_is_not_pinged_and_the_pool_recovers(
    pool: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 3600.0)
    first = _backend_pid(pool)
    _terminate(first)
    # Back in use at once: not pinged, so the statement meets the dead connection (the request
    # would get a 503, as it would with any connection lost mid-request)...
    with pytest.raises(OperationalError), pool.connect() as connection:
        connection.execute(text("SELECT 1"))
    # ...and the pool does not hand it out again.
    assert _backend_pid(pool) != first


def test_the_viewers_reads_hold_no_transaction(pool: Engine) -> None:
    reads = database.make_read_session_factory(pool)
    with reads() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            state = admin.execute(
                "SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
        # An ordinary session would be "idle in transaction" here, its BEGIN sent before the
        # SELECT and a ROLLBACK to come.
        assert state == ("idle",)
    writes = database.make_session_factory(pool)
    with writes() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            state = admin.execute(
                "SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
        assert state == ("idle in transaction",)
