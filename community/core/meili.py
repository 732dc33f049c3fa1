"""Meilisearch: finding the binary, running a managed local server, and checking health.

Embedded mode (MEILI_URL unset) runs Meilisearch as a child process bound to 127.0.0.1 on a free
port, with its data under INSTANCE_DIR/meili and a master key generated once and kept beside it.
The child is told to die with its parent (PR_SET_PDEATHSIG) and its pid is recorded, so a killed
site never leaves a server holding the data directory's lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import meilisearch
from meilisearch.errors import MeilisearchApiError, MeilisearchTimeoutError
from meilisearch.models.task import Task

from community.core import tls
from community.core.settings import Settings, load_or_create_secret

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PINNED_BINARY = (
    PROJECT_ROOT
    / "tools"
    / "meilisearch"
    / "node_modules"
    / "@gaubee"
    / "meilisearch-linux-amd64"
    / "meilisearch"
)
MASTER_KEY_FILE = "meili_master_key"
_PR_SET_PDEATHSIG = 1


class MeiliUnavailable(RuntimeError):
    """No binary, or the server did not come up. The message says what to do."""


def find_binary(settings: Settings | None = None) -> Path:
    """MEILI_BIN, else `meilisearch` on PATH, else the project's pinned install."""
    configured = os.environ.get("MEILI_BIN")
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise MeiliUnavailable(f"MEILI_BIN points at {path}, which is not a file")
        return path
    on_path = shutil.which("meilisearch")
    if on_path:
        return Path(on_path)
    if PINNED_BINARY.is_file():
        mode = PINNED_BINARY.stat().st_mode
        if not mode & stat.S_IXUSR:
            # npm does not keep the executable bit of files that are not declared as "bin".
            PINNED_BINARY.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return PINNED_BINARY
    raise MeiliUnavailable(
        "no Meilisearch binary: run `make meili` (pinned install), install `meilisearch` on "
        "PATH, or set MEILI_BIN"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def is_healthy(url: str, *, timeout: float = 1.0) -> bool:
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class MeiliServer:
    """A Meilisearch process we started; stop() ends it."""

    url: str
    master_key: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    pid_file: Path | None = None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        if self.pid_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.pid_file.unlink()


# Meilisearch's default indexing budget is two thirds of the machine's memory, and every write
# pays for it: on a 24 GiB machine adding or deleting one document took 100-200 ms, now and then
# 1.9 s, against 6-30 ms with a budget of 128 MiB to 2 GiB (measured on 1.21.0). Large imports
# still index in big batches within 1 GiB.
INDEXING_MEMORY = "1GiB"


def start_server(
    binary: Path,
    data_dir: Path,
    master_key: str,
    *,
    port: int | None = None,
    log_path: Path | None = None,
    pid_file: Path | None = None,
    startup_timeout: float = 30.0,
) -> MeiliServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log_handle = (log_path or data_dir / "meilisearch.log").open("ab")
    log_size = log_handle.tell()  # what earlier runs wrote is not this failure
    command = [
        str(binary),
        "--http-addr",
        f"127.0.0.1:{port}",
        "--db-path",
        str(data_dir / "data.ms"),
        "--dump-dir",
        str(data_dir / "dumps"),
        "--snapshot-dir",
        str(data_dir / "snapshots"),
        "--env",
        "production",
        "--no-analytics",
        "--log-level",
        "WARN",
        "--max-indexing-memory",
        INDEXING_MEMORY,
    ]
    # The key goes in the environment, never on the command line: there `ps` shows it to
    # every user, and a key that starts with "-" is read as an option. Our own MEILI_*
    # settings (MEILI_URL, MEILI_INDEX_PREFIX, ...) are not the child's configuration.
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("MEILI_")}
    environment["MEILI_MASTER_KEY"] = master_key
    # An error's first lines say what is wrong; a Rust backtrace after them hides it.
    environment["RUST_BACKTRACE"] = environment["RUST_LIB_BACKTRACE"] = "0"
    process = subprocess.Popen(  # noqa: S603 - the binary is resolved by find_binary
        command,
        env=environment,
        stdout=log_handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
        close_fds=True,
    )
    log_handle.close()
    server = MeiliServer(
        url=url, master_key=master_key, process=process, data_dir=data_dir, pid_file=pid_file
    )
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = log_path or data_dir / "meilisearch.log"
            raise MeiliUnavailable(
                f"Meilisearch exited with code {process.returncode}; the end of {log}:\n"
                + _log_tail(log, before=log_size)
            )
        if is_healthy(url, timeout=0.5):
            if pid_file is not None:
                pid_file.write_text(f"{process.pid} {port}\n")
            return server
        time.sleep(0.05)
    server.stop()
    raise MeiliUnavailable(f"Meilisearch did not answer on {url} within {startup_timeout:.0f}s")


