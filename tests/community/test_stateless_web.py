"""Web processes keep no state of their own: a sign-in made by one process is honoured by
another on the same database (sessions live in the database, signed with the shared SECRET_KEY),
and signing out on one ends it on every one. (Rate-limit and login-throttle counters shared
through Redis: tests/moderation/test_ratelimit.py; view counts from several processes:
tests/community/test_views.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from community.app import create_app
from community.core import meili
from community.core.models import User
from tests.conftest import csrf_token, log_in, make_settings


def test_a_session_made_by_one_web_process_is_honoured_and_ended_by_another(
    tmp_path: Path,
    database_url: str,
    meili_server: meili.MeiliServer,
    engine: Engine,
    make_user: Callable[..., User],
) -> None:
    def web_process(name: str) -> FastAPI:
        return create_app(
            make_settings(tmp_path / name, database_url, meili_server.url), engine=engine
        )

    make_user("roaming")
    first, second = web_process("a"), web_process("b")
    with TestClient(first) as on_first, TestClient(second) as on_second:
        log_in(on_first, "roaming")
        # The same browser (its cookies) is sent to the other process by the load balancer.
        on_second.cookies.update(on_first.cookies)
        me = on_second.get("/api/v1/me")
        assert me.status_code == 200
        assert me.json()["username"] == "roaming"
        logout = on_second.post(
            "/logout", data={"csrf_token": csrf_token(on_second, "/")}, follow_redirects=False
        )
        assert logout.status_code == 303
        assert on_first.get("/api/v1/me").status_code == 401
