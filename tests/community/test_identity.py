"""Username, e-mail and password rules (pure functions: no database)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from community.core.identity import (
    IdentityError,
    check_password_policy,
    normalise_display_name,
    normalise_email,
    normalise_username,
)


@pytest.mark.parametrize(
    ("typed", "display", "key"),
    [
        ("Jordan_K", "Jordan_K", "jordan_k"),
        ("ＪＯＲＤＡＮ", "JORDAN", "jordan"),  # full-width letters fold to ASCII
        ("José.Luis", "José.Luis", "josé.luis"),
        ("  priya  ", "priya", "priya"),
        ("андрей", "андрей", "андрей"),  # one script, not a look-alike mix
    ],
)
def test_usernames_are_normalised(typed: str, display: str, key: str) -> None:
    assert normalise_username(typed) == (display, key)


@pytest.mark.parametrize(
    "typed",
    [
        "Admin",  # reserved, whatever the case
        "ＡＤＭＩＮ",  # full-width spelling of a reserved name
        "аdmin",  # Cyrillic "а" mixed with Latin
        "ad\u200bmin",  # zero-width space
        "ad\u202emin",  # right-to-left override
        "two words",
        "ab",
        "x" * 31,
        "_leading",
        "<script>",
        "",
    ],
)
def test_bad_usernames_are_refused(typed: str) -> None:
    with pytest.raises(IdentityError):
        normalise_username(typed)


@given(st.text(max_size=40))
def test_username_normalisation_never_crashes_and_is_idempotent(typed: str) -> None:
    try:
        display, key = normalise_username(typed)
    except IdentityError:
        return
    assert normalise_username(display)[1] == key
    assert normalise_username(key)[1] == key


def test_emails_are_normalised_and_checked() -> None:
    assert normalise_email(" Jordan@Example.COM ") == ("Jordan@example.com", "jordan@example.com")
    for bad in ("not-an-email", "a@b", "@example.com", "a b@example.com"):
        with pytest.raises(IdentityError):
            normalise_email(bad)


@pytest.mark.parametrize(
    "password",
    ["short", "password", "password123", "qwertyuiop", "11111111", "jordan_k2024"],
)
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(IdentityError):
        check_password_policy(password, user_inputs=["jordan_k"])


@pytest.mark.parametrize(
    "password",
    ["tall-orange-kettle-41", "staple kettle horse violin", "ñandú veloz 2026", "x7$Lq9#vB2"],
)
def test_reasonable_passwords_are_accepted(password: str) -> None:
    check_password_policy(password)


def test_password_length_limits() -> None:
    check_password_policy("kettle orange tall " * 13)  # 247 characters: fine
    with pytest.raises(IdentityError):
        check_password_policy("a" * 257)


def test_display_names_drop_control_characters() -> None:
    assert normalise_display_name("  Lee\u202e  from\tSupport ", fallback="x") == "Lee from Support"
    assert normalise_display_name("   ", fallback="fallback") == "fallback"
    with pytest.raises(IdentityError):
        normalise_display_name("x" * 61, fallback="x")
