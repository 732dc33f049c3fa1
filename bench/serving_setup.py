"""What bench_serving.py serves and with what: the seeded forum's extras (KB articles, open
escalations), the search index, the production processes (`community serve --workers N` and one
`community worker`), the signed-in sessions, the request lists, and the machine.

Kept apart from the measuring so that each file reads on its own; bench_serving.py is the script.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_qa
import httpx
import psycopg
from common import PostgresDatabase, console

# The venv running this script holds the product's commands (`make setup` installs them).
BIN = Path(sys.executable).parent
CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')

# KB articles made from the best solved threads (the promotion an agent would approve), and
# open escalations for one thread in fifty, due in the future so the SLA sweep stays quiet.
ARTICLES = """
INSERT INTO kb_articles (brand_id, forum_id, source_thread_id, source_reply_count, title,
                         summary, body_source, body_html, tags, locale, status, obsolete,
                         helpful_yes, helpful_no, view_count, created_at, updated_at,
                         published_at, last_verified_at)
SELECT f.brand_id, t.forum_id, t.id, t.reply_count, t.title, left(q.body_source, 200),
       q.body_source || E'\n\n' || a.body_source, q.body_html || a.body_html, '', 'en',
       'published', false, 0, 0, 0, now(), now(), now(), now()
FROM threads t
JOIN forums f ON f.id = t.forum_id
JOIN posts q ON q.thread_id = t.id AND q.is_question
JOIN posts a ON a.id = t.accepted_post_id
WHERE t.visibility = 'visible' AND t.accepted_post_id IS NOT NULL
ORDER BY t.score DESC, t.id
LIMIT %(articles)s
"""
ESCALATIONS = """
INSERT INTO escalations (thread_id, brand_id, reason, priority, status, first_response_due_at,
                         resolution_due_at, queue_due_at, paused_seconds, created_at, updated_at)
SELECT t.id, f.brand_id, 'no_response',
       (ARRAY['P1','P2','P3','P4'])[1 + t.id % 4], 'open',
       now() + make_interval(hours => (2 + t.id % 48)::int), now() + make_interval(days => 3),
       now() + make_interval(hours => (2 + t.id % 48)::int), 0, now(), now()
