"""Turning submitted form fields into validated input models, with messages people can read."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from community.errors import FormErrors
from community.i18n import gettext as _

ModelT = TypeVar("ModelT", bound=BaseModel)


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
