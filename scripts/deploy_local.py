"""`make check-deploy`: the reference deployment (deploy/) on loopback, without containers.

The processes of deploy/compose.yaml, started by this script on 127.0.0.1:

- a throwaway PostgreSQL database on the local server, and a Redis key prefix of its own;
- Meilisearch (the project's pinned binary) with a fresh master key and data directory;
- the one-shot steps: `community migrate`, `community seed-demo` (data to drive), and
  `community search keys` (the web processes get the search key, the workers the write key);
- `community serve --workers 2` (two web processes on one port), two `community worker`s;
- nginx in front, with deploy/nginx.conf (static files from disk, kept-alive upstream).

Then a short mixed load through the proxy (scripts/deploy_load.py): anonymous readers of thread,
forum and search pages, signed-in members voting and answering. It checks that no request failed
(no 5xx, no connection error), that every write the site accepted is in the database, that the
workers drained the outbox and that search finds an answer written during the load. Everything
is then stopped (each process must exit, and nothing may be left in their process groups) and
removed: the database, the Redis keys, the temporary directory. Exits 1 with what failed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
import psycopg
import redis

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a file: make the project's packages importable
    sys.path.insert(0, str(REPO_ROOT))

import deploy_load  # noqa: E402 - beside this file
from deploy_load import say  # noqa: E402

from community.core import meili  # noqa: E402
from community.core.settings import Settings  # noqa: E402

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
WEB_PROCESSES = 2
WORKERS = 2
STARTUP_SECONDS = 90.0
STOP_SECONDS = 20.0
_PR_SET_PDEATHSIG = 1


class DeployFailed(Exception):
    """A step that cannot go on (a process that does not start, a command that fails)."""


# --- processes -----------------------------------------------------------------------------


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


def free_port() -> int:
    return meili.free_port()


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


# --- the parts that are not processes ------------------------------------------------------


@dataclass
class ThrowawayDatabase:
    admin_url: str
    name: str

    @property
    def url(self) -> str:
        return f"{self.admin_url.split('?', 1)[0].rsplit('/', 1)[0]}/{self.name}"

    @classmethod
    def create(cls, admin_url: str, run_id: str) -> ThrowawayDatabase:
        name = f"deploy_{run_id}"
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return cls(admin_url, name)

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def drop_redis_keys(url: str, prefix: str) -> int:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


def render_nginx(workdir: Path, listen: str, upstream: str) -> Path:
    """deploy/nginx.conf with its three placeholders filled, inside a main configuration that
    keeps every file nginx writes in the run's directory."""
    base = workdir / "nginx"
    base.mkdir()
    # Its own copy of the static files (2 MB), as the proxy container has its own mount: run as
    # root, nginx's workers are `nobody`, who may not enter the checkout (under /root, say).
    static = shutil.copytree(REPO_ROOT / "static", workdir / "static")
    values = {
        "COMMUNITY_LISTEN": listen,
        "COMMUNITY_UPSTREAM": upstream,
        "COMMUNITY_STATIC": str(static),
    }
    template = (REPO_ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    site = re.sub(r"\$\{(COMMUNITY_[A-Z]+)\}", lambda match: values[match.group(1)], template)
    (base / "community.conf").write_text(site, encoding="utf-8")
    temp_paths = "\n".join(
        f"    {kind}_temp_path {base / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    main = f"""worker_processes 1;
pid {base / "nginx.pid"};
error_log {base / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
{temp_paths}
    uwsgi_temp_path {base / "uwsgi"};
    scgi_temp_path {base / "scgi"};
    include {base / "community.conf"};
}}
"""
    config = base / "nginx.conf"
    config.write_text(main, encoding="utf-8")
    return config


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        raise DeployFailed("no nginx: run `make system-deps` (installs nginx-light)")
    return found


def community_binary(name: str = "community") -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise DeployFailed(f"no `{name}` command beside this Python or on PATH")
    return found


# --- the run -------------------------------------------------------------------------------


def site_environment(
    run_id: str, database_url: str, redis_url: str, base_url: str
) -> dict[str, str]:
    """The environment every process of the site shares (env.example's variables, minus the
    Meilisearch keys, which each kind of process gets on its own)."""
    ours = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in ours}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # `community serve` makes its own
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        RATE_LIMIT_PREFIX=f"deploy-{run_id}",
        SECRET_KEY=secrets.token_urlsafe(48),
        BASE_URL=base_url,
        TRUSTED_PROXIES="127.0.0.1",
        LOG_FORMAT="json",
        LOG_LEVEL="WARNING",
        METRICS_TOKEN=secrets.token_urlsafe(24),
        EMBEDDED_WORKER="false",
        # Lexical search: the semantic model would load in each of four processes and is not
        # what this run checks.
        SEARCH_MODEL="off",
        WORKER_POLL_SECONDS="0.2",
    )
    return env


def meili_keys(env: dict[str, str], master_key: str) -> tuple[dict[str, str], dict[str, str]]:
    """(web's, workers') Meilisearch settings: `community search keys` makes a search-only
    and a write key from the master key, which neither kind of process then holds. Workers
    search too (possible duplicates of a new question): they get both keys."""
    with_master = env | {"MEILI_MASTER_KEY": master_key}
    output = run_step([community_binary(), "search", "keys"], with_master)
    keys = dict(re.findall(r"^(MEILI_(?:SEARCH|WRITE)_KEY)=(\S+)$", output, re.MULTILINE))
    if set(keys) != {"MEILI_SEARCH_KEY", "MEILI_WRITE_KEY"}:
        raise DeployFailed(f"`community search keys` printed no keys:\n{output}")
    return (
        env | {"MEILI_SEARCH_KEY": keys["MEILI_SEARCH_KEY"]},
        env | keys,
    )


def _has_command(*arguments: str) -> bool:
    return (
        subprocess.run(  # noqa: S603 - our own command
            [community_binary(), *arguments], capture_output=True, check=False, timeout=60
        ).returncode
        == 0
    )


def web_command(port: int) -> list[str]:
    if not _has_command("serve", "--workers", "1", "--help"):  # STAND-IN until it lands
        return [
            community_binary("uvicorn"), "--factory", "community.app:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(WEB_PROCESSES),
            "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1", "--no-server-header",
            "--log-level", "warning",
        ]  # fmt: skip
    return [
        community_binary(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(WEB_PROCESSES),
    ]


def _stopped(stack: Stack) -> None:
    problems = stack.stop_all()
    if problems:
        raise DeployFailed("stopping:\n" + "\n".join(problems))


def _dropped(database: ThrowawayDatabase) -> None:
    database.drop()
    say(f"  dropped database {database.name}")


def _meili_stopped(server: meili.MeiliServer) -> None:
    server.stop()
    say("  stopped meilisearch")


def _redis_cleaned(url: str, prefix: str) -> None:
    say(f"  removed {drop_redis_keys(url, prefix)} Redis keys (prefix {prefix})")


def _removed(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    say(f"  removed {workdir}")


@contextlib.contextmanager
def deployment(args: argparse.Namespace) -> Iterator[tuple[Stack, str, dict[str, str]]]:
    """Bring the site up; yield (stack, proxy URL, the site's environment); take it all down
    (each part is on the clean-up stack as soon as it exists: a failed start removes what it
    made)."""
    run_id = uuid.uuid4().hex[:10]
    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix=f"community-deploy-{run_id}-"))
        cleanup.callback(_removed, workdir)
        # nginx's workers run as nobody when we are root: they read the static files and use
        # the temp paths below this directory.
        workdir.chmod(0o755)
        say(f"== bringing the deployment up in {workdir}")
        cleanup.callback(_redis_cleaned, args.redis, f"deploy-{run_id}")
        database = ThrowawayDatabase.create(args.postgres, run_id)
        cleanup.callback(_dropped, database)
        say(f"  database {database.name} on {args.postgres.rsplit('@', 1)[-1]}")
        master_key = secrets.token_urlsafe(32)
        server = meili.start_server(meili.find_binary(), workdir / "meili", master_key)
        cleanup.callback(_meili_stopped, server)
        say(f"  meilisearch on {server.url} (pid {server.process.pid})")
        proxy_port, web_port = free_port(), free_port()
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        env = site_environment(run_id, database.url, args.redis, proxy_url)
        env |= {"INSTANCE_DIR": str(workdir / "instance"), "MEILI_URL": server.url}
        run_step([community_binary(), "migrate"], env)
        web_env, worker_env = meili_keys(env, master_key)
        stack = Stack(workdir)
        cleanup.callback(_stopped, stack)
        # The demo data (what the load drives) goes in while the processes start: each of these
        # mostly keeps one core busy importing, and there are two.
        seeding = Step.start([community_binary(), "seed-demo"], env)
        cleanup.callback(seeding.kill)
        for number in range(1, WORKERS + 1):
            stack.start(f"worker-{number}", [community_binary(), "worker"], worker_env)
        stack.start("web", web_command(web_port), web_env)
        config = render_nginx(workdir, f"127.0.0.1:{proxy_port}", f"127.0.0.1:{web_port}")
        nginx = [nginx_binary(), "-e", str(config.parent / "error.log"), "-c", str(config)]
        run_step([*nginx, "-t", "-q"], env)
        stack.start("nginx", [*nginx, "-g", "daemon off;"], env)
        wait_until_ready(stack, proxy_url)
        seeding.finish()
        say(
            f"  ready: {proxy_url} -> nginx -> 127.0.0.1:{web_port} ({WEB_PROCESSES} web processes)"
        )
        try:
            yield stack, proxy_url, env
        finally:
            say("== taking the deployment down")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the load")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server for the throwaway DB")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis (keys get a run prefix)")
    args = parser.parse_args()

    def interrupted(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # CI cancelling: clean up as for Ctrl-C
    started = time.monotonic()
    failures: list[str] = []
    try:
        with deployment(args) as (stack, proxy_url, env):
            failures = deploy_load.drive_and_check(
                proxy_url,
                env["DATABASE_URL"],
                args.seconds,
                stack.check_running,
                stack.log_of("nginx"),
                env["METRICS_TOKEN"],
            )
            if failures:  # what the processes said, before their directory goes
                for service in stack.services:
                    say(f"  the end of {service.name}'s log:\n{service.tail()}")
    except DeployFailed as exc:
        failures.append(str(exc))
    say(f"== {time.monotonic() - started:.1f}s in all")
    if failures:
        say("FAILED:\n" + "\n".join(f"- {failure}" for failure in failures))
        return 1
    say("OK: zero errors, no lost writes, outbox drained, search finds the new answer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
