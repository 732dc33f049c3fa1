"""The processes of `make check-deploy` (scripts/deploy_local.py): started in process groups of
their own that die with the script, stopped with SIGTERM, and checked for leftovers."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from deploy_load import say

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 90.0
STOP_SECONDS = 20.0
_PR_SET_PDEATHSIG = 1


class DeployFailed(Exception):
    """A step that cannot go on (a process that does not start, a command that fails)."""


def _own_group_dying_with_us() -> None:
    """In the child: a process group of its own (so stopping it reaches its children, and what
    is left of it afterwards can be found), and SIGTERM if this script dies first."""
    os.setsid()
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join("    " + line for line in text.splitlines()[-lines:])


@dataclass
class Stack:
    """The long-running processes this run started."""

    workdir: Path
    services: list[Service] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> Service:
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("ab") as handle:
            process = subprocess.Popen(  # noqa: S603 - our own commands with arguments we built
                command,
                env=env,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                preexec_fn=_own_group_dying_with_us,
            )
        service = Service(name, process, log)
        self.services.append(service)
        shown = " ".join([Path(command[0]).name, *command[1:]])
        say(f"  started {name} (pid {process.pid}): {shown}")
        return service

    def log_of(self, name: str) -> Path:
        return next(service.log for service in self.services if service.name == name)

    def check_running(self) -> None:
        for service in self.services:
            code = service.process.poll()
            if code is not None:
                raise DeployFailed(f"{service.name} exited with {code}:\n{service.tail()}")

    def stop_all(self) -> list[str]:
        """SIGTERM to each (the proxy first, then the web processes and the workers), then wait
        for each; say which did not stop cleanly or left a process behind."""
        problems: list[str] = []
        for service in reversed(self.services):
            if service.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    service.process.send_signal(signal.SIGTERM)
        for service in reversed(self.services):
            problems += _wait_stopped(service)
        self.services.clear()
        return problems


def _wait_stopped(service: Service) -> list[str]:
    problems: list[str] = []
    process = service.process
    try:
        code = process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        problems.append(f"{service.name} did not stop within {STOP_SECONDS:.0f}s of SIGTERM")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        code = process.wait(timeout=STOP_SECONDS)
    if code != 0:
        problems.append(f"{service.name} exited with {code} on SIGTERM:\n{service.tail()}")
    # Its children (the web processes under their supervisor) share its process group.
    deadline = time.monotonic() + STOP_SECONDS
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _group_alive(process.pid):
        problems.append(f"{service.name} left processes behind (group {process.pid}): killed")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    else:
        say(f"  stopped {service.name} (exit {code})")
    return problems


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # A member that exited but is not reaped yet (a zombie) still counts for killpg.
    for status in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def run_step(command: list[str], env: dict[str, str], timeout: float = 120) -> str:
    say("  $ " + " ".join([Path(command[0]).name, *command[1:]]))
    result = subprocess.run(  # noqa: S603 - our own commands with arguments we built
        command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise DeployFailed(
            f"{' '.join(command[1:3])} failed ({result.returncode}):\n"
            + result.stdout
            + result.stderr
        )
    return result.stdout


@dataclass
class Step:
    """A one-shot command running beside the start of the processes."""

    command: list[str]
    process: subprocess.Popen[str]

    @classmethod
    def start(cls, command: list[str], env: dict[str, str]) -> Step:
        say("  $ " + " ".join([Path(command[0]).name, *command[1:]]) + " &")
        process = subprocess.Popen(  # noqa: S603 - our own command with arguments we built
            command,
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_own_group_dying_with_us,
        )
        return cls(command, process)

    def finish(self, timeout: float = 120) -> None:
        output, _ = self.process.communicate(timeout=timeout)
        if self.process.returncode != 0:
            raise DeployFailed(f"{' '.join(self.command[1:3])} failed:\n{output}")
        say(f"  {' '.join(self.command[1:3])}: done")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def wait_until_ready(stack: Stack, url: str) -> None:
    """/readyz through the proxy: the database and Meilisearch answer a web process."""
    deadline = time.monotonic() + STARTUP_SECONDS
    last = "no answer"
    while time.monotonic() < deadline:
        stack.check_running()
        try:
            response = httpx.get(f"{url}/readyz", timeout=5)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise DeployFailed(f"the site was not ready within {STARTUP_SECONDS:.0f}s: {last}")
