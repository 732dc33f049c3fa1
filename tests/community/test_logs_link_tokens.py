"""E-mailed links' tokens never reach the logs: uvicorn's access lines and our own warnings name
the path with the token hidden."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import pytest
from uvicorn.config import LOGGING_CONFIG

from community.core.logs import configure_logging, make_handler
from community.core.settings import Settings

TOKEN = "Zq3xLkP0-secret_TOKEN"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture
def uvicorn_logging_restored() -> Iterator[None]:
    """uvicorn's dictConfig changes its loggers for the whole process: put them back."""
    saved = {
        name: (list(logger.handlers), logger.propagate, logger.level)
        for name in UVICORN_LOGGERS
        for logger in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, propagate, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate, logger.level = propagate, level


def test_access_lines_hide_link_tokens_after_uvicorns_own_logging_setup(
    settings: Settings, uvicorn_logging_restored: None
) -> None:
    configure_logging(settings)
    logging.config.dictConfig(LOGGING_CONFIG)  # what uvicorn does in each web process
    access = logging.getLogger("uvicorn.access")
    for path in (f"/password/reset/{TOKEN}", f"/email/confirm/{TOKEN}", f"/email/change/{TOKEN}"):
        record = access.makeRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("192.0.2.1:5000", "GET", path, "1.1", 200),
            None,
        )
        assert access.filter(record)
        line = record.getMessage()
        assert TOKEN not in line and "[hidden]" in line
    kept = access.makeRecord(
        "uvicorn.access", logging.INFO, __file__, 1, "%s", ("/email/confirm/resend",), None
    )
    assert access.filter(kept) and kept.getMessage() == "/email/confirm/resend"


def test_our_warnings_hide_link_tokens(settings: Settings) -> None:
    stream = io.StringIO()
    handler = make_handler(settings, stream)
    logger = logging.getLogger("community.test_logs_link_tokens")
    logger.addHandler(handler)
    try:
        logger.warning("database unavailable on %s: %s", f"/password/reset/{TOKEN}", "gone")
        logger.warning(f"unformatted /email/change/{TOKEN} line")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert TOKEN not in written
    assert written.count("[hidden]") == 2
