"""A brand's look, as values: its colours (checked against WCAG 2.x AA), the CSS custom
properties they become, its footer links and its own host name. Pure functions, no database and
no HTTP: the service (community.core.brand_look_service) stores what these accept, and the web
layer (community.core.hosts, community.core.web) shows it.

The colours a brand picks are used where site.css uses its own blue: links and text on the page
background, and buttons' fill with white or near-black text. So a primary colour must reach
4.5:1 (AA for normal text) against both page backgrounds of the theme it is used in, and the
better of the two button text colours must reach 4.5:1 on it. The accent colour only draws
lines and bars (the header's stripe, charts, the current tab), never text: it needs 3:1 (AA for
non-text contrast, WCAG 1.4.11). Without dark colours of its own a brand's dark theme is
derived from its light one, lightened until it passes the same checks.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from community.core.i18n import gettext as _

Mode = Literal["light", "dark"]
TEXT_CONTRAST = 4.5  # WCAG 2.x AA, normal text (1.4.3)
NON_TEXT_CONTRAST = 3.0  # WCAG 2.x AA, graphics and interface components (1.4.11)

# The backgrounds text sits on in each theme: site.css's --page and --surface (keep in step).
BACKGROUNDS: dict[Mode, tuple[str, ...]] = {
    "light": ("#f5f7fa", "#ffffff"),
    "dark": ("#0d1117", "#161b22"),
}
WHITE = "#ffffff"
NEAR_BLACK = "#111418"  # button text on a light fill (site.css: --brand-on-primary)
BLACK = "#000000"

MAX_FOOTER_LINKS = 8
MAX_LABEL_LENGTH = 40
MAX_URL_LENGTH = 500
MAX_HOST_LENGTH = 253

_HEX = re.compile(r"#(?:[0-9a-f]{3}|[0-9a-f]{6})")
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class LookError(ValueError):
    """A value a brand's look cannot take; the message says why, in the reader's language."""


# --- colours ---------------------------------------------------------------------------------


def parse_colour(text: str) -> str:
    """A colour as "#rrggbb" (lowercase), from "#rgb" or "#rrggbb"; nothing else (no names,
    no rgb(): the value goes into CSS, so it is one of these two shapes or refused)."""
    value = text.strip().lower()
    if not _HEX.fullmatch(value):
        raise LookError(_("Enter a colour as #rrggbb or #rgb, for example #0b5cad."))
    if len(value) == 4:
        value = "#" + "".join(digit * 2 for digit in value[1:])
    return value


def _channels(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _linear(channel: int) -> float:
    value = channel / 255
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of a "#rrggbb" colour (0 black, 1 white)."""
    red, green, blue = (_linear(channel) for channel in _channels(colour))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2.x contrast ratio of two colours, from 1 (the same) to 21 (black on white)."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def format_ratio(ratio: float) -> str:
    """ "4.48:1", "2.9:1", "7.0:1": to two decimals, but never rounded up to a threshold it
    misses (4.496 reads "4.49:1", not "4.5:1")."""
    shown = round(ratio, 2)
    for threshold in (NON_TEXT_CONTRAST, TEXT_CONTRAST):
        if ratio < threshold <= shown:
            shown = threshold - 0.01
    text = f"{shown:.2f}"
    return f"{text[:-1] if text.endswith('0') else text}:1"


def mix(colour: str, other: str, share: float) -> str:
    """`colour` with `share` (0..1) of `other` mixed in, channel by channel."""
    mixed = (
        round(own * (1 - share) + theirs * share)
        for own, theirs in zip(_channels(colour), _channels(other), strict=True)
    )
    return "#" + "".join(f"{channel:02x}" for channel in mixed)


def text_on(fill: str) -> str:
    """White or near-black, whichever reads better on `fill`."""
    on_white, on_black = contrast_ratio(fill, WHITE), contrast_ratio(fill, NEAR_BLACK)
    return WHITE if on_white >= on_black else NEAR_BLACK


# --- palettes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Palette:
    """A theme's two brand colours, "#rrggbb"."""

    primary: str
    accent: str


DEFAULTS: dict[Mode, Palette] = {
    "light": Palette(primary="#0b5cad", accent="#0b5cad"),
    "dark": Palette(primary="#58a6ff", accent="#58a6ff"),
}


