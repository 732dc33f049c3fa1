"""Reading typed numbers: ASCII digits only, within bounds, one clear message otherwise."""

from __future__ import annotations

import pytest

from community.core.errors import FormErrors
from community.core.forms import (
    MAX_ID,
    read_decimal_number,
    read_whole_number,
    record_id,
    record_ids,
    some_record_ids,
    whole_number,
)

# Each passes str.isdigit() (or float()), which is how a 500 got in: int("²") raises, and
# int("١٢") quietly reads 12.
OTHER_SCRIPTS = ["²", "١٢", "１２", "٣", "12²", "⑫"]


@pytest.mark.parametrize("typed", [*OTHER_SCRIPTS, "", " ", "-1", "+1", "1.0", "1_000", "0x1f"])
def test_only_ascii_digits_are_whole_numbers(typed: str) -> None:
    assert read_whole_number(typed) is None
    with pytest.raises(FormErrors) as caught:
        whole_number(typed, field="days", low=0, high=10)
    assert caught.value.errors == {"days": "Enter a whole number from 0 to 10."}


def test_whole_numbers_within_bounds() -> None:
    assert whole_number(" 7 ", field="days", low=1, high=10) == 7
    assert whole_number("010", field="days", low=1, high=10) == 10
    with pytest.raises(FormErrors):
        whole_number("11", field="days", low=1, high=10)
    with pytest.raises(FormErrors) as caught:
        whole_number("0", field="level", low=1, high=4, message="Levels go from 1 to 4.")
    assert caught.value.errors == {"level": "Levels go from 1 to 4."}
    assert read_whole_number("9" * 20) is None  # no unbounded int() on what a form sends


def test_record_ids_fit_the_database() -> None:
    assert record_id(str(MAX_ID), field="id") == MAX_ID
    for typed in ("0", str(MAX_ID + 1), "²"):
        with pytest.raises(FormErrors) as caught:
            record_id(typed, field="id")
        assert caught.value.errors == {"id": "This is not a valid id."}
    assert record_ids(["3", " ", "4"], field="items") == [3, 4]
    with pytest.raises(FormErrors):
        record_ids(["3", "١٢"], field="items")
    assert some_record_ids(["3", "²", "١٢", "0", str(MAX_ID + 1), "nonsense", "4"]) == [3, 4]


@pytest.mark.parametrize("typed", [*OTHER_SCRIPTS, "nan", "inf", "1e3", "1_0", "-0.5", "0.", ""])
def test_only_plain_decimals_are_decimal_numbers(typed: str) -> None:
    assert read_decimal_number(typed) is None


def test_decimal_numbers() -> None:
    assert read_decimal_number(" 0.25 ") == 0.25
    assert read_decimal_number(".5") == 0.5
    assert read_decimal_number("35") == 35.0
