"""What the identity pages tell by their timing, and what the common-password check costs.

Answers that must not tell whether an address has an account are timed side by side, the two
cases interleaved so that a change in the machine's load weighs on both:
- "Forgot password?" for an address with an account and for one without;
- sign-up with a free address and with one that has an account, with the site's real Argon2
  cost (the password is hashed either way);
- a password sign-in of an account whose address is not confirmed (the right password) and a
  wrong password for a confirmed one.
Each case prints the server time (median, p90) and SQL statements per request. Then the common
passwords: the first check's load time, the memory the list holds, and a check's cost.

    .venv/bin/python bench/bench_identity.py
    .venv/bin/python bench/bench_identity.py --rounds 20     # a quick run
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    ServerTimer,
    SqlMeter,
    bench_settings,
    calibrate,
    code_version,
    console,
    percentile,
    run_main,
    workspace,
)
from fastapi.testclient import TestClient
from rich.table import Table

from community.app import create_app
from community.core import common_passwords, migrate
from community.core.auth import Passwords
from community.core.clock import utcnow
from community.core.db import make_engine, make_session_factory
from community.core.identity import normalise_email, normalise_username
from community.core.models import Brand, Forum, User
from community.core.settings import Settings

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
PASSWORD = "amber-lantern-fjord-27"  # noqa: S105 - the seeded members' password


@dataclass
class Case:
    name: str
    server_ms: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)


def _settings(instance_dir: Path, *, real_hashing: bool) -> Settings:
    settings = bench_settings(
        f"sqlite:///{instance_dir / 'bench.db'}",
        instance_dir,
        # Nothing timed here talks to Meilisearch; a URL keeps the app from starting its own.
        meili_url="http://127.0.0.1:9",
        timing_requests=True,
    )
    if real_hashing:  # the site's defaults (RFC 9106 low-memory profile), not the bench's cheap one
        defaults = Settings.model_fields
        settings = settings.model_copy(
            update={
                name: defaults[name].default
                for name in ("argon2_time_cost", "argon2_memory_kib", "argon2_parallelism")
            }
            # Every failed sign-in here comes from one address (the test client): the
            # per-address throttle would answer 429 after 30, and those answers are not what
            # is compared. Each round tries its own accounts, so the per-account one stays.
            | {"login_failures_per_ip": 100_000}
        )
    return settings


def _seed(settings: Settings, sign_ins: int) -> None:
    """A brand, and members: `priya` (confirmed), and for each sign-in round its own confirmed
    and unconfirmed member (the login throttle counts failures per account: one account tried
    a hundred times would be timing 429s)."""
    migrate.upgrade(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    # Hashed at the site's real cost: a sign-in verifies with the cost the hash was made with.
    hashed = Passwords(Settings()).hash(PASSWORD)
    with make_session_factory(engine)() as db:
        brand = Brand(slug="acme", name="Acme", description="", theme={}, default_locale="en")
        db.add(brand)
        db.flush()
        db.add(Forum(brand_id=brand.id, slug="general", name="General", description=""))
        members = [("priya", True)]
        for number in range(sign_ins):
            members += [(f"confirmed{number}", True), (f"pending{number}", False)]
        for name, confirmed in members:
            shown, key = normalise_username(name)
            address, address_key = normalise_email(f"{name}@example.com")
            db.add(
                User(
                    username=shown,
                    username_key=key,
                    email=address,
                    email_key=address_key,
                    display_name=shown,
                    password_hash=hashed,
                    email_verified_at=utcnow() if confirmed else None,
                )
            )
        db.commit()
    engine.dispose()


def _interleaved(
    settings: Settings, rounds: int, requests: dict[str, Callable[[TestClient, str, int], int]]
) -> list[Case]:
    engine = make_engine(settings.sqlalchemy_url)
    meter = SqlMeter(engine)
    timer = ServerTimer(create_app(settings, engine=engine))
    cases = [Case(name) for name in requests]
    with TestClient(timer, base_url="http://testserver") as client:
        page = client.get("/login")
        match = CSRF.search(page.text)
        assert match is not None, f"no CSRF token on /login ({page.status_code}: {page.text[:200]})"
        token = match.group(1)
        for number in range(rounds + 3):  # 3 unmeasured rounds first
            for case, send in zip(cases, requests.values(), strict=True):
                statements = meter.statements
                status = send(client, token, number)
                if number >= 3:
                    case.server_ms.append(timer.last * 1000)
                    case.statements.append(meter.statements - statements)
                    case.statuses.add(status)
    engine.dispose()
    return cases


def _forgot(address: str) -> Callable[[TestClient, str, int], int]:
    def send(client: TestClient, token: str, _number: int) -> int:
        data = {"email": address, "csrf_token": token}
        return client.post("/password/forgot", data=data).status_code

    return send


def _sign_up(taken: bool) -> Callable[[TestClient, str, int], int]:
    def send(client: TestClient, token: str, number: int) -> int:
        kind = "t" if taken else "f"
        data = {
            "username": f"new{kind}{number}",
            "email": "priya@example.com" if taken else f"new{kind}{number}@example.com",
            "password": "quartz-meadow-lantern-83",
            "csrf_token": token,
        }
        return client.post("/register", data=data).status_code

    return send


def _sign_in(login: str, password: str) -> Callable[[TestClient, str, int], int]:
    def send(client: TestClient, token: str, number: int) -> int:
        data = {"login": f"{login}{number}", "password": password, "csrf_token": token}
        return client.post("/login", data=data, follow_redirects=False).status_code

    return send


def _common_passwords() -> tuple[float, float, float]:
    """(first check's ms, KiB the list holds, µs per check)."""
    tracemalloc.start()
    started = time.perf_counter()
    common_passwords.is_common("a-password-nobody-uses-9431")
    load_ms = (time.perf_counter() - started) * 1000
    held_kib = tracemalloc.get_traced_memory()[0] / 1024
    tracemalloc.stop()
    probes = ["123456", "correcthorsebatterystaple", "quartz-meadow-lantern-83", "Password1"] * 5000
    started = time.perf_counter()
    for probe in probes:
        common_passwords.is_common(probe)
    return load_ms, held_kib, (time.perf_counter() - started) / len(probes) * 1e6


def _table(title: str, cases: list[Case]) -> Table:
    table = Table(title=title)
    for column in ("case", "median ms", "p90 ms", "statements", "status"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for case in cases:
        table.add_row(
            case.name,
            f"{statistics.median(case.server_ms):.2f}",
            f"{percentile(case.server_ms, 90):.2f}",
            "/".join(str(n) for n in sorted(set(case.statements))),
            "/".join(str(s) for s in sorted(case.statuses)),
        )
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100, help="measured requests per case")
    options = parser.parse_args()
    console.print(f"code {code_version()}, machine speed {calibrate():.1f} ms (lower is faster)")
    # First, in a process that has not checked a password yet (the list loads on first use).
    load_ms, held_kib, check_us = _common_passwords()
    with workspace("bench_identity_") as instance_dir:
        cheap = _settings(instance_dir, real_hashing=False)
        slow_rounds = max(10, options.rounds // 4)  # Argon2 at the site's cost: ~0.1 s a request
        _seed(cheap, slow_rounds + 3)
        forgot = _interleaved(
            cheap,
            options.rounds,
            {
                "forgot password: address with an account": _forgot("priya@example.com"),
                "forgot password: address without one": _forgot("nobody@example.com"),
            },
        )
        real = _settings(instance_dir, real_hashing=True)
        sign_up = _interleaved(
            real,
            slow_rounds,
            {
                "sign-up: free address": _sign_up(taken=False),
                "sign-up: taken address": _sign_up(True),
            },
        )
        sign_in = _interleaved(
            real,
            slow_rounds,
            {
                "sign-in: unconfirmed account, right password": _sign_in("pending", PASSWORD),
                "sign-in: confirmed account, wrong password": _sign_in("confirmed", "not-it"),
            },
        )
    console.print(_table("Answers that must not tell whether an address has an account", forgot))
    console.print(_table("The same, with the site's real Argon2 cost", sign_up + sign_in))
    console.print(
        f"Common passwords ({common_passwords.count():,} bundled): first check {load_ms:.0f} ms "
        f"(loads the list), {held_kib:.0f} KiB held, {check_us:.1f} µs a check."
    )
    return 0


if __name__ == "__main__":
    run_main(main)
