"""Rules for names, e-mail addresses and passwords. Pure functions: no database, no HTTP.

Usernames follow RFC 8265 (PRECIS UsernameCaseMapped) for the unique key, so look-alikes such as
full-width "ＪＯＨＮ" and "john" collide, and UTS #39 mixed-script detection, so "аdmin" (with a
Cyrillic "а") is refused rather than impersonating "admin".

The look-alike tables (confusable_homoglyphs, ~6 MiB) and the password strength estimator
(zxcvbn's word lists, ~12 MiB) load on first use, not on import: a web process carries them
only once it has checked a username or a new password.
"""

from __future__ import annotations

import re
import unicodedata

import precis_i18n
from email_validator import EmailNotValidError, validate_email

from community.core import common_passwords
from community.core.i18n import gettext as _

USERNAME_MIN = 3
USERNAME_MAX = 30
PASSWORD_MIN = 8
PASSWORD_MAX = 256
# zxcvbn score 0-1 means "guessable within ~10^6 attempts": common passwords, keyboard walks.
PASSWORD_MIN_STRENGTH = 2
# Strength estimation cost grows with length; a long password's strength is not in doubt.
_STRENGTH_SAMPLE = 64

RESERVED_USERNAMES = frozenset(
    {
        "admin",
        "administrator",
        "root",
        "system",
        "support",
        "moderator",
        "mod",
        "staff",
        "agent",
        "official",
        "security",
        "help",
        "api",
        "static",
        "login",
        "logout",
        "register",
        "account",
        "null",
        "undefined",
        "anonymous",
        "everyone",
        "here",
    }
)

_USERNAME_PUNCTUATION = frozenset("_.-")
_USERNAME_PROFILE = precis_i18n.get_profile("UsernameCaseMapped")
_USERNAME_DISPLAY_PROFILE = precis_i18n.get_profile("UsernameCasePreserved")
_SPACES = re.compile(r"\s+")


class IdentityError(ValueError):
    """A value a person typed that we cannot accept; the message is shown to them."""


def normalise_username(raw: str) -> tuple[str, str]:
    """Return (display form, unique key) or raise IdentityError with a readable reason."""
    candidate = raw.strip()
    if not candidate:
        raise IdentityError(_("Choose a username."))
    try:
        display = _USERNAME_DISPLAY_PROFILE.enforce(candidate)
        key = _USERNAME_PROFILE.enforce(candidate)
    except UnicodeEncodeError as exc:
        raise IdentityError(
            _("Usernames may use letters, digits and . _ - (no spaces or invisible characters).")
        ) from exc
    if not USERNAME_MIN <= len(key) <= USERNAME_MAX:
        raise IdentityError(
            _("Usernames are %(min)d to %(max)d characters long.")
            % {"min": USERNAME_MIN, "max": USERNAME_MAX}
        )
    if not all(ch.isalnum() or ch in _USERNAME_PUNCTUATION for ch in key):
        raise IdentityError(
            _("Usernames may use letters, digits and . _ - (no spaces or invisible characters).")
        )
    if not key[0].isalnum():
        raise IdentityError(_("Usernames start with a letter or a digit."))
    from confusable_homoglyphs import confusables

    if confusables.is_dangerous(key):
        raise IdentityError(_("Usernames may not mix look-alike letters from different alphabets."))
    if key in RESERVED_USERNAMES:
        raise IdentityError(_("That username is reserved."))
    return display, key


def normalise_email(raw: str) -> tuple[str, str]:
    """Return (address as given, lower-cased unique key); no DNS look-up (works offline)."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise IdentityError(_("Enter a valid e-mail address.")) from exc
    return result.normalized, result.normalized.lower()


def normalise_display_name(raw: str, fallback: str) -> str:
    text = unicodedata.normalize("NFC", _SPACES.sub(" ", raw)).strip()
    # Drop control and format characters (bidi overrides, zero-width joiners) from names.
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    if not text:
        return fallback
    if len(text) > 60:
        raise IdentityError(_("Display names are at most 60 characters long."))
    return text


def check_password_policy(password: str, *, user_inputs: list[str] | None = None) -> None:
    """NIST 800-63B style: a length floor, no composition rules, no password from the common
    list (community.core.common_passwords) and no easily guessed values."""
    if len(password) < PASSWORD_MIN:
        raise IdentityError(
            _("Passwords are at least %(min)d characters long.") % {"min": PASSWORD_MIN}
        )
    if len(password) > PASSWORD_MAX:
        raise IdentityError(
            _("Passwords are at most %(max)d characters long.") % {"max": PASSWORD_MAX}
        )
    if common_passwords.is_common(password):
        raise IdentityError(
            _("That password is among the most common ones, which attackers try first.")
        )
    from zxcvbn import zxcvbn

    strength = zxcvbn(password[:_STRENGTH_SAMPLE], user_inputs=user_inputs or [])
    if strength["score"] < PASSWORD_MIN_STRENGTH:
        raise IdentityError(
            _("That password is too easy to guess. Try a few unrelated words together.")
        )
