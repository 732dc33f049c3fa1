"""What a process loads is what it runs (docs/performance.md, "Memory"): a web process with
semantic search off serves its pages without numpy, the embedders, the language detector or the
password and look-alike tables, and the CLI (which `community serve --workers N`'s supervisor is,
and which every web process re-imports first) loads neither the site nor the worker.

Each check runs in a fresh interpreter: this test process has imported everything already.
Speed and RSS figures are bench/bench_memory.py's, not assertions here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from community.core import migrate
from community.core.db import make_engine, make_session_factory
from community.core.models import Brand, Forum, Thread
from community.demo import seed_demo
from kb.models import Article
from tests.conftest import SECRET_KEY, make_settings, passwords_for

ROOT = Path(__file__).resolve().parent.parent
# Loaded only by a process that embeds, detects a post's language, or checks a new username or
# password.
HEAVY = (
    "numpy",
    "py3langid",
    "threadpoolctl",
    "kb.embeddings.base",
    "kb.embeddings.cache",
    "kb.embeddings.minilm",
    "kb.embeddings.remote",
    "kb.embeddings.use",
    "zxcvbn",
    "confusable_homoglyphs",
)

SERVE_PAGES = """
import json, sys
from fastapi.testclient import TestClient
from community.app import create_app

paths = json.loads(sys.argv[1])
with TestClient(create_app()) as client:
    statuses = {path: client.get(path).status_code for path in paths}
print(json.dumps({"statuses": statuses, "modules": sorted(sys.modules)}))
"""


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [environment.get("PYTHONPATH")])]
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=environment | (env or {}),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def _demo_pages(tmp_path: Path) -> tuple[str, list[str]]:
    """A migrated SQLite database with the demo brand, and its main pages."""
    url = f"sqlite:///{tmp_path / 'site.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as db:
            seed_demo(db, passwords_for(make_settings(tmp_path, url, None)))
            db.commit()
            brand = db.scalars(select(Brand)).one()
            forum = db.scalars(select(Forum).order_by(Forum.id)).first()
            thread = db.scalars(select(Thread).order_by(Thread.id)).first()
            article = db.scalars(select(Article).order_by(Article.id)).first()
            assert forum is not None and thread is not None and article is not None
            paths = [
                "/",
                f"/b/{brand.slug}",
                f"/b/{brand.slug}/{forum.slug}",
                f"/t/{thread.id}",
                f"/kb/articles/{article.id}",
                f"/b/{brand.slug}/search?q=battery",
                f"/b/{brand.slug}/kb/suggest?title=battery+drains+overnight",
                "/login",
                "/register",
            ]
    finally:
        engine.dispose()
    return url, paths


def test_a_web_process_with_semantic_search_off_serves_pages_without_the_heavy_parts(
    tmp_path: Path,
) -> None:
    url, paths = _demo_pages(tmp_path)
    answer = _python(
        SERVE_PAGES,
        json.dumps(paths),
        env={
            "DATABASE_URL": url,
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "SECRET_KEY": SECRET_KEY,
            "SEARCH_MODEL": "off",
            "MEILI_URL": "http://127.0.0.1:1",  # down: search falls back to the database
            "ALLOWED_HOSTS": "testserver",  # the test client's Host
            "LOG_LEVEL": "ERROR",
        },
    )
    assert answer["statuses"] == dict.fromkeys(paths, 200)
    loaded = set(answer["modules"])  # type: ignore[call-overload]
    assert "community.app" in loaded
    assert sorted(loaded.intersection(HEAVY)) == []


def test_the_cli_loads_neither_the_site_nor_the_worker() -> None:
    """`community serve --workers N` runs in the process that parsed the command line; each web
    process it spawns imports the `community` script again before the site."""
    answer = _python(
        "import json, sys; import community.cli, community.cli.serving; "
        "print(json.dumps({'modules': sorted(sys.modules)}))"
    )
    loaded = set(answer["modules"])  # type: ignore[call-overload]
    assert "community.cli.serving" in loaded
    site = {"community.app", "community.worker", "community.importing.service", "kb.reindex"}
    assert sorted(loaded & (site | set(HEAVY))) == []
