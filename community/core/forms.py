"""Turning submitted form fields into validated input models, with messages people can read."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from community.core.errors import FormErrors
from community.core.i18n import gettext as _

ModelT = TypeVar("ModelT", bound=BaseModel)

# Row ids are 64-bit integers: a larger number is no row, and must not reach the database
# (PostgreSQL refuses to compare a BIGINT with it).
MAX_ID = 2**63 - 1
# ASCII digits only: str.isdigit() also accepts "²" (which int() then refuses) and "١٢" (which
# int() reads as 12), so a typed number must never be checked that way. No more digits than
# an id has, so int() never works on an unbounded string.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,19}")
# float() has the same habit and also reads "nan", "inf" and "1_0".
_DECIMAL_NUMBER = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,12})?|\.[0-9]{1,12}")


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    context = error.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and context.get("min_length") == 1):
        return _("This field is required.")
    if kind == "string_too_long":
        return _("This is too long (at most %(max)d characters).") % {
            "max": context.get("max_length", 0)
        }
    if kind == "string_too_short":
        return _("This is too short (at least %(min)d characters).") % {
            "min": context.get("min_length", 0)
        }
    if kind in ("literal_error", "enum"):
        return _("Choose one of the offered options.")
    return _("This value is not valid.")


def parse_form(model: type[ModelT], fields: dict[str, Any]) -> ModelT:
    """Validate `fields` against `model`; FormErrors maps each field to one message."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            field = ".".join(str(part) for part in error.get("loc", ())) or "form"
            errors.setdefault(field, _message(dict(error)))
        raise FormErrors(errors) from exc


def read_whole_number(raw: str) -> int | None:
    """The number in `raw` if it is written with ASCII digits (spaces around allowed), else
    None. The one place typed numbers are read; whole_number() adds bounds and the message."""
    text = raw.strip()
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else None


def read_decimal_number(raw: str) -> float | None:
    """Like read_whole_number() for numbers that may have a decimal point ("0.5", "35")."""
    text = raw.strip()
    return float(text) if _DECIMAL_NUMBER.fullmatch(text) else None


def whole_number(raw: str, *, field: str, low: int, high: int, message: str | None = None) -> int:
    """A typed whole number from `low` to `high`; anything else is a FormErrors for `field`,
    so the caller answers 422 and changes nothing."""
    number = read_whole_number(raw)
    if number is None or not low <= number <= high:
        raise FormErrors(
            {
                field: message
                or _("Enter a whole number from %(low)d to %(high)d.") % {"low": low, "high": high}
            }
        )
    return number


def record_id(raw: str, *, field: str) -> int:
    """The id of a row as a form sends it (a hidden field, a checkbox, a typed number)."""
    return whole_number(raw, field=field, low=1, high=MAX_ID, message=_("This is not a valid id."))


def optional_record_id(raw: str, *, field: str) -> int | None:
    """An id field that may be left empty."""
    return record_id(raw, field=field) if raw.strip() else None


def record_ids(values: Iterable[str], *, field: str) -> list[int]:
    """Ids from a list field (checkboxes) or a comma-separated text; empty parts are skipped."""
    return [record_id(value, field=field) for value in values if value.strip()]


def some_record_ids(values: Iterable[str]) -> list[int]:
    """Ids from checkboxes of a bulk action, leaving out anything that is not one (a tampered
    box must not stop the batch, as a stale one does not)."""
    numbers = (read_whole_number(value) for value in values)
    return [number for number in numbers if number is not None and 1 <= number <= MAX_ID]
