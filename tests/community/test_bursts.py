"""Bursts: more requests at once than the site can serve queue or get a quick 503, never a stall
and never a 500, on a real server with the production engine and pool sizes.

Before admission control, 200 simultaneous requests filled the thread pool with requests
waiting for a database connection while the requests holding the connections waited for a
thread to close their session: the site hung until the pool timed out, then answered 500.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.types import Receive, Scope, Send

from community.app import create_app
from community.core.admission import AdmissionControl
from community.core.api_tokens import create_token
from community.core.auth import start_session
from community.core.models import Post, Role, User
from community.core.security import send_unavailable, session_cookie_name
from community.core.settings import Settings
from tests.conftest import QA, LiveServer, fresh, make_settings

T = TypeVar("T")
BURST = 200
# The stall this guards against lasted 30-90 s; a burst is served in a few seconds here.
BURST_SECONDS = 30


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on a thread of its own: the browser tests' Playwright keeps an event loop
    running on the main thread for the whole session."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


@dataclass
class Burst:
    statuses: Counter[int]
    seconds: float
    retry_after_missing: int


def _burst(requests: list[Callable[[httpx.AsyncClient], object]]) -> Burst:
    async def run() -> Burst:
        limits = httpx.Limits(max_connections=len(requests) + 10, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=BURST_SECONDS * 2, limits=limits) as client:
            started = time.monotonic()
            responses = await asyncio.gather(*(make(client) for make in requests))  # type: ignore[misc]
            seconds = time.monotonic() - started
        statuses = Counter(response.status_code for response in responses)
        missing = sum(
            1 for r in responses if r.status_code == 503 and not r.headers.get("retry-after")
        )
        return Burst(statuses=statuses, seconds=seconds, retry_after_missing=missing)

    return _run(run())


@pytest.fixture
def burst_app(tmp_path: object, database_url: str, meili_server: object, clean_db: None) -> FastAPI:
    """The app as production builds it: its own engine and pool, sized from the settings."""
    settings = make_settings(
        tmp_path,  # type: ignore[arg-type]
        database_url,
        meili_server.url,  # type: ignore[attr-defined]
        # Every vote of the burst must count, so no rate limit answers first; the admission
        # settings are the defaults a site runs with.
        rate_limits_enabled=False,
        embedded_worker=False,
    )
    return create_app(settings)


@pytest.fixture
def burst_server(burst_app: FastAPI) -> Iterator[LiveServer]:
    import threading

    import uvicorn

    from community.core.meili import free_port

    port = free_port()
    config = uvicorn.Config(
        burst_app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", backlog=2048
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield LiveServer(url=f"http://127.0.0.1:{port}", app=burst_app)
    server.should_exit = True
    thread.join(timeout=30)


def _assert_served(burst: Burst) -> None:
    assert all(status < 500 for status in burst.statuses), burst.statuses
    assert burst.statuses == Counter({200: BURST}), burst.statuses
    assert burst.seconds < BURST_SECONDS, f"{burst.seconds:.1f} s for {BURST} requests"


def test_a_burst_of_token_calls_is_served(
    burst_server: LiveServer, db: Session, make_user: Callable[..., User]
) -> None:
    user = make_user("burst_token")
    _token, raw = create_token(db, user, "burst")
    db.commit()
    url = f"{burst_server.url}/api/v1/me"
    headers = {"authorization": f"Bearer {raw}"}
    burst = _burst([lambda c: c.get(url, headers=headers) for _ in range(BURST)])
    _assert_served(burst)


def test_a_burst_of_signed_in_and_anonymous_thread_pages_is_served(
    burst_server: LiveServer, db: Session, qa: QA, make_user: Callable[..., User]
) -> None:
    author = make_user("burst_author")
    thread = qa.ask(author, "Why does my router drop the connection every night?")
    qa.answer(make_user("burst_helper"), thread)
    reader = make_user("burst_reader")
    token = start_session(db, reader, max_age=timedelta(days=1), ip=None, user_agent=None)
    db.commit()
    url = f"{burst_server.url}/t/{thread.id}"
    cookie_header = {"cookie": f"{session_cookie_name(burst_server.app.state.settings)}={token}"}

    signed_in = _burst([lambda c: c.get(url, headers=cookie_header) for _ in range(BURST)])
    _assert_served(signed_in)
    anonymous = _burst([lambda c: c.get(url) for _ in range(BURST)])
    _assert_served(anonymous)


def test_a_burst_of_votes_is_served_and_every_vote_counts(
    burst_server: LiveServer, db: Session, qa: QA, make_user: Callable[..., User]
) -> None:
    author = make_user("burst_asker")
    thread = qa.ask(author, "How do I reset the voicemail PIN?")
    answer = qa.answer(make_user("burst_answerer"), thread)
    voters = [User(username=f"voter{i}", display_name=f"Voter {i}", role=Role.MEMBER, trust_level=1)
              for i in range(BURST)]  # fmt: skip
    for voter in voters:
        voter.username_key = voter.username
    db.add_all(voters)
    db.flush()
    tokens = [create_token(db, voter, "burst")[1] for voter in voters]
    db.commit()
    url = f"{burst_server.url}/api/v1/posts/{answer.id}/vote"

    def vote(raw: str) -> Callable[[httpx.AsyncClient], object]:
        return lambda c: c.put(url, json={"value": 1}, headers={"authorization": f"Bearer {raw}"})

    burst = _burst([vote(raw) for raw in tokens])
    _assert_served(burst)
    fresh(db)
    assert db.scalar(select(Post.upvotes).where(Post.id == answer.id)) == BURST


# --- the admission gate itself --------------------------------------------------------------


class _Held:
    """An app whose requests wait until released: lets a test fill every slot."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.entered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _asgi_client(app: AdmissionControl) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def test_over_capacity_a_request_waits_in_line_and_then_is_served() -> None:
    held = _Held()
    gate = AdmissionControl(
        held, limit=1, queue_limit=10, queue_seconds=30, refuse=send_unavailable
    )

    async def run() -> list[int]:
        async with _asgi_client(gate) as client:
            first = asyncio.ensure_future(client.get("/a"))
            second = asyncio.ensure_future(client.get("/b"))
            while gate.waiting < 1:
                await asyncio.sleep(0.01)
            assert held.entered == 1  # the second waits outside the app
            held.release.set()
            return [(await first).status_code, (await second).status_code]

    assert _run(run()) == [200, 200]


