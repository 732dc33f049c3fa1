"""Templates never query: a template that reaches the database (a lazy relationship, the
N+1 of a list page) fails the tests, and logs a warning naming the template in production."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from jinja2 import ChoiceLoader, DictLoader, Environment
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from community.app import create_app
from community.core import meili
from community.core.db import QueryWhileRendering, SessionDep, make_session_factory
from community.core.models import Thread, User
from community.core.settings import Settings
from community.core.web import render
from community.tasks import NotificationMail
from tests.conftest import QA, make_settings

UserFactory = Callable[..., User]
PROBE = "probe/asker.html"


def _probe_app(settings: Settings, engine: Engine, *, eager: bool) -> FastAPI:
    """The real app plus one page whose template shows a relationship of the thread."""
    app = create_app(settings, engine=engine)
    templates: Environment = app.state.templates
    templates.loader = ChoiceLoader(
        [DictLoader({PROBE: "asked by {{ thread.author.username }}"}), templates.loader]
    )

    @app.get("/probe/{thread_id}")
    def probe(request: Request, db: SessionDep, thread_id: int) -> HTMLResponse:
        options = [selectinload(Thread.author)] if eager else []
        thread = db.get(Thread, thread_id, options=options)
        return render(request, PROBE, {"thread": thread})

    return app


def _strict_settings(tmp_path: Path, database_url: str, server: meili.MeiliServer) -> Settings:
    return make_settings(tmp_path, database_url, server.url, strict_queries=True)


def _asked(qa: QA, asker: User) -> Thread:
    thread = qa.ask(asker)
    # What the route loads comes from its own session, not the identity map of this one.
    qa.db.expunge_all()
    return thread


def test_a_lazy_load_while_rendering_fails_naming_template_and_relationship(
    tmp_path: Path,
    database_url: str,
    meili_server: meili.MeiliServer,
    engine: Engine,
    qa: QA,
    make_user: UserFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    thread = _asked(qa, make_user("asker"))
    app = _probe_app(_strict_settings(tmp_path, database_url, meili_server), engine, eager=False)
    with TestClient(app) as browser:
        page = browser.get(f"/probe/{thread.id}")
    # The security middleware turns any error into its detail-free 500 page and logs it.
    assert page.status_code == 500
    failures = [
        record.exc_info[1]
        for record in caplog.records
        if record.exc_info and isinstance(record.exc_info[1], QueryWhileRendering)
    ]
    assert len(failures) == 1
    assert PROBE in str(failures[0])
    assert "lazy load of Thread.author" in str(failures[0])


def test_data_loaded_before_rendering_renders(
    tmp_path: Path,
    database_url: str,
    meili_server: meili.MeiliServer,
    engine: Engine,
    qa: QA,
    make_user: UserFactory,
) -> None:
    thread = _asked(qa, make_user("asker"))
    app = _probe_app(_strict_settings(tmp_path, database_url, meili_server), engine, eager=True)
    with TestClient(app) as browser:
        page = browser.get(f"/probe/{thread.id}")
    assert page.status_code == 200
    assert page.text == "asked by asker"


def test_without_strict_queries_the_page_renders_and_the_template_is_logged(
    settings: Settings,
    engine: Engine,
    qa: QA,
    make_user: UserFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    thread = _asked(qa, make_user("asker"))
    production = settings.model_copy(update={"strict_queries": False})
    app = _probe_app(production, engine, eager=False)
    with TestClient(app) as browser, caplog.at_level(logging.WARNING, "community.core.db"):
        page = browser.get(f"/probe/{thread.id}")
    assert page.status_code == 200
    assert page.text == "asked by asker"
    assert any(
        PROBE in record.getMessage() and "Thread.author" in record.getMessage()
        for record in caplog.records
    )


def test_an_email_template_that_would_query_fails_too(
    settings: Settings, engine: Engine, db: Session, make_user: UserFactory
) -> None:
    mail = NotificationMail(settings, make_session_factory(engine))
    reader = make_user("reader")
    context = {"subject": "A new answer", "link": "http://testserver/t/1"}

    shown = mail._render("notification.txt", user=reader, **context)
    assert "Hello reader," in shown

    db.expire(reader)  # its name now needs a query: the template would make it
    with pytest.raises(QueryWhileRendering, match=r"email/notification\.txt"):
        mail._render("notification.txt", user=reader, **context)
