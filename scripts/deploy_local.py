"""`make check-deploy`: the reference deployment (deploy/) on loopback, without containers.

The processes of deploy/compose.yaml, started by this script on 127.0.0.1:

- a throwaway PostgreSQL database on the local server, and a Redis key prefix of its own;
- Meilisearch (the project's pinned binary) with a fresh master key and data directory;
- the one-shot steps: `community migrate`, `community seed-demo` (data to drive), and
  `community search keys` (the web processes get the search key, the workers the write key
  and the search key);
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
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psycopg
import redis

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a file: make the project's packages importable
    sys.path.insert(0, str(REPO_ROOT))

import deploy_load  # noqa: E402 - beside this file
from deploy_load import say  # noqa: E402
from deploy_processes import DeployFailed, Stack, Step, run_step, wait_until_ready  # noqa: E402

from community.core import meili  # noqa: E402
from community.core.settings import Settings  # noqa: E402

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
WEB_PROCESSES = 2
WORKERS = 2


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


def community_binary() -> str:
    beside = Path(sys.executable).parent / "community"
    if beside.exists():
        return str(beside)
    found = shutil.which("community")
    if not found:
        raise DeployFailed("no `community` command beside this Python or on PATH")
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


def web_command(port: int) -> list[str]:
    host = ["--host", "127.0.0.1", "--port", str(port)]
    return [community_binary(), "serve", *host, "--workers", str(WEB_PROCESSES)]


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
        proxy_port, web_port = meili.free_port(), meili.free_port()
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
