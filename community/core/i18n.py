"""English and Spanish, chosen per request.

Catalogs are the .po files under community/translations, compiled in memory at start-up (no build
step, nothing generated to commit). The active translation lives in a context variable that the
request middleware sets, so templates and Python code translate without passing a locale around.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel import Locale
from babel.core import UnknownLocaleError, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

SUPPORTED_LOCALES = ("en", "es")
DEFAULT_LOCALE = "en"
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"

_active: ContextVar[NullTranslations | None] = ContextVar("active_translations", default=None)
_active_locale: ContextVar[str] = ContextVar("active_locale", default=DEFAULT_LOCALE)


@cache
def translations_for(locale: str) -> NullTranslations:
    po_path = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT_LOCALE or not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def activate(locale: str) -> None:
    chosen = locale if locale in SUPPORTED_LOCALES else DEFAULT_LOCALE
    _active_locale.set(chosen)
    _active.set(translations_for(chosen))


@contextmanager
def override(locale: str) -> Iterator[None]:
    """Translate in `locale` for a block (e-mails go out in the recipient's language)."""
    previous_locale, previous = _active_locale.get(), _active.get()
    activate(locale)
    try:
        yield
    finally:
        _active_locale.set(previous_locale)
        _active.set(previous)


def active_locale() -> str:
    return _active_locale.get()


def gettext(message: str) -> str:
    translations = _active.get()
    return translations.gettext(message) if translations else message


def ngettext(singular: str, plural: str, count: int) -> str:
    translations = _active.get()
    if translations:
        return translations.ngettext(singular, plural, count)
    return singular if count == 1 else plural


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags from an Accept-Language header, most preferred first."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if quality > 0:
            weighted.append((-quality, position, tag.replace("_", "-")))
    return [tag for _q, _p, tag in sorted(weighted)]


def negotiate(preferences: Iterable[str | None], accept_language: str | None) -> str:
    """The first explicit preference we support, else the browser's, else English."""
    for preference in preferences:
        if preference in SUPPORTED_LOCALES:
            return preference
    chosen = negotiate_locale(parse_accept_language(accept_language), SUPPORTED_LOCALES, sep="-")
    return chosen or DEFAULT_LOCALE


def language_name(locale: str) -> str:
    try:
        return Locale.parse(locale).get_display_name(locale) or locale
    except (ValueError, UnknownLocaleError):
        return locale
