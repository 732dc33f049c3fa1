"""Front-end files: the vendored htmx is the pinned one, and no secret reaches a browser."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fastapi.testclient import TestClient

from community.core.settings import Settings
from tests.conftest import MEILI_TEST_KEY

ROOT = Path(__file__).resolve().parents[2]


def test_vendored_files_match_their_recorded_hashes() -> None:
    vendor = ROOT / "static" / "vendor"
    table = (vendor / "VENDORED.md").read_text()
    recorded = dict(re.findall(r"^\| (\S+) \|.*\| ([0-9a-f]{64}) \|$", table, re.MULTILINE))
    assert {"htmx-2.0.11.min.js", "swagger-ui-5.36.0/swagger-ui-bundle.js"} <= set(recorded)
    for name, digest in recorded.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    scripts_and_styles = {
        str(path.relative_to(vendor))
        for path in vendor.rglob("*")
        if path.suffix in (".js", ".css")
    }
    assert scripts_and_styles == set(recorded), "every vendored file is recorded"


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
    bodies += [p.read_text(errors="ignore") for p in (ROOT / "static").rglob("*.*") if p.is_file()]
    for body in bodies:
        for secret in secrets:
            assert secret not in body
