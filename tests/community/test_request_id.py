"""Every response names its request (X-Request-ID: the proxy's when well formed, else ours); the
outbox rows a request writes keep the id, and the worker's log lines for those jobs carry it, one
JSON object per line when LOG_FORMAT=json."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community.core import logs
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.models import User
from community.core.outbox import OutboxEvent
from community.core.settings import Settings
from community.worker import Worker
from tests.conftest import QA, csrf_token, drain, fresh, log_in

GENERATED = re.compile(r"[0-9a-f]{32}")


def test_each_response_carries_a_new_request_id(client: TestClient) -> None:
    first = client.get("/login").headers["X-Request-ID"]
    second = client.get("/no/such/page").headers["X-Request-ID"]

    assert GENERATED.fullmatch(first) and GENERATED.fullmatch(second)
    assert first != second


@pytest.mark.parametrize(
    "incoming", ["edge-7f3a9c01", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "Root=1-67891233:abc.d"]
)
def test_a_well_formed_incoming_id_is_kept(client: TestClient, incoming: str) -> None:
    response = client.get("/login", headers={"X-Request-ID": incoming})

    assert response.headers["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming", ["", "short", "a" * 65, "two words here", "<script>alert(1)</script>", "id;drop"]
)
def test_a_malformed_incoming_id_is_replaced(client: TestClient, incoming: str) -> None:
    response = client.get("/login", headers={"X-Request-ID": incoming})

    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


@pytest.fixture
def captured_jobs_log(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """The jobs' log lines as the JSON handler of a real process writes them."""
    stream = io.StringIO()
    handler = logs.make_handler(Settings(log_format="json"), stream)
    jobs_logger = logging.getLogger("community.core.jobs")
    jobs_logger.addHandler(handler)
    caplog.set_level(logging.DEBUG, logger="community.core.jobs")
    try:
        yield stream
    finally:
        jobs_logger.removeHandler(handler)


def test_the_request_id_reaches_the_outbox_and_the_workers_log(
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
    engine: Engine,
    settings: Settings,
    captured_jobs_log: io.StringIO,
) -> None:
    thread = qa.ask(make_user("asker"))
    drain(Worker(settings, make_session_factory(engine)))  # the question's own jobs
    helper = make_user("helper")
    browser = make_client()
    log_in(browser, helper.username)
    token = csrf_token(browser, f"/t/{thread.id}")

    answered = browser.post(
        f"/t/{thread.id}/answers",
        data={"body": "Settings > Mobile > Add eSIM.", "csrf_token": token},
        headers={"X-Request-ID": "edge-answer-0001"},
        follow_redirects=False,
    )

    assert answered.headers["X-Request-ID"] == "edge-answer-0001"
    fresh(db)
    # What is due now (the question's badge check, queued by the worker, waits a minute).
    rows = list(
        db.scalars(
            select(OutboxEvent).where(
                OutboxEvent.done_at.is_(None), OutboxEvent.available_at <= utcnow()
            )
        )
    )
    assert rows and {row.request_id for row in rows} == {"edge-answer-0001"}
    captured_jobs_log.seek(0)
    captured_jobs_log.truncate()

    drain(Worker(settings, make_session_factory(engine)))

    lines = [json.loads(line) for line in captured_jobs_log.getvalue().splitlines()]
    done = [line for line in lines if line["message"].endswith("done")]
    assert {row.kind for row in rows} <= {
        kind for line in done for kind in re.findall(r"\((.+)\)", line["message"])
    }
    assert all(line["request_id"] == "edge-answer-0001" for line in done), done


def test_json_lines_have_time_level_logger_message_request_id_and_exception() -> None:
    stream = io.StringIO()
    probe = logging.getLogger("tests.request_id_probe")
    probe.addHandler(logs.make_handler(Settings(log_format="json"), stream))
    probe.propagate = False
    try:
        with logs.request_id_bound("edge-json-0001"):
            try:
                raise ValueError("bad value")
            except ValueError:
                probe.exception("could not %s", "parse")
        probe.warning("outside any request")
    finally:
        probe.handlers.clear()
        probe.propagate = True

    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["level"] == "ERROR"
    assert inside["logger"] == "tests.request_id_probe"
    assert inside["message"] == "could not parse"
    assert inside["request_id"] == "edge-json-0001"
    assert "ValueError: bad value" in inside["exception"]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", inside["time"])
    assert "request_id" not in outside and outside["level"] == "WARNING"


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configuring_twice_leaves_one_handler_in_the_chosen_format(
    root_logger: logging.Logger,
) -> None:
    logging.basicConfig()  # what the CLI sets up before a command runs

    logs.configure_logging(Settings(log_format="text", log_level="WARNING"))
    logs.configure_logging(Settings(log_format="json", log_level="INFO"))

    ours = [h for h in root_logger.handlers if type(h) is not logging.StreamHandler]
    plain = [h for h in root_logger.handlers if type(h) is logging.StreamHandler]
    assert plain == []
    mine = [h for h in ours if isinstance(h.formatter, type(logs.json_formatter()))]
    assert len(mine) == 1
    assert root_logger.level == logging.INFO


def test_a_batch_job_names_each_request_once() -> None:
    assert logs.batch_request_id(["a-000001", None, "b-000002", "a-000001"]) == (
        "a-000001,b-000002"
    )
    assert logs.batch_request_id([None, None]) is None
    with logs.request_id_bound("a-000001,b-000002"):
        assert logs.origin_request_id() == "a-000001"
