"""Authentication building blocks without HTTP: hashing cost, throttling storages, sessions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine

from community.auth import LoginThrottle, Passwords
from community.clock import utcnow
from community.settings import Settings
from tests.conftest import LIMIT_STORAGES, REDIS_URL


@pytest.fixture(params=LIMIT_STORAGES)
def throttle(request: pytest.FixtureRequest, tmp_path: Path) -> LoginThrottle:
    redis_url = REDIS_URL if request.param == "redis" else None
    settings = Settings(
        instance_dir=tmp_path,
        redis_url=redis_url,
        login_failures_per_account=3,
        login_failures_per_ip=5,
        secret_key="x",
    )
    return LoginThrottle(settings)


def test_throttle_counts_per_account_and_per_address(throttle: LoginThrottle) -> None:
    account, other, ip = (f"acct-{uuid.uuid4().hex}", f"acct-{uuid.uuid4().hex}", uuid.uuid4().hex)
    for _ in range(3):
        assert throttle.check(account, ip) is None
        throttle.record_failure(account, ip)
    blocked = throttle.check(account, "another-address")
    assert blocked is not None
    assert 0 < blocked.retry_after_seconds <= 15 * 60 + 1
    assert throttle.check(other, ip) is None  # the address has 2 failures left
    throttle.record_failure(other, ip)
    throttle.record_failure(other, ip)
    assert throttle.check(f"acct-{uuid.uuid4().hex}", ip) is not None  # address exhausted


def test_success_clears_the_account_counter(throttle: LoginThrottle) -> None:
    account, ip = f"acct-{uuid.uuid4().hex}", uuid.uuid4().hex
    for _ in range(2):
        throttle.record_failure(account, ip)
    throttle.record_success(account)
    throttle.record_failure(account, ip)
    assert throttle.check(account, ip) is None


def test_memory_throttle_forgets_after_the_window(tmp_path: Path) -> None:
    settings = Settings(instance_dir=tmp_path, login_failures_per_account=1, secret_key="x")
    throttle = LoginThrottle(settings)
    throttle.record_failure("acct", "ip")
    assert throttle.check("acct", "ip") is not None
    with time_machine.travel(utcnow() + timedelta(minutes=16)):
        assert throttle.check("acct", "ip") is None


def test_production_hash_parameters_are_owasp_strength(tmp_path: Path) -> None:
    passwords = Passwords(Settings(instance_dir=tmp_path, secret_key="x"))
    hashed = passwords.hash("tall-orange-kettle-41")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify(hashed, "tall-orange-kettle-41")
    assert not passwords.verify(hashed, "tall-orange-kettle-42")
    assert not passwords.verify(None, "anything")  # accounts without a password never log in
    assert not passwords.verify("not-a-hash", "anything")