def _worst_background(colour: str, mode: Mode) -> tuple[float, str]:
    """The lowest contrast of `colour` on the `mode` theme's backgrounds, and that background."""
    return min((contrast_ratio(colour, background), background) for background in BACKGROUNDS[mode])


def _background_problem(colour: str, mode: Mode, needed: float, shown: str) -> str | None:
    ratio, background = _worst_background(colour, mode)
    if ratio >= needed:
        return None
    return _("Contrast %(ratio)s against the page background %(background)s, needs %(needed)s.") % {
        "ratio": format_ratio(ratio),
        "background": background,
        "needed": shown,
    }


def contrast_problems(palette: Palette, mode: Mode) -> dict[str, str]:
    """What keeps `palette` from AA in the `mode` theme: {"primary"|"accent": message}."""
    problems: dict[str, str] = {}
    primary = _background_problem(palette.primary, mode, TEXT_CONTRAST, "4.5:1")
    on_fill = contrast_ratio(palette.primary, text_on(palette.primary))
    if primary is None and on_fill < TEXT_CONTRAST:
        primary = _(
            "Button text (white or near-black) has contrast %(ratio)s on this colour, "
            "needs %(needed)s."
        ) % {"ratio": format_ratio(on_fill), "needed": "4.5:1"}
    if primary:
        problems["primary"] = primary
    if accent := _background_problem(palette.accent, mode, NON_TEXT_CONTRAST, "3:1"):
        problems["accent"] = accent
    return problems


def _passes(colour: str, mode: Mode, needed: float) -> bool:
    readable = _worst_background(colour, mode)[0] >= needed
    return readable and contrast_ratio(colour, text_on(colour)) >= needed


def _lighten_until_readable(colour: str, needed: float) -> str:
    """`colour` mixed with ever more white until it reads on the dark backgrounds (white itself
    does, so this ends)."""
    for step in range(21):
        candidate = mix(colour, WHITE, step / 20)
        if _passes(candidate, "dark", needed):
            return candidate
    return WHITE


def derived_dark(light: Palette) -> Palette:
    """A dark theme for a brand that chose light colours only."""
    return Palette(
        primary=_lighten_until_readable(light.primary, TEXT_CONTRAST),
        accent=_lighten_until_readable(light.accent, NON_TEXT_CONTRAST),
    )


@dataclass(frozen=True, slots=True)
class Theme:
    """A brand's colours as stored in `Brand.theme`:
    {"primary": "#rrggbb", "accent": "#rrggbb", "dark": {"primary": ..., "accent": ...}}.
    `light`/`dark` None: the site's own colours; `dark` None with `light` set: derived."""

    light: Palette | None = None
    dark: Palette | None = None

    @property
    def custom(self) -> bool:
        return self.light is not None or self.dark is not None

    def palette(self, mode: Mode) -> Palette:
        if mode == "light":
            return self.light or DEFAULTS["light"]
        if self.dark is not None:
            return self.dark
        return derived_dark(self.light) if self.light is not None else DEFAULTS["dark"]

    def stored(self) -> dict[str, Any]:
        value: dict[str, Any] = {}
        if self.light is not None:
            value |= {"primary": self.light.primary, "accent": self.light.accent}
        if self.dark is not None:
            value["dark"] = {"primary": self.dark.primary, "accent": self.dark.accent}
        return value


def _stored_palette(value: object) -> Palette | None:
    if not isinstance(value, Mapping):
        return None
    primary, accent = value.get("primary"), value.get("accent")
    try:
        primary = parse_colour(primary) if isinstance(primary, str) else None
        accent = parse_colour(accent) if isinstance(accent, str) else None
    except LookError:
        return None  # a value stored by hand that was never checked: the defaults instead
    if primary is None and accent is None:
        return None
    return Palette(primary=primary or accent or "", accent=accent or primary or "")


def theme_of(stored: object) -> Theme:
    """The theme in a `Brand.theme` value, forgiving: what does not parse is left out. (Themes
    saved through the service were checked; the demo's older {"accent": ...} still reads.)"""
    if not isinstance(stored, Mapping):
        return Theme()
    return Theme(light=_stored_palette(stored), dark=_stored_palette(stored.get("dark")))


