"""Stored JSON (audit before/after, triage reasons) as text a person reads: field names as
labels, codes as their translated names, numbers and times in the reader's locale, lists and
mappings flattened. Never a Python or JSON literal on a page."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from babel.dates import format_datetime
from babel.numbers import format_decimal

from community.core.i18n import active_locale
from community.core.i18n import gettext as _
from community.core.labels import label

EMPTY = "–"
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def number(value: float) -> str:
    return format_decimal(value, format="#,##0.##", locale=active_locale())


def key_label(key: str, known: Mapping[str, str]) -> str:
    """A field's name: its translated label when known, else the key made readable."""
    found = known.get(key)
    return _(found) if found else key.replace("_", " ").strip().capitalize()


def value_text(value: Any, known: Mapping[str, str] | None = None) -> str:
    """Any stored value as text. Strings that are codes with a label (roles, statuses,
    visibilities) show that label; `known` names the keys of nested mappings."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, str):
        if _ISO_TIME.match(value):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                return value
            return format_datetime(moment, format="short", locale=active_locale())
        return label(value)
    if isinstance(value, Mapping):
        return " · ".join(
            f"{key_label(str(key), known or {})}: {value_text(item, known)}"
            for key, item in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(value_text(item, known) for item in value)
    return str(value)
