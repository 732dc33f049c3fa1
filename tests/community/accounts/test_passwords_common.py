"""The bundled list of common passwords: every listed password is refused by the policy, in any
case and with surrounding spaces; unusual ones pass."""

from __future__ import annotations

import gzip
from importlib import resources

import pytest

from community.core import common_passwords
from community.core.identity import IdentityError, check_password_policy

STRONG_UNUSUAL = "violet-tundra-mosaic-9"


def _bundled_lines() -> list[str]:
    raw = resources.files("community.core").joinpath(*common_passwords.DATA_FILE).read_bytes()
    return gzip.decompress(raw).decode().splitlines()


def test_the_bundled_list_has_the_top_100000_passwords_and_refuses_every_one() -> None:
    lines = _bundled_lines()
    assert len(lines) >= 100_000
    assert lines[:4] == ["123456", "password", "12345678", "qwerty"]  # most frequent first
    assert all(common_passwords.is_common(line) for line in lines)
    # Case-folded duplicates ("Password", "password") count once: still 100,000 and more.
    assert common_passwords.count() >= 100_000


@pytest.mark.parametrize(
    "password",
    [
        "correcthorsebatterystaple",
        "CorrectHorseBatteryStaple",
        "  correcthorsebatterystaple ",
        "correct horse battery staple",
        "Tr0ub4dor&3",
        "hunter2",
        "P@ssw0rd",
        "trustno1",
    ],
)
def test_passwords_famous_from_publications_are_listed(password: str) -> None:
    assert common_passwords.is_common(password)


@pytest.mark.parametrize(
    "password",
    # Long enough for the length floor and, some of them, strong enough for zxcvbn: the list
    # is what refuses them.
    ["correcthorsebatterystaple", "PASSWORD1234", "iloveyou2", "qwertyuiop123", "1qaz2wsx3edc"],
)
def test_the_policy_refuses_common_passwords_with_a_clear_message(password: str) -> None:
    assert common_passwords.is_common(password)
    with pytest.raises(IdentityError, match="most common ones"):
        check_password_policy(password)


def test_a_strong_unusual_password_is_accepted() -> None:
    assert not common_passwords.is_common(STRONG_UNUSUAL)
    check_password_policy(STRONG_UNUSUAL)


def test_the_list_is_kept_compactly() -> None:
    digests = common_passwords._load()
    assert digests.typecode == "Q"
    assert digests.itemsize * len(digests) < 1_000_000
    assert list(digests) == sorted(digests)