def _variables(palette: Palette, mode: Mode) -> list[str]:
    """The custom properties site.css reads (--brand-*), for one theme. The hover shade and the
    tint behind the current page's link are derived: darker in the light theme, lighter in the
    dark one, mixed until the text on the tint reads (4.5:1)."""
    toward, backdrop = (
        (BLACK, BACKGROUNDS["light"][1]) if mode == "light" else (WHITE, BACKGROUNDS["dark"][1])
    )
    soft = mix(backdrop, palette.primary, 0.12 if mode == "light" else 0.22)
    strong = palette.primary
    for step in range(5, 21):
        strong = mix(palette.primary, toward, step / 20)
        if contrast_ratio(strong, soft) >= TEXT_CONTRAST:
            break
    return [
        f"--brand-primary: {palette.primary};",
        f"--brand-primary-strong: {strong};",
        f"--brand-primary-soft: {soft};",
        f"--brand-on-primary: {text_on(palette.primary)};",
        f"--brand-on-primary-strong: {text_on(strong)};",
        f"--brand-accent: {palette.accent};",
    ]


def stylesheet(theme: Theme) -> str:
    """The brand's stylesheet: light values in :root, dark ones for prefers-color-scheme: dark.
    Only validated "#rrggbb" values go in, so nothing a brand types can end up as CSS."""
    light = "\n".join(f"  {line}" for line in _variables(theme.palette("light"), "light"))
    dark = "\n".join(f"    {line}" for line in _variables(theme.palette("dark"), "dark"))
    return (
        f":root {{\n{light}\n}}\n"
        f"@media (prefers-color-scheme: dark) {{\n  :root {{\n{dark}\n  }}\n}}\n"
    )


# --- footer links ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FooterLink:
    label: str
    url: str


