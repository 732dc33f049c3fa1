"""`community serve` in embedded mode, as `make run` starts it: SQLite under the instance
folder, a managed Meilisearch child, Ctrl-C stops both, a restart reuses everything, and a
killed site never leaves its Meilisearch behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from community.core.meili import free_port

COMMUNITY = str(Path(sys.executable).with_name("community"))


@pytest.fixture
def embedded_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "MEILI_URL", "MEILI_MASTER_KEY", "SECRET_KEY")
    }
    env |= {
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "8192",
        "ARGON2_PARALLELISM": "1",
        "LOG_LEVEL": "WARNING",
    }
    return env


def _run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [COMMUNITY, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stderr + result.stdout


def _start(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [COMMUNITY, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _wait_ready(process: subprocess.Popen[str], url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"serve exited early ({process.returncode}):\n{output}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError("serve did not become ready")


def _meili_pid(instance: Path) -> int:
    return int((instance / "meili" / "meilisearch.pid").read_text().split()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its /proc status says so.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


def _wait_dead(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.long
def test_serve_runs_embedded_and_stops_cleanly_on_ctrl_c(embedded_env: dict[str, str]) -> None:
    instance = Path(embedded_env["INSTANCE_DIR"])
    _run(embedded_env, "migrate")
    assert "loaded brand 'Acme'" in _run(embedded_env, "seed-demo")
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    process = _start(embedded_env, port)
    try:
        _wait_ready(process, url)
        assert (instance / "community.core.db").exists()
        assert (instance / "secret_key").exists()
        meili_pid = _meili_pid(instance)
        assert _alive(meili_pid)
        home = httpx.get(url, timeout=5)
        assert home.status_code == 200
        assert "Acme community" in home.text
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert _wait_dead(meili_pid)
        assert not (instance / "meili" / "meilisearch.pid").exists()
    finally:
        if process.poll() is None:
            process.kill()

    # A second run reuses the database and the secrets; the index data is lost (a new
    # Meilisearch), so the site builds the indexes again before it serves.
    assert "already loaded" in _run(embedded_env, "seed-demo")
    secret = (instance / "secret_key").read_text()
    shutil.rmtree(instance / "meili" / "data.ms")
    process = _start(embedded_env, port)
    try:
        _wait_ready(process, url)
        assert (instance / "secret_key").read_text() == secret
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    output = process.stdout.read() if process.stdout else ""
    assert "search: building the indexes of acme" in output, output


def test_killed_site_takes_its_meilisearch_with_it(embedded_env: dict[str, str]) -> None:
    instance = Path(embedded_env["INSTANCE_DIR"])
    _run(embedded_env, "migrate")
    port = free_port()
    process = _start(embedded_env, port)
    try:
        _wait_ready(process, f"http://127.0.0.1:{port}")
        meili_pid = _meili_pid(instance)
        process.kill()  # SIGKILL: no chance to clean up
        process.wait(timeout=10)
        assert _wait_dead(meili_pid), "the managed Meilisearch outlived the site"
    finally:
        if process.poll() is None:
            process.kill()
