"""What an agent types when publishing or editing a known issue, checked field by field.

Bad input raises FormErrors naming every field that is wrong, and nothing is changed."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.errors import FormErrors
from community.core.forms import read_whole_number
from community.core.i18n import gettext as _
from community.core.models import Brand, Forum, Tag
from crowdservice.known_issues.models import KnownIssueStatus

TITLE_MIN, TITLE_MAX = 3, 160
SUMMARY_MAX = 20_000
UPDATE_MAX = 5_000
TERM_MAX, TERMS_MAX = 60, 20
SCOPE_MAX = 50  # forums or tags named in one issue's scope
_SEPARATORS = re.compile(r"[,\n\r]+")
_SPACES = re.compile(r"\s+")


@dataclass
class IssueForm:
    """The raw fields, as the page or the API sent them."""

    title: str = ""
    summary: str = ""
    status: str = KnownIssueStatus.INVESTIGATING.value
    match_terms: list[str] = field(default_factory=list)
    forum_ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CleanIssue:
    title: str
    summary: str
    status: KnownIssueStatus
    match_terms: list[str]
    forum_ids: list[int]
    tags: list[str]


def _one_line(raw: str) -> str:
    text = unicodedata.normalize("NFC", _SPACES.sub(" ", raw)).strip()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")


def clean_title(raw: str, errors: dict[str, str]) -> str:
    title = _one_line(raw)
    if not TITLE_MIN <= len(title) <= TITLE_MAX:
        errors["title"] = _("Titles are %(min)d to %(max)d characters long.") % {
            "min": TITLE_MIN,
            "max": TITLE_MAX,
        }
    return title


def clean_text(raw: str, name: str, limit: int, errors: dict[str, str]) -> str:
    text = raw.replace("\r\n", "\n").replace("\x00", "").strip()
    if len(text) > limit:
        errors[name] = _("This is too long (at most %(max)d characters).") % {"max": limit}
    return text


def clean_status(raw: str, errors: dict[str, str]) -> KnownIssueStatus:
    try:
        return KnownIssueStatus(raw.strip())
    except ValueError:
        errors["status"] = _("Choose one of the offered options.")
        return KnownIssueStatus.INVESTIGATING


def split_terms(values: Iterable[str]) -> list[str]:
    """Pieces separated by commas or new lines, from one text box or a list (the API)."""
    return [piece for value in values for piece in _SEPARATORS.split(value)]


def clean_terms(raw: Iterable[str], errors: dict[str, str]) -> list[str]:
    terms: list[str] = []
    seen: set[str] = set()
    for piece in split_terms(raw):
        term = _one_line(piece)
        if not term or term.casefold() in seen:
            continue
        if len(term) > TERM_MAX:
            errors["match_terms"] = _("Each term is at most %(max)d characters long.") % {
                "max": TERM_MAX
            }
            return []
        seen.add(term.casefold())
        terms.append(term)
    if len(terms) > TERMS_MAX:
        errors["match_terms"] = _("Use at most %(max)d terms.") % {"max": TERMS_MAX}
        return []
    return terms


def clean_forums(
    db: Session, brand: Brand, raw: Iterable[str], errors: dict[str, str]
) -> list[int]:
    wanted: list[int] = []
    for value in raw:
        if not value.strip():
            continue
        number = read_whole_number(value.strip())
        if number is None or number < 1:
            errors["forum_ids"] = _("Choose forums of this brand.")
            return []
        if number not in wanted:
            wanted.append(number)
    if len(wanted) > SCOPE_MAX:
        errors["forum_ids"] = _("Choose forums of this brand.")
        return []
    if not wanted:
        return []
    found = set(
        db.scalars(select(Forum.id).where(Forum.id.in_(wanted), Forum.brand_id == brand.id))
    )
    if found != set(wanted):
        errors["forum_ids"] = _("Choose forums of this brand.")
        return []
    return wanted


def clean_tag_names(
    db: Session, brand: Brand, raw: Iterable[str], errors: dict[str, str]
) -> list[str]:
    names: list[str] = []
    for piece in split_terms(raw):
        name = unicodedata.normalize("NFKC", piece).strip().lower().replace(" ", "-")
        if name and name not in names:
            names.append(name)
    if len(names) > SCOPE_MAX or any(len(name) > 30 for name in names):
        errors["tags"] = _("Use tags that already exist in this brand.")
        return []
    if not names:
        return []
    known = set(db.scalars(select(Tag.name).where(Tag.brand_id == brand.id, Tag.name.in_(names))))
    unknown = [name for name in names if name not in known]
    if unknown:
        errors["tags"] = _("Unknown tags: %(tags)s") % {"tags": ", ".join(unknown)}
        return []
    return names


def clean_issue(db: Session, brand: Brand, form: IssueForm) -> CleanIssue:
    errors: dict[str, str] = {}
    cleaned = CleanIssue(
        title=clean_title(form.title, errors),
        summary=clean_text(form.summary, "summary", SUMMARY_MAX, errors),
        status=clean_status(form.status, errors),
        match_terms=clean_terms(form.match_terms, errors),
        forum_ids=clean_forums(db, brand, form.forum_ids, errors),
        tags=clean_tag_names(db, brand, form.tags, errors),
    )
    if errors:
        raise FormErrors(errors)
    return cleaned


def status_label(status: KnownIssueStatus) -> str:
    """The status in the reader's language."""
    names = {
        KnownIssueStatus.INVESTIGATING: _("Investigating"),
        KnownIssueStatus.IDENTIFIED: _("Identified"),
        KnownIssueStatus.FIXED: _("Fixed"),
    }
    return names[status]