FROM threads t JOIN forums f ON f.id = t.forum_id
WHERE t.visibility = 'visible' AND t.id % 50 = 7 AND t.accepted_post_id IS NULL
"""


def seed(database: PostgresDatabase, threads: int, admin_url: str) -> dict[str, float]:
    """bench_qa's forum (COPY), then the KB articles and escalations; seconds per step."""
    options = bench_qa.parse_args(["--threads", str(threads), "--database-url", admin_url])
    summary = bench_qa.seed(database, options)
    began = time.perf_counter()
    with psycopg.connect(database.libpq_url, autocommit=True) as conn:
        conn.execute(ARTICLES, {"articles": max(20, threads // 500)})
        conn.execute(ESCALATIONS)
        conn.execute("VACUUM (ANALYZE)")
    return summary.seconds | {"extras": time.perf_counter() - began}


# --- the processes ---------------------------------------------------------------------------


def server_env(base: dict[str, str]) -> dict[str, str]:
    """The environment of every product process: the caller's settings over the machine's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    return env | base


def run_cli(env: dict[str, str], *args: str) -> float:
    """Run `community ARGS` to the end; its wall time in seconds."""
    began = time.perf_counter()
    subprocess.run([str(BIN / "community"), *args], env=env, check=True)  # noqa: S603
    return time.perf_counter() - began


def serve_command(workers: int, port: int) -> tuple[list[str], str]:
    """The production command, and a note when this checkout's `community serve` has no
    --workers yet (then uvicorn's own --workers, as the peers' harness did before)."""
    helptext = subprocess.run(  # noqa: S603
        [str(BIN / "community"), "serve", "--help"], capture_output=True, text=True, check=False
    ).stdout
    if "--workers" in helptext:
        command = [str(BIN / "community"), "serve", "--workers", str(workers)]
        return [*command, "--host", "127.0.0.1", "--port", str(port)], ""
    command = [str(BIN / "uvicorn"), "--factory", "community.app:create_app", "--workers"]
    return (
        [*command, str(workers), "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
         "--no-server-header", "--log-level", "warning"],
        "this checkout's `community serve` has no --workers: uvicorn --factory --workers used",
    )  # fmt: skip


@dataclass
class Servers:
    web: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    base_url: str
    note: str

    def web_processes(self) -> list[int]:
        """The processes answering requests: the children of the supervisor, else itself."""
        children = descendants(self.web.pid)
        return children or [self.web.pid]

    def all_processes(self) -> dict[str, int]:
        found = {"web supervisor": self.web.pid, "worker": self.worker.pid}
        for number, pid in enumerate(descendants(self.web.pid), start=1):
            found[f"web {number}"] = pid
        return found


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextmanager
def servers(env: dict[str, str], workers: int, port: int, logs: Path) -> Iterator[Servers]:
    # Another server on the port would answer in ours' place (and the figures would be its).
    if not _port_is_free(port):
        raise RuntimeError(f"port {port} is in use: choose another with --port")
    command, note = serve_command(workers, port)
    console.print(f"web: {' '.join(command[0:1] + command[1:])}")
    with (logs / "web.log").open("wb") as web_log, (logs / "worker.log").open("wb") as worker_log:
        web = subprocess.Popen(  # noqa: S603
            command, env=env, stdout=web_log, stderr=subprocess.STDOUT, start_new_session=True
        )
        worker = subprocess.Popen(  # noqa: S603
            [str(BIN / "community"), "worker"],
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        running = Servers(web, worker, f"http://127.0.0.1:{port}", note)
        try:
            _wait_until_up(running, logs)
            yield running
        finally:
            for process in (web, worker):
                _stop(process)


def _wait_until_up(running: Servers, logs: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if running.web.poll() is not None:
            raise RuntimeError(f"the web server exited: see {logs / 'web.log'}")
        try:
            if httpx.get(running.base_url + "/", timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)  # polling a server that is starting: there is nothing to wait on
    raise RuntimeError(f"the web server did not answer in 180 s: see {logs / 'web.log'}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: the server and its children
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(parents.get(child, []))
    # uvicorn's multiprocessing start adds a resource tracker: it serves nothing.
    return sorted(p for p in found if "resource_tracker" not in _cmdline(p))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB (empty once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {m[1]: int(m[2]) for m in re.finditer(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.M)}


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


# --- sessions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    cookie: str  # the Cookie header value
    csrf: str


def sign_in(base_url: str, login: str, password: str, probe_path: str) -> Session:
    """Sign in through the real server's form, as a browser does."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        page = client.get("/login")
        token = CSRF_META.search(page.text)
        if token is None:
            raise RuntimeError(f"no CSRF token on /login ({page.status_code})")
        response = client.post(
            "/login", data={"login": login, "password": password, "csrf_token": token.group(1)}
        )
        if response.status_code != 303:
            raise RuntimeError(f"login as {login} answered {response.status_code}")
        page = client.get(probe_path)
        token = CSRF_META.search(page.text)
        if token is None:
            raise RuntimeError(f"no CSRF token on {probe_path} once signed in")
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        return Session(cookie=cookie, csrf=token.group(1))


# --- the machine -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "?"
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        model = found.group(1) if found else model
    except OSError:
        pass
    memory = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    wrk = subprocess.run(  # noqa: S603
        [shutil.which("wrk") or "wrk", "-v"], capture_output=True, text=True, check=False
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(int(memory.group(1)) / 1024 / 1024, 1) if memory else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": (wrk.stdout or wrk.stderr).split("\n")[0].strip(),
        "load_at_start": os.getloadavg(),
    }
