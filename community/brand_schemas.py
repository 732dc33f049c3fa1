"""What a brand and its forums are created and changed with (admin pages, API, command line),
and what the admins' API answers. Inputs forbid unknown fields; every bound is checked here, so
a service never stores a value out of range."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from community.core.forms import read_decimal_number, read_whole_number
from community.core.i18n import SUPPORTED_LOCALES
from community.core.identity import IdentityError, normalise_email
from community.core.models import ForumAccess, ModerationPolicy
from community.core.schemas import Input, Output, Text

# Lowercase letters, digits and inner hyphens: the slug is a path segment (/b/<slug>).
SLUG_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
BRAND_SLUG_LENGTH = (2, 40)
FORUM_SLUG_LENGTH = (2, 60)
DESCRIPTION_MAX = 2000
CONDUCT_MAX = 20_000
# The promotion defaults (usefulness 0-100, as kb.search_settings bounds them) and how often an
# article comes up for review.
THRESHOLD_RANGE = (0.0, 100.0)
REVIEW_DAYS_RANGE = (7, 3650)
MAX_MOVE = 500  # threads in one bulk move


def _slug(low: int, high: int) -> AfterValidator:
    def check(value: str) -> str:
        if not low <= len(value) <= high or not SLUG_PATTERN.fullmatch(value):
            raise ValueError(
                f"use {low} to {high} lowercase letters, digits and hyphens (not first or last)"
            )
        return value

    return AfterValidator(check)


def _name(value: str) -> str:
    text = " ".join(value.split())
    if not text:
        raise ValueError("a name is required")
    if any(not ch.isprintable() for ch in text):
        raise ValueError("names may not contain control characters")
    return text


def _locale(value: str) -> str:
    if value not in SUPPORTED_LOCALES:
        raise ValueError(f"one of {', '.join(SUPPORTED_LOCALES)}")
    return value


def _email(value: str) -> str:
    """Empty (no contact address) or a valid address, as normalised for accounts."""
    if not value.strip():
        return ""
    try:
        return normalise_email(value)[0]
    except IdentityError as exc:
        raise ValueError(str(exc)) from exc


def _decimal(value: object) -> object:
    """Typed numbers as the forms read them: "35" and "35.5", never "1_0", "nan" or "٣"."""
    if isinstance(value, str):
        number = read_decimal_number(value)
        if number is None:
            raise ValueError("enter a number")
        return number
    return value


def _whole(value: object) -> object:
    if isinstance(value, str):
        number = read_whole_number(value)
        if number is None:
            raise ValueError("enter a whole number")
        return number
    return value


BrandSlug = Annotated[str, _slug(*BRAND_SLUG_LENGTH)]
ForumSlug = Annotated[str, _slug(*FORUM_SLUG_LENGTH)]
Name = Annotated[Text, Field(min_length=1, max_length=100), AfterValidator(_name)]
Description = Annotated[Text, Field(max_length=DESCRIPTION_MAX)]
Locale = Annotated[str, AfterValidator(_locale)]
ContactEmail = Annotated[Text, Field(max_length=254), AfterValidator(_email)]
Threshold = Annotated[
    float,
    BeforeValidator(_decimal),
    Field(ge=THRESHOLD_RANGE[0], le=THRESHOLD_RANGE[1], allow_inf_nan=False),
]
ReviewDays = Annotated[
    int, BeforeValidator(_whole), Field(ge=REVIEW_DAYS_RANGE[0], le=REVIEW_DAYS_RANGE[1])
]
Position = Annotated[int, BeforeValidator(_whole), Field(ge=0, le=10_000)]


class BrandPatch(Input):
    """A brand's settings; what is left out stays as it is. The slug is fixed once created
    (links and search indexes carry it)."""

    name: Name | None = None
    default_locale: Locale | None = None
    description: Description | None = None
    code_of_conduct: Annotated[Text, Field(max_length=CONDUCT_MAX)] | None = None
    contact_email: ContactEmail | None = None
    solution_threshold: Threshold | None = None
    article_threshold: Threshold | None = None
    review_period_days: ReviewDays | None = None


class BrandIn(BrandPatch):
    slug: BrandSlug
    name: Name


class ForumPatch(Input):
    """A forum's settings; `position` moves it to that place in the brand's list (0 first)."""

    name: Name | None = None
    description: Description | None = None
    access: ForumAccess | None = None
    moderation_policy: ModerationPolicy | None = None
    position: Position | None = None


class ForumIn(Input):
    slug: ForumSlug
    name: Name
    description: Description = ""
    access: ForumAccess = ForumAccess.PUBLIC
    moderation_policy: ModerationPolicy = ModerationPolicy.OPEN


class ThreadMoveIn(Input):
    """Threads of the brand (ids) to move into one of its forums (slug)."""

    thread_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        min_length=1, max_length=MAX_MOVE
    )
    forum: ForumSlug


class BrandAdminOut(Output):
    id: int
    slug: str
    name: str
    description: str
    default_locale: str
    code_of_conduct: str
    contact_email: str
    solution_threshold: float
    article_threshold: float
    review_period_days: int
    archived_at: datetime | None


class ForumAdminOut(Output):
    id: int
    slug: str
    name: str
    description: str
    position: int
    access: ForumAccess
    moderation_policy: ModerationPolicy
    archived_at: datetime | None
    thread_count: int
    post_count: int


class ThreadMoveOut(Output):
    moved: int = Field(description="Threads moved (those already in the forum are left alone)")
    forum: str
