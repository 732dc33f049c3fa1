"""Authentication building blocks without HTTP: hashing cost, throttling storages, sessions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine

from community.core.auth import Passwords
from community.core.clock import utcnow
from community.core.settings import Settings
from community.core.throttle import LoginThrottle
from tests.conftest import LIMIT_STORAGES, REDIS_URL


@pytest.fixture(params=LIMIT_STORAGES)
def throttle(request: pytest.FixtureRequest, tmp_path: Path) -> LoginThrottle:
    redis_url = REDIS_URL if request.param == "redis" else None
    settings = Settings(
        instance_dir=tmp_path,
        redis_url=redis_url,
        # Each test's own counters in the shared Redis.
        rate_limit_prefix=f"t{uuid.uuid4().hex[:10]}",
        login_failures_per_account=3,
        login_failures_per_ip=5,
        login_failures_account_wide=8,
        secret_key="x",
    )
    return LoginThrottle(settings)


def _names() -> tuple[str, str]:
    return f"acct-{uuid.uuid4().hex}", uuid.uuid4().hex


def test_throttle_counts_per_account_and_address_and_per_address(
    throttle: LoginThrottle,
) -> None:
    account, ip = _names()
    other = f"acct-{uuid.uuid4().hex}"
    for _ in range(3):
        assert throttle.check(account, ip) is None
        throttle.record_failure(account, ip)
    blocked = throttle.check(account, ip)
    assert blocked is not None
    assert 0 < blocked.retry_after_seconds <= 15 * 60 + 1
    # Failures elsewhere do not stop the account's owner at their own address.
    assert throttle.check(account, "owner-address") is None
    assert throttle.check(other, ip) is None  # the address has 2 failures left
    throttle.record_failure(other, ip)
    throttle.record_failure(other, ip)
    assert throttle.check(f"acct-{uuid.uuid4().hex}", ip) is not None  # address exhausted


def test_a_distributed_attack_slows_to_one_try_per_address(throttle: LoginThrottle) -> None:
    account, _ip = _names()
    for index in range(8):  # the account-wide count, from addresses that stay under their own
        throttle.record_failure(account, f"bot-{index // 2}")
    assert throttle.check(account, "bot-0") is not None  # failed before: no more tries now
    assert throttle.check(account, "owner-address") is None  # no failures here: its try stands
    throttle.record_failure(account, "bot-new")
    assert throttle.check(account, "bot-new") is not None  # one try, then wait
    other, _ = _names()
    assert throttle.check(other, "bot-0") is None  # other accounts are not slowed


def test_success_clears_the_count_of_that_address(throttle: LoginThrottle) -> None:
    account, ip = _names()
    for _ in range(2):
        throttle.record_failure(account, ip)
        throttle.record_failure(account, "elsewhere")
    throttle.record_success(account, ip)
    throttle.record_failure(account, ip)
    throttle.record_failure(account, ip)
    assert throttle.check(account, ip) is None  # 2 since the success
    throttle.record_failure(account, "elsewhere")
    assert throttle.check(account, "elsewhere") is not None  # not cleared there


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
