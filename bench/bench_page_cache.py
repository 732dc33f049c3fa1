"""Benchmark of the anonymous page cache: a logged-out visitor's thread page (20 answers) served
by a real server on loopback, with the cache off and on, measured with wrk.

Creates a throwaway PostgreSQL database, seeds one thread with 20 answers, then for each
setting of PAGE_CACHE_SECONDS starts `uvicorn --factory community.app:create_app` (one process,
uvloop and httptools) on 127.0.0.1 and runs `wrk -t2 -c8` against /t/1 with a browser's user
agent (so every hit still counts a view). Prints requests/s and latency percentiles per round;
rounds alternate off/on so a change in the machine's load hits both.

    .venv/bin/python bench/bench_page_cache.py               # 3 rounds of 10 s each
    .venv/bin/python bench/bench_page_cache.py --seconds 5 --rounds 1
    .venv/bin/python bench/bench_page_cache.py --redis-url redis://127.0.0.1:6379/15

Needs wrk (`apt-get install -y wrk`) and PostgreSQL (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
from common import (
    DEFAULT_ADMIN_URL,
    console,
    exit_cleanly_on_signals,
    run_main,
    throwaway_postgres,
    workspace,
)
from sqlalchemy.orm import Session

from community import threads
from community.core import migrate
from community.core.db import make_engine, make_session_factory
from community.core.meili import free_port
from community.core.models import Brand, Forum, User
from community.core.schemas import AnswerIn, AskIn

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


def seed(database_url: str, answers: int) -> None:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    with make_session_factory(engine)() as db:
        brand = Brand(slug="acme", name="Acme", description="", theme={}, default_locale="en")
        db.add(brand)
        db.flush()
        forum = Forum(brand_id=brand.id, slug="mobile", name="Mobile", description="Phones")
        db.add(forum)
        users = [_user(db, f"member{n}") for n in range(answers + 1)]
        db.commit()
        thread = threads.ask(
            db,
            users[0],
            forum,
            AskIn(title="How do I move my number to an eSIM?", body="I have a new phone."),
            locale="en",
        )
        db.commit()
        for n, user in enumerate(users[1:]):
            body = f"Answer {n}: open Settings, then Mobile data, then step {n} of the guide."
            threads.answer(db, user, thread, AnswerIn(body=body))
            db.commit()
    engine.dispose()


def _user(db: Session, name: str) -> User:
    user = User(
        username=name,
        username_key=name,
        email=f"{name}@example.com",
        email_key=f"{name}@example.com",
        display_name=name,
        password_hash="!",  # noqa: S106 - no password: nobody signs in here
        trust_level=1,
    )
    db.add(user)
    return user


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "community.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env)  # noqa: S603 - fixed arguments, no shell
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not start")


def run_wrk(url: str, seconds: int) -> tuple[float, dict[str, str]]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [wrk, "-t2", "-c8", f"-d{seconds}s", "--latency", "-H", f"User-Agent: {BROWSER}", url],
        capture_output=True,
        text=True,
        check=True,
    )
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    latencies = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", result.stdout, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if errors:
        raise RuntimeError(f"{errors.group(1)} error responses:\n{result.stdout}")
    return rate, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--answers", type=int, default=20)
    parser.add_argument("--redis-url", default=None, help="keep the cache in Redis")
    args = parser.parse_args()
    exit_cleanly_on_signals()
    with (
        throwaway_postgres(args.database_url, "bench_page_cache") as database,
        workspace("bench_page_cache_") as folder,
    ):
        seed(database.sqlalchemy_url, args.answers)
        results: dict[str, list[tuple[float, dict[str, str]]]] = {"off": [], "on": []}
        for _round in range(args.rounds):
            for label, seconds in (("off", "0"), ("on", "5")):
                results[label].append(_measure(database.sqlalchemy_url, folder, seconds, args))
                rate, latency = results[label][-1]
                console.print(
                    f"cache {label:3}: {rate:8.1f} req/s  p50 {latency.get('50')}  "
                    f"p90 {latency.get('90')}  p99 {latency.get('99')}"
                )
        best = {label: max(rate for rate, _ in rounds) for label, rounds in results.items()}
        console.print(
            f"best of {args.rounds}: off {best['off']:.1f} req/s, on {best['on']:.1f} req/s "
            f"({best['on'] / best['off']:.1f}x)"
        )
    return 0


def _measure(
    database_url: str, folder: Path, cache_seconds: str, args: argparse.Namespace
) -> tuple[float, dict[str, str]]:
    env = os.environ | {
        "DATABASE_URL": database_url,
        "INSTANCE_DIR": str(folder / "instance"),
        "SECRET_KEY": "bench-page-cache-secret",
        "PAGE_CACHE_SECONDS": cache_seconds,
        "MEILI_URL": "http://127.0.0.1:9",  # the thread page does not search
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PREFIX": "benchpagecache",
    }
    env.pop("REDIS_URL", None)
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    port = free_port()
    server = start_server(env, port)
    try:
        return run_wrk(f"http://127.0.0.1:{port}/t/1", args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    run_main(main)
