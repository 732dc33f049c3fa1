"""What the account page says about a session: a readable device from its user agent
("Firefox 128 on Windows", "Safari on iPhone") and a place from its address (a country's name
in the reader's language, "This computer", "Private network").

Parsing a user agent takes ua-parser's regular expressions (its first call loads them); the
parsed parts are kept per user-agent string (a member has a handful of sessions), and the
words are put together per request so that they follow the reader's language.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from datetime import datetime

import iptocc
import ua_parser
from babel import Locale, UnknownLocaleError
from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from community.core.account_models import UserSession
from community.core.clock import utcnow
from community.core.errors import NotFound
from community.core.i18n import gettext as _
from community.core.models import User

# ua-parser's family names for the same browser on phones, shortened to what people call it.
_BROWSER_NAMES = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "Samsung Internet": "Samsung Internet",
}
_SYSTEM_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}
# Devices named rather than their system: "Safari on iPhone" says more than "on iOS".
_NAMED_DEVICES = frozenset({"iPhone", "iPad", "iPod"})


@dataclass(frozen=True, slots=True)
class DeviceParts:
    browser: str | None
    version: str | None
    platform: str | None  # a named device (iPhone) or an operating system (Windows)
    named_device: bool


@functools.lru_cache(maxsize=1024)
def parse_user_agent(user_agent: str) -> DeviceParts:
    parsed = ua_parser.parse(user_agent)
    browser = version = platform = None
    named = False
    if parsed.user_agent is not None and parsed.user_agent.family != "Other":
        browser = _BROWSER_NAMES.get(parsed.user_agent.family, parsed.user_agent.family)
        version = parsed.user_agent.major
    if parsed.device is not None and parsed.device.family in _NAMED_DEVICES:
        platform, named = parsed.device.family, True
    elif parsed.os is not None and parsed.os.family != "Other":
        platform = _SYSTEM_NAMES.get(parsed.os.family, parsed.os.family)
    return DeviceParts(browser=browser, version=version, platform=platform, named_device=named)


def device_label(user_agent: str | None) -> str:
    """ "Firefox 128 on Windows", "Safari on iPhone", "Unknown device"."""
    if not user_agent or not user_agent.strip():
        return _("Unknown device")
    parts = parse_user_agent(user_agent[:255])
    if parts.browser is None and parts.platform is None:
        return _("Unknown device")
    browser = parts.browser or _("Unknown browser")
    # On a phone named by model, the browser's version says little (it follows the system).
    if parts.version and not parts.named_device:
        browser = f"{browser} {parts.version}"
    if parts.platform is None:
        return browser
    return _("%(browser)s on %(platform)s") % {"browser": browser, "platform": parts.platform}


def place_label(ip: str | None, locale: str) -> str:
    """Where an address is, as far as a country: its name in the reader's language."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return _("Unknown place")
    if address.is_loopback:
        return _("This computer")
    if address.is_private or address.is_link_local or address.is_reserved:
        return _("Private network")
    code = iptocc.country_code(str(address))
    if not code:
        return _("Unknown place")
    return country_name(code, locale)


def country_name(code: str, locale: str) -> str:
    try:
        names = Locale.parse(locale or "en").territories
    except (UnknownLocaleError, ValueError):
        names = Locale.parse("en").territories
    return str(names.get(code, code))


# --- the account page's list ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One line of "Where you are signed in"."""

    id: int
    device: str
    place: str
    signed_in_at: datetime
    last_seen_at: datetime
    two_factor: bool
    current: bool


def describe_sessions(
    sessions: list[UserSession], *, current_id: int | None, locale: str
) -> list[SessionRow]:
    return [
        SessionRow(
            id=row.id,
            device=device_label(row.user_agent),
            place=place_label(row.ip, locale),
            signed_in_at=row.created_at,
            last_seen_at=row.last_seen_at,
            two_factor=row.two_factor_at is not None,
            current=row.id == current_id,
        )
        for row in sessions
    ]


def revoke_own_session(db: Session, user: User, session_id: int) -> None:
    """Sign one of the member's sessions out; anyone else's (or one already out) is a 404."""
    revoked = db.execute(
        update(UserSession)
        .where(
            UserSession.id == session_id,
            UserSession.user_id == user.id,
            UserSession.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    assert isinstance(revoked, CursorResult)
    if revoked.rowcount != 1:
        raise NotFound()
