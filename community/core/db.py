"""Database plumbing: the declarative base, column types, engines and the per-request session."""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    Integer,
    MetaData,
    create_engine,
    event,
    insert,
    inspect,
    literal,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import (
    DeclarativeBase,
    ORMExecuteState,
    Session,
    make_transient_to_detached,
    sessionmaker,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

logger = logging.getLogger(__name__)

# Stable constraint names: Alembic needs them to alter or drop constraints, SQLite batch mode too.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def str_enum(enum_class: type[enum.StrEnum]) -> Enum:
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        validate_strings=True,
        length=20,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use community.core.clock.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _configure_sqlite(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer commits; busy_timeout waits instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    if connection.get_execution_options().get(SQLITE_IMMEDIATE):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


SQLITE_IMMEDIATE = "community_sqlite_immediate"


def begin_write(session: Session) -> None:
    """Start the session's transaction as a writer.

    On SQLite a deferred transaction that reads and then writes fails at once ("database is
    locked") when another writer got in between; BEGIN IMMEDIATE takes the write lock up front
    and waits its turn (busy_timeout) instead. PostgreSQL needs nothing here: its row locks do
    the ordering. Call before the first query of the transaction.
    """
    if session.in_transaction():
        return
    if session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={SQLITE_IMMEDIATE: True})


# The database could not serve the request right now (no pooled connection in time, the server
# gone or restarting, SQLite's write lock held too long): the client should retry, it did
# nothing wrong, and nothing was changed.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    PoolTimeout,
    OperationalError,
    DisconnectionError,
)
RETRY_AFTER_SECONDS = 5

DEFAULT_CONCURRENCY = 16
# How long a request may wait for a pooled connection. Admission control (community.core.admission)
# keeps requests from ever waiting this long; if one still does, it gets a 503, not a stall.
POOL_TIMEOUT_SECONDS = 10


def pool_sizes(concurrency: int) -> dict[str, int]:
    """Connections for `concurrency` requests at once: one each for its session, plus a short
    second one some pages take for cached lookups, plus the embedded worker and the view
    flushers. Never fewer than the admitted requests can hold, so none waits on another."""
    return {"pool_size": concurrency, "max_overflow": concurrency + 6}


def dialect_insert(db: Session | str) -> Callable[..., Any]:
    """The INSERT construct with ON CONFLICT clauses of the session's dialect (or the named one)."""
    name = db if isinstance(db, str) else db.get_bind().dialect.name
    return pg_insert if name == "postgresql" else sqlite_insert