def _log_tail(path: Path, *, before: int, lines: int = 15) -> str:
    """The last lines this run wrote to the log (ANSI colours removed)."""
    try:
        with path.open("rb") as handle:
            handle.seek(before)
            text = handle.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(could not read the log: {exc})"
    text = _ANSI.sub("", text).split("Stack backtrace:")[0].strip()
    return "\n".join(text.splitlines()[-lines:]) or "(the log is empty)"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def managed_paths(settings: Settings) -> tuple[Path, Path]:
    base = settings.instance_path / "meili"
    return base, base / "meilisearch.pid"


def stop_stale_managed(settings: Settings) -> None:
    """A previous run that was killed may have left its server running: end it."""
    _base, pid_file = managed_paths(settings)
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().split()[0])
    except (ValueError, IndexError):
        pid_file.unlink(missing_ok=True)
        return
    cmdline = Path(f"/proc/{pid}/cmdline")
    if _running(pid) and b"meilisearch" in cmdline.read_bytes():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a finished child its parent has not reaped yet)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def managed_status(settings: Settings) -> str | None:
    """The URL of this instance's managed server if one is running, else None."""
    _base, pid_file = managed_paths(settings)
    if not pid_file.exists():
        return None
    try:
        _pid, port = pid_file.read_text().split()[:2]
    except ValueError:
        return None
    url = f"http://127.0.0.1:{port}"
    return url if is_healthy(url) else None


def start_managed(settings: Settings) -> MeiliServer:
    base, pid_file = managed_paths(settings)
    stop_stale_managed(settings)
    master_key = load_or_create_secret(settings.instance_path / MASTER_KEY_FILE)
    return start_server(
        find_binary(settings),
        base,
        master_key,
        log_path=base / "meilisearch.log",
        pid_file=pid_file,
    )


