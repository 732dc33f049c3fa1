"""Front-end files: the vendored htmx is the pinned one, and no secret reaches a browser."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fastapi.testclient import TestClient

from community.settings import Settings
from tests.conftest import MEILI_TEST_KEY

ROOT = Path(__file__).resolve().parents[2]


def test_vendored_htmx_matches_its_recorded_hash() -> None:
    table = (ROOT / "static" / "vendor" / "VENDORED.md").read_text()
    recorded = re.search(r"htmx-2\.0\.11\.min\.js \|.*\| ([0-9a-f]{64}) \|", table)
    assert recorded
    actual = hashlib.sha256((ROOT / "static/vendor/htmx-2.0.11.min.js").read_bytes()).hexdigest()
    assert actual == recorded.group(1)


def test_pages_load_htmx_and_config_from_our_origin(client: TestClient) -> None:
    page = client.get("/")
    assert '<script src="/static/vendor/htmx-2.0.11.min.js"' in page.text
    assert '"selfRequestsOnly":true' in page.text
    assert '"allowEval":false' in page.text
    asset = client.get("/static/vendor/htmx-2.0.11.min.js")
    assert asset.status_code == 200
    assert asset.headers["x-content-type-options"] == "nosniff"


def test_no_secret_reaches_a_browser(client: TestClient, settings: Settings) -> None:
    secrets = [MEILI_TEST_KEY, settings.effective_secret_key]
    bodies = [client.get(path).text for path in ("/", "/login", "/register", "/openapi.json")]
    bodies += [path.read_text(errors="ignore") for path in (ROOT / "static").rglob("*.*")]
    for body in bodies:
        for secret in secrets:
            assert secret not in body