def insert_missing(db: Session, model: type[Base], rows: list[dict[str, Any]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING: rows whose unique key exists already are left alone,
    also when a concurrent transaction inserts the same key first (PostgreSQL waits for it and
    then skips the row instead of failing on the unique index). Returns how many were added."""
    if not rows:
        return 0
    # The rows as parameters of one statement built once (never a multi-row VALUES, compiled on
    # every call). Counted from RETURNING: the driver reports no row count for many rows (-1).
    if db.autoflush:
        db.flush()  # as the ORM's statements do: rows these may refer to are written first
    statement = _insert_or_skip(db.get_bind().dialect.name, model)
    added = db.execute(statement, rows[0] if len(rows) == 1 else rows)
    return len(added.all())


@functools.cache
def _insert_or_skip(dialect_name: str, model: type[Base]) -> Any:
    # On the table, not the mapped class: a plain INSERT, without the ORM's bulk-insert machinery.
    table = model.__table__
    return dialect_insert(dialect_name)(table).on_conflict_do_nothing().returning(literal(1))


def insert_now(db: Session, obj: Base) -> bool:
    """Store a new object with one plain INSERT ... RETURNING on its table and make it
    persistent as if loaded: what a flush of this one object writes, without the unit of work
    (a tenth of a new answer's Python time). Column defaults apply as in a flush. Returns False,
    changing nothing, when the object needs the unit of work: it is stored already, belongs to
    another session, spans tables, or has relationship changes to work out (set related objects
    with set_committed_value and their ids as columns). Other pending changes in the session
    are flushed first, as the unit of work would order them."""
    state = inspect(obj)
    if state.key is not None or state.session_id not in (None, db.hash_key):
        return False
    mapper = state.mapper
    if len(mapper.tables) != 1 or any(
        state.attrs[relation.key].history.has_changes() for relation in mapper.relationships
    ):
        return False
    if state.session_id is not None:
        db.expunge(obj)
    if db.autoflush:
        db.flush()  # rows it may refer to first
    table = mapper.local_table
    # Column properties read from other tables (a thread's brand) are not written; one the
    # caller already knows stays as given, the others load when first read.
    stored = [
        prop for prop in mapper.column_attrs if getattr(prop.columns[0], "table", None) is table
    ]
    given = {prop.columns[0].key: state.dict[prop.key] for prop in stored if prop.key in state.dict}
    derived = {
        prop.key: state.dict[prop.key]
        for prop in mapper.column_attrs
        if getattr(prop.columns[0], "table", None) is not table and prop.key in state.dict
    }
    row = db.execute(_insert_returning(table), given).one()
    for prop in stored:
        set_committed_value(obj, prop.key, row._mapping[prop.columns[0]])
    for key, value in derived.items():
        set_committed_value(obj, key, value)
    make_transient_to_detached(obj)
    db.add(obj)
    return True


@functools.cache
def _insert_returning(table: Any) -> Any:
    return insert(table).returning(*table.c)


def _create_private_file(path: str | None) -> None:
    """Create the SQLite file readable by its owner only, like the instance's secrets (SQLite
    gives its -wal and -shm files the database file's permissions)."""
    if not path:
        return
    # An existing database keeps its permissions; a missing folder: SQLite says so.
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def make_engine(url: str, *, concurrency: int = DEFAULT_CONCURRENCY, **kwargs: Any) -> Engine:
    pool = {**pool_sizes(concurrency), "pool_timeout": POOL_TIMEOUT_SECONDS, **kwargs}
    if url.startswith("sqlite"):
        if ":memory:" in url or url in ("sqlite://", "sqlite:///"):
            pool = kwargs  # one shared in-memory database: SQLAlchemy's own pool choice
        else:
            _create_private_file(make_url(url).database)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **pool)
        # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy's documented recipe
        # is to switch it off (isolation_level=None) and emit BEGIN ourselves.
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    # No JIT: it pays off on long analytical scans, while our statements are short and a
    # misestimated one (the insights panels' EXISTS subqueries) spent a second compiling
    # (measured: 0.5 s query, 1.0 s of JIT) to run 30 ms of work.
    engine = create_engine(url, connect_args={"options": "-c jit=off"}, **pool)
    _ping_idle_connections(engine)
    return engine


# A pooled connection idle longer than this is pinged before use (a restarted server, a proxy's
# idle timeout); one back in use sooner is not. pool_pre_ping pinged on every checkout: two of
# the sixteen round trips of a vote, for connections used a few milliseconds before.
PING_AFTER_IDLE_SECONDS = 2.0
_IDLE_SINCE = "idle_since"


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's documented custom pessimistic check: a checkout that raises
    DisconnectionError has the pool drop that connection and hand out another. A connection that
    dies while in steady use fails its statement instead (a 503); the pool then drops every
    connection as old as it, as with pre-ping."""

    def idle_from_now(_dbapi_connection: Any, record: ConnectionPoolEntry, *_rest: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("the pooled connection is gone") from exc
        if not alive:
            raise DisconnectionError("the pooled connection is gone")

    event.listen(engine, "connect", idle_from_now)
    event.listen(engine, "checkin", idle_from_now)
    event.listen(engine, "checkout", ping_if_idle)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: templates render after the commit without re-querying every row.
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for the reads around a request that need no transaction (who the viewer is): on
    PostgreSQL each statement commits on its own, which spares the BEGIN and ROLLBACK round trips
    around one SELECT (psycopg sends BEGIN apart). A write made in one (a session touch) commits
    statement by statement. SQLite: ordinary sessions (no round trips to spare)."""
    if engine.dialect.name != "postgresql":
        return make_session_factory(engine)
    reads = engine.execution_options(isolation_level="AUTOCOMMIT")
    return sessionmaker(bind=reads, expire_on_commit=False, autoflush=True)


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One session per request. Routes commit once; anything else is rolled back.
    Requests that change state start as writers (see begin_write).

    A coroutine, so that opening and closing the session cost no trip through the thread pool
    (FastAPI runs a plain generator's two halves in worker threads): whatever talks to the
    database goes to a worker thread, the rest runs on the event loop."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    session = factory()
    try:
        if request.method not in _READ_METHODS and session.get_bind().dialect.name == "sqlite":
            await run_in_threadpool(begin_write, session)  # BEGIN IMMEDIATE waits for the lock
        yield session
    except Exception:
        await run_in_threadpool(session.close)  # rolls back (a 4xx, or a failure)
        raise
    except BaseException:
        session.close()  # a cancelled request cannot await: rolled back here, rarely
        raise
    if session.in_transaction():
        await run_in_threadpool(session.close)  # a ROLLBACK to send
    else:
        session.close()  # committed (or never used): nothing to send


SessionDep = Annotated[Session, Depends(get_db)]


# --- no queries while rendering --------------------------------------------------------------


class QueryWhileRendering(RuntimeError):
    """A template made the database work (a lazy relationship, an expired attribute, a query
    passed in unexecuted): the route or service feeding it should have loaded the data."""


@dataclass(frozen=True)
class _Rendering:
    template: str
    strict: bool


_rendering: ContextVar[_Rendering | None] = ContextVar("community_rendering", default=None)


@contextlib.contextmanager
def no_queries(template: str, *, strict: bool) -> Iterator[None]:
    """While the block runs, any ORM statement on any session is a fault of `template`: it
    raises QueryWhileRendering when `strict`, else it runs and is logged as a warning.

    A context variable, not a flag on a session: the template reaches the database through
    whichever session loaded its objects, and concurrent requests each have their own context.
    """
    token = _rendering.set(_Rendering(template, strict))
    try:
        yield
    finally:
        _rendering.reset(token)


def _describe(state: ORMExecuteState) -> str:
    path = state.loader_strategy_path
    relationship = getattr(path, "prop", None) if path is not None else None
    if state.is_relationship_load and relationship is not None:
        return f"lazy load of {relationship}"
    if state.is_column_load:
        return f"reload of expired attributes of {state.bind_mapper}"
    return " ".join(str(state.statement).split())[:300]


def _check_not_rendering(state: ORMExecuteState) -> None:
    rendering = _rendering.get()
    if rendering is None:
        return
    problem = (
        f"template {rendering.template} queried the database ({_describe(state)}); "
        "load what it shows in the route or service before rendering"
    )
    if rendering.strict:
        raise QueryWhileRendering(problem)
    logger.warning(problem)


# On the Session class, not one sessionmaker: every session the process opens (requests, the
# cached lookups some pages make, tests' own) reaches the check. Outside no_queries() it costs
# one context-variable read per statement.
event.listen(Session, "do_orm_execute", _check_not_rendering)
# What the readiness probe catches: any failure to reach or use the database.
DatabaseError = SQLAlchemyError


def ping(db: Session) -> None:
    """A round trip to the database; DatabaseError when it does not answer."""
    db.execute(text("SELECT 1"))