def wait_for_task(client: meilisearch.Client, task_uid: int, *, timeout_ms: int) -> Task:
    """The task once Meilisearch has finished it (succeeded or failed). Most writes take a few
    milliseconds, so the first look comes after 2 ms and the pause doubles up to 50 ms; the
    client's own wait sleeps a fixed 50 ms, which made every indexing step take at least that."""
    deadline = time.monotonic() + timeout_ms / 1000
    pause = 0.002
    while True:
        task = client.get_task(task_uid)
        if task.status not in ("enqueued", "processing"):
            return task
        if time.monotonic() > deadline:
            raise MeilisearchTimeoutError(
                f"Meilisearch task {task_uid} still {task.status} after {timeout_ms} ms"
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


class TaskFailed(RuntimeError):
    """Meilisearch finished a task without doing it; `code` is its error code."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def swap_indexes(
    client: meilisearch.Client, pairs: list[tuple[str, str]], *, timeout_ms: int
) -> None:
    """Swap each pair of indexes (all at once) and wait until it is done.

    A key limited to some indexes (MEILI_WRITE_KEY) cannot see swap tasks: they belong to no
    index (meilisearch#4103). Then the swap is seen done when each index has the other's
    creation time, since an index's metadata moves with its data."""
    uids = [uid for pair in pairs for uid in pair]
    before = {uid: client.http.get(f"indexes/{uid}")["createdAt"] for uid in uids}
    task = client.swap_indexes([{"indexes": [first, second]} for first, second in pairs])
    try:
        done = wait_for_task(client, task.task_uid, timeout_ms=timeout_ms)
    except MeilisearchApiError as exc:
        if exc.code != "task_not_found":
            raise
    else:
        if done.status != "succeeded":
            code = done.error.get("code") if isinstance(done.error, dict) else None
            raise TaskFailed(
                f"Meilisearch task {task.task_uid} {done.status}: {done.error}", code=code
            )
        return
    swapped = {first: before[second] for first, second in pairs}
    swapped |= {second: before[first] for first, second in pairs}
    deadline = time.monotonic() + timeout_ms / 1000
    while any(
        client.http.get(f"indexes/{uid}")["createdAt"] != when for uid, when in swapped.items()
    ):
        if time.monotonic() > deadline:
            raise MeilisearchTimeoutError(f"the indexes of swap task {task.task_uid} did not swap")
        time.sleep(0.01)


# --- this site's least-privilege keys -----------------------------------------------------------

SEARCH_KEY = "search"
WRITE_KEY = "write"
# What each key may do. The write key has what indexing and reindexing call (kb.search's
# writes): documents added and deleted by filter, indexes looked up, created, swapped and
# dropped, settings read (the embedders) and changed, and those writes' tasks awaited. Neither
# may search or manage keys, dumps or snapshots, or touch another site's indexes.
KEY_ACTIONS: dict[str, tuple[str, ...]] = {
    SEARCH_KEY: ("search",),
    WRITE_KEY: (
        "documents.add",
        "documents.delete",
        "indexes.create",
        "indexes.get",
        "indexes.delete",
        "indexes.swap",
        "settings.get",
        "settings.update",
        "tasks.get",
    ),
}
_KEY_DESCRIPTIONS = {
    SEARCH_KEY: "Searches of the community site's web processes",
    WRITE_KEY: "Index writes of the community site's workers and indexing commands",
}
# Key uids are uuid5 of the key's role and the index prefix: every process, and every run of
# `community search keys`, names the same key. Meilisearch derives a key's value from its uid
# and the master key, so a key created again has the same value too.
_KEY_NAMESPACE = uuid.UUID("5a0c3c8e-6f1e-4f7a-9d7e-3b1d2f8c9a41")


class KeyRequestFailed(RuntimeError):
    """Meilisearch refused to show or create a key (a wrong master key, most likely)."""


def site_key_uid(role: str, index_prefix: str) -> str:
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{role}:{index_prefix}"))


def find_or_create_site_key(
    http: httpx.Client, master_key: str, index_prefix: str, role: str
) -> str:
    """The value of this site's `role` key, limited to the indexes named `index_prefix*`:
    found on the server, else created with the master key. A key whose actions or indexes are
    not what the code needs now is created again (a key's rights cannot be changed)."""
    uid = site_key_uid(role, index_prefix)
    wanted: dict[str, Any] = {
        "uid": uid,
        "name": f"{index_prefix}{role}",
        "description": _KEY_DESCRIPTIONS[role],
        "actions": list(KEY_ACTIONS[role]),
        "indexes": [f"{index_prefix}*"],
        "expiresAt": None,
    }
    admin = {"Authorization": f"Bearer {master_key}"}
    found = http.get(f"/keys/{uid}", headers=admin)
    if found.status_code == 200:
        current = found.json()
        if _same_rights(current, wanted):
            return str(current["key"])
        _checked(http.delete(f"/keys/{uid}", headers=admin), "replace")
    elif found.status_code != 404:
        _checked(found, "read")
    created = http.post("/keys", headers=admin, json=wanted)
    if created.status_code == 409:  # another process created it in between: the same key
        created = http.get(f"/keys/{uid}", headers=admin)
    return str(_checked(created, "create").json()["key"])


def _same_rights(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return (
        sorted(current.get("actions") or []) == sorted(wanted["actions"])
        and current.get("indexes") == wanted["indexes"]
        and current.get("expiresAt") is None
    )


def _checked(response: httpx.Response, doing: str) -> httpx.Response:
    if response.status_code >= 400:
        try:
            message = str(response.json().get("message", ""))
        except ValueError:
            message = response.text[:200]
        raise KeyRequestFailed(
            f"Meilisearch refused to {doing} a key ({response.status_code}): {message}"
        )
    return response


def find_or_create_site_keys(url: str, master_key: str, index_prefix: str) -> dict[str, str]:
    """This site's search and write keys (see find_or_create_site_key), by role."""
    with httpx.Client(base_url=url.rstrip("/"), timeout=10.0, verify=tls.client_context()) as http:
        return {
            role: find_or_create_site_key(http, master_key, index_prefix, role)
            for role in KEY_ACTIONS
        }
