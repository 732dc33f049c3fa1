"""Avatars and the public profile's text: an uploaded picture, or one drawn from the name.

The generated avatar is an inline SVG (initials on a colour picked by a hash of the username),
written into the page itself rather than fetched from a route: a thread of 30 answers then costs
no request and no statement per post (templates never query), and the pages' CSP allows it (SVG
presentation attributes, no style). `/u/<username>/avatar.svg` serves the same drawing for
places that need a URL. An uploaded avatar is an `Upload` re-encoded by the uploads module and
served at /uploads/<key>.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from typing import Protocol

from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from community.core import uploads
from community.core.errors import FormErrors
from community.core.i18n import gettext as _
from community.core.models import User
from community.core.settings import Settings
from community.core.workspace_models import Upload, UploadPurpose

BIO_MAX = 500
# Background colours for generated avatars: varied hues, each dark or light enough that black
# or white initials on it pass WCAG AA (4.5:1; tests/community/test_avatars.py checks).
PALETTE = (
    "#1f6feb", "#8250df", "#bf3989", "#cf222e", "#bc4c00", "#9a6700",
    "#1a7f37", "#0a7d75", "#0969da", "#57606a", "#f2b8d2", "#a5d6ff",
    "#ffd8b5", "#b4f1c4", "#e1d5ff", "#fff1a8",
)  # fmt: skip
DARK_TEXT = "#111111"
LIGHT_TEXT = "#ffffff"
AA_CONTRAST = 4.5


class HasName(Protocol):
    @property
    def username(self) -> str: ...

    @property
    def display_name(self) -> str: ...

    @property
    def avatar_key(self) -> str | None: ...


def _luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a #rrggbb colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def text_colour(background: str) -> str:
    """Whichever of black and white reads better on the background."""
    return max((DARK_TEXT, LIGHT_TEXT), key=lambda text: contrast(background, text))


def colour_for(username: str) -> str:
    # By the case-folded name, so "Ana" and "ana" (one account) always get the same colour.
    digest = hashlib.sha256(username.casefold().encode()).digest()
    return PALETTE[int.from_bytes(digest[:4], "big") % len(PALETTE)]


def initials(display_name: str, username: str) -> str:
    """Up to two letters: the first of the first two words of the name (else the username)."""
    words = [word for word in (display_name or username).split() if word] or [username or "?"]
    letters = [
        next((ch for ch in word if unicodedata.category(ch)[0] in "LN"), word[0])
        for word in words[:2]
    ]
    return "".join(letters).upper()[:2]


@functools.lru_cache(maxsize=4096)
def generated_svg(username: str, display_name: str, size: int = 32) -> Markup:
    """The drawing, as escaped markup: the name is only ever text inside <text>."""
    background = colour_for(username)
    half = size / 2
    return Markup(  # noqa: S704 - built from escaped values and numbers only
        f'<svg xmlns="http://www.w3.org/2000/svg" class="avatar-img" width="{size}" '
        f'height="{size}" viewBox="0 0 {size} {size}" aria-hidden="true" focusable="false">'
        f'<rect width="{size}" height="{size}" rx="{half:g}" fill="{background}"/>'
        f'<text x="50%" y="50%" dy=".35em" text-anchor="middle" font-family="sans-serif" '
        f'font-size="{size * 0.42:.0f}" font-weight="600" fill="{text_colour(background)}">'
        f"{escape(initials(display_name, username))}</text></svg>"
    )


def standalone_svg(username: str, display_name: str, size: int = 128) -> str:
    """The generated avatar as an SVG document of its own (for /u/<username>/avatar.svg)."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + str(
        generated_svg(username, display_name, size)
    )


def drawing_etag(document: str) -> str:
    return '"' + hashlib.sha256(document.encode()).hexdigest()[:32] + '"'


def avatar(user: HasName | None, size: int = 32) -> Markup:
    """The avatar for pages: the uploaded picture if there is one, else the drawing. Reads only
    the user's own row (no query)."""
    if user is None:
        return generated_svg("", "?", size)
    if user.avatar_key:
        return Markup(  # noqa: S704 - escaped key and numbers
            f'<img class="avatar-img" src="/uploads/{escape(user.avatar_key)}" alt="" '
            f'width="{size}" height="{size}" loading="lazy" decoding="async">'
        )
    return generated_svg(user.username, user.display_name, size)


# --- the profile's own text and picture ------------------------------------------------------


def clean_bio(text: str) -> str:
    """Plain text: control characters other than line breaks dropped, trimmed, at most 500."""
    kept = "".join(
        ch for ch in text.replace("\r\n", "\n") if ch == "\n" or unicodedata.category(ch) != "Cc"
    ).strip()
    if len(kept) > BIO_MAX:
        raise FormErrors({"bio": _("Keep your bio under %(max)d characters.") % {"max": BIO_MAX}})
    return kept


def set_bio(user: User, text: str) -> None:
    user.bio = clean_bio(text)


def upload_avatar(
    db: Session, settings: Settings, user: User, *, data: bytes, filename: str
) -> Upload:
    """Check, re-encode and store the picture (the uploads module: type sniffed, size and pixel
    count limited, metadata stripped; an SVG is refused as any non-raster file is) and show it
    from now on. Raises the uploads module's 4xx errors and changes nothing when refused."""
    upload = uploads.accept_image(
        db,
        settings,
        data=data,
        filename=filename,
        purpose=UploadPurpose.AVATAR,
        owner_id=user.id,
        brand_id=None,
    )
    replaced, user.avatar_key = user.avatar_key, upload.key
    db.flush()
    uploads.discard_upload(db, settings, replaced)  # nothing shows the old one any more
    return upload


def remove_avatar(db: Session, settings: Settings, user: User) -> bool:
    """Back to the generated drawing; the picture is discarded (its address stops answering).
    True if there was one."""
    if user.avatar_key is None:
        return False
    removed, user.avatar_key = user.avatar_key, None
    db.flush()
    uploads.discard_upload(db, settings, removed)
    return True