def test_a_full_line_gets_a_quick_503_with_retry_after() -> None:
    held = _Held()
    gate = AdmissionControl(held, limit=1, queue_limit=0, queue_seconds=30, refuse=send_unavailable)

    async def run() -> httpx.Response:
        async with _asgi_client(gate) as client:
            first = asyncio.ensure_future(client.get("/api/v1/me"))
            while held.entered < 1:
                await asyncio.sleep(0.01)
            started = time.monotonic()
            refused = await client.get("/api/v1/me")
            assert time.monotonic() - started < 5
            held.release.set()
            assert (await first).status_code == 200
            return refused

    refused = _run(run())
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "unavailable"


def test_a_request_that_waits_too_long_gets_a_503_and_frees_its_place() -> None:
    held = _Held()
    gate = AdmissionControl(
        held, limit=1, queue_limit=5, queue_seconds=0.3, refuse=send_unavailable
    )

    async def run() -> int:
        async with _asgi_client(gate) as client:
            first = asyncio.ensure_future(client.get("/t/1"))
            while held.entered < 1:
                await asyncio.sleep(0.01)
            timed_out = await client.get("/t/1")
            assert gate.waiting == 0
            held.release.set()
            await first
            return timed_out.status_code

    assert _run(run()) == 503


def test_static_files_and_liveness_never_wait() -> None:
    held = _Held()
    gate = AdmissionControl(held, limit=1, queue_limit=0, queue_seconds=1, refuse=send_unavailable)

    async def run() -> list[int]:
        async with _asgi_client(gate) as client:
            first = asyncio.ensure_future(client.get("/t/1"))
            while held.entered < 1:
                await asyncio.sleep(0.01)
            # Both pass the full gate and reach the app, which answers them once released.
            probe = asyncio.ensure_future(client.get("/healthz"))
            static = asyncio.ensure_future(client.get("/static/app.css"))
            while held.entered < 3:
                await asyncio.sleep(0.01)
            held.release.set()
            return [(await r).status_code for r in (probe, static, first)]

    assert _run(run()) == [200, 200, 200]


def test_pool_exhaustion_is_a_503_not_a_500(
    settings: Settings, database_url: str, clean_db: None
) -> None:
    """If a request still cannot get a connection in time, it is told to retry."""
    from fastapi.testclient import TestClient

    from community.core.db import make_engine

    engine = make_engine(database_url, concurrency=1, pool_timeout=0.2, max_overflow=0)
    app = create_app(settings, engine=engine)
    held = engine.connect()  # the only connection
    try:
        with TestClient(app) as client:
            response = client.get("/api/v1/brands")
            page = client.get("/")
    finally:
        held.close()
        engine.dispose()
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json()["error"]["code"] == "unavailable"
    assert page.status_code == 503
