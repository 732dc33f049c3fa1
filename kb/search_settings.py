"""A brand's search settings as its admins set them on the search page: synonym groups and the
thresholds that make a solved thread a community solution or an article, and how often articles
come up for review (the semantic search model, on the same page, is kb.search_model)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from community.core import indexing
from community.core.audit import record_audit
from community.core.errors import FormErrors
from community.core.forms import read_decimal_number
from community.core.i18n import gettext as _
from community.core.models import Brand, User

MAX_GROUPS = 200
MAX_GROUP_WORDS = 20
MAX_WORD_LENGTH = 40
# Each number the form asks for, with the range it must fall in.
NUMBER_RANGES = {
    "solution_threshold": (0, 100),
    "article_threshold": (0, 100),
    "review_period_days": (7, 3650),
}


@dataclass(frozen=True, slots=True)
class SearchSettingsForm:
    """The form as typed: one synonym group a line, words split by commas; the numbers as text."""

    synonyms: str = ""
    solution_threshold: str = ""
    article_threshold: str = ""
    review_period_days: str = ""


def synonym_groups(text: str) -> list[list[str]]:
    """Lines of comma-separated words, lower-cased; a line with fewer than two words says
    nothing and is dropped. Longer input is cut (lines, words per line, word length)."""
    groups = []
    for line in text.splitlines()[:MAX_GROUPS]:
        words = [word.strip().lower()[:MAX_WORD_LENGTH] for word in line.split(",") if word.strip()]
        if len(words) >= 2:
            groups.append(words[:MAX_GROUP_WORDS])
    return groups


def _numbers(form: SearchSettingsForm) -> dict[str, float]:
    """Every number in its range, or a FormErrors naming each one that is not."""
    errors: dict[str, str] = {}
    numbers: dict[str, float] = {}
    for name, (low, high) in NUMBER_RANGES.items():
        value = read_decimal_number(getattr(form, name))
        if value is None:
            errors[name] = _("Enter a number.")
            continue
        if not low <= value <= high:
            errors[name] = _("Enter a number from %(low)d to %(high)d.") % {
                "low": low,
                "high": high,
            }
        numbers[name] = value
    if errors:
        raise FormErrors(errors)
    return numbers


def do_save_search_settings(
    db: Session, admin: User, brand: Brand, form: SearchSettingsForm, *, ip: str | None = None
) -> None:
    """Checks everything before changing anything: a FormErrors leaves the brand as it was.
    An outbox event has the search index follow after commit."""
    groups = synonym_groups(form.synonyms)
    numbers = _numbers(form)
    before = {"synonyms": brand.synonyms, "solution_threshold": brand.solution_threshold}
    brand.synonyms = groups
    brand.solution_threshold = numbers["solution_threshold"]
    brand.article_threshold = numbers["article_threshold"]
    brand.review_period_days = int(numbers["review_period_days"])
    record_audit(
        db,
        actor=admin,
        action="brand.search_settings",
        target_type="brand",
        target_id=brand.id,
        before=before,
        after={"synonyms": groups, "solution_threshold": brand.solution_threshold},
        ip=ip,
    )
    indexing.brand_search_settings_changed(db, brand.id)