def _link_url_problem(url: str) -> str | None:
    if len(url) > MAX_URL_LENGTH:
        return _("A link can be at most %(count)d characters.") % {"count": MAX_URL_LENGTH}
    if _CONTROL.search(url) or any(char.isspace() for char in url) or "\\" in url:
        return _("A link cannot contain spaces or control characters.")
    if url.startswith("/"):
        # A path on this site; "//host" would be another site, without saying so.
        return (
            _("Enter a full address (https://...) or a path on this site (/...).")
            if url.startswith("//")
            else None
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return _("Enter a full address (https://...) or a path on this site (/...).")
    return None


def footer_links(rows: Sequence[Mapping[str, object]]) -> tuple[list[FooterLink], dict[str, str]]:
    """The footer links from rows of {"label", "url"}: blank rows are dropped; each error is
    keyed "footer_links.<n>" (n from 0, the row as sent) or "footer_links" for the count."""
    links: list[FooterLink] = []
    errors: dict[str, str] = {}
    for index, row in enumerate(rows):
        label = str(row.get("label") or "").strip()
        url = str(row.get("url") or "").strip()
        if not label and not url:
            continue
        field = f"footer_links.{index}"
        if not label or not url:
            errors[field] = _("A link needs both a label and an address.")
        elif len(label) > MAX_LABEL_LENGTH or _CONTROL.search(label):
            errors[field] = _("A label can be at most %(count)d characters.") % {
                "count": MAX_LABEL_LENGTH
            }
        elif problem := _link_url_problem(url):
            errors[field] = problem
        else:
            links.append(FooterLink(label=label, url=url))
    if len(links) > MAX_FOOTER_LINKS:
        errors["footer_links"] = _("At most %(count)d footer links.") % {"count": MAX_FOOTER_LINKS}
    return links, errors


def stored_footer_links(stored: object) -> tuple[FooterLink, ...]:
    """The links in a `Brand.footer_links` value, leaving out any that would not pass now (a
    value stored by hand never becomes a javascript: link in the footer)."""
    if not isinstance(stored, list):
        return ()
    rows = [row for row in stored if isinstance(row, Mapping)]
    found: list[FooterLink] = []
    for row in rows[:MAX_FOOTER_LINKS]:
        links, errors = footer_links([row])
        if not errors:
            found.extend(links)
    return tuple(found)


# --- host names ------------------------------------------------------------------------------


def host_name(text: str) -> str | None:
    """A brand's own host name ("support.brand.example"), or None for none: a DNS name of two
    labels or more, without a scheme, a port or a path, and not an IP address."""
    value = text.strip().lower().removesuffix(".")
    if not value:
        return None
    if "://" in value or "/" in value or ":" in value or "@" in value:
        raise LookError(_("Enter the host name only, without http://, a port or a path."))
    labels = value.split(".")
    valid = (
        len(value) <= MAX_HOST_LENGTH
        and len(labels) >= 2
        and all(_HOST_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    )
    if not valid:  # an IPv4 address ends in digits: a host name's last label never does
        raise LookError(_("Enter a host name such as support.example.com."))
    return value


def request_host(header: str) -> str:
    """The host name of a Host header, lowercase, without the port ("[::1]:8000" -> "::1")."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


@functools.lru_cache(maxsize=8)
def shared_hosts(base_url: str, allowed_hosts: str) -> frozenset[str]:
    """The hosts that serve the whole site: BASE_URL's, ALLOWED_HOSTS' ("*": any), and, with a
    loopback BASE_URL (development), the loopback names."""
    base = (urlsplit(base_url).hostname or "").lower()
    names = {base} | {request_host(item) for item in allowed_hosts.split(",") if item.strip()}
    if base in LOOPBACK:
        names |= LOOPBACK
    return frozenset(names)


def brand_base_url(base_url: str, host: str | None) -> str:
    """Where a brand's absolute links start (e-mails, feeds, webhooks): its own host, with
    BASE_URL's scheme, or BASE_URL itself for a brand served under /b/<slug>."""
    if not host:
        return base_url.rstrip("/")
    scheme = urlsplit(base_url).scheme or "https"
    return f"{scheme}://{host}"


# --- the look a page shows -------------------------------------------------------------------


class BrandRow(Protocol):
    """What a look is made of: a Brand row's columns."""

    id: int
    slug: str
    name: str
    host: str | None
    theme: dict[str, Any]
    logo_key: str | None
    favicon_key: str | None
    footer_links: list[dict[str, str]]
    contact_email: str


@dataclass(frozen=True, slots=True)
class BrandLook:
    """A brand as its pages show it: name, logo, favicon, colours, footer, host."""

    id: int
    slug: str
    name: str
    host: str | None
    logo_url: str | None
    favicon_url: str | None
    footer_links: tuple[FooterLink, ...]
    contact_email: str
    css: str | None  # None: the site's own colours, no stylesheet of its own
    version: str

    @property
    def stylesheet_url(self) -> str | None:
        """The brand's stylesheet; the version in the address lets browsers keep it for good."""
        return f"/b/{self.slug}/theme.css?v={self.version}" if self.css is not None else None


def upload_url(key: str | None) -> str | None:
    return f"/uploads/{key}" if key else None


@functools.lru_cache(maxsize=256)
def _stylesheet_and_version(theme: Theme) -> tuple[str | None, str]:
    """A theme's stylesheet (None: the site's colours) and its version, worked out once per
    theme: the derived shades take a few hundred microseconds, and every page of the brand
    shows them."""
    css = stylesheet(theme) if theme.custom else None
    return css, hashlib.sha256((css or "").encode()).hexdigest()[:12]


def look_of(brand: BrandRow) -> BrandLook:
    """The look of a loaded brand row (no query: every value is a column of the row)."""
    css, version = _stylesheet_and_version(theme_of(brand.theme))
    return BrandLook(
        id=brand.id,
        slug=brand.slug,
        name=brand.name,
        host=brand.host,
        logo_url=upload_url(brand.logo_key),
        favicon_url=upload_url(brand.favicon_key),
        footer_links=stored_footer_links(brand.footer_links),
        contact_email=brand.contact_email or "",
        css=css,
        version=version,
    )


@dataclass(frozen=True, slots=True)
class BrandLinks:
    """The header's links of a brand's pages: inside the brand, on whichever host it is read."""

    home: str
    kb: str
    search: str
    ask: str
    moderation: str
    agent: str


def brand_links(slug: str, *, own_host: bool) -> BrandLinks:
    """On the brand's own host its home, knowledge base and search are "/", "/kb" and "/search"
    (community.core.hosts serves the brand's there); on the shared host every link is under
    /b/<slug>. Both hosts answer /b/<slug>/... for the brand's other pages."""
    prefix = f"/b/{slug}"
    short = "" if own_host else prefix
    return BrandLinks(
        home=short or "/",
        kb=f"{short}/kb",
        search=f"{short}/search",
        ask=f"{prefix}/ask/new",
        moderation=f"{prefix}/mod",
        agent=f"{prefix}/agent",
    )
