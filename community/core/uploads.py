"""Uploaded images: checked, re-encoded, stored under a random key, served to those who may see
them. Every image the site accepts comes through `accept_image` (pictures in posts and
articles, avatars, brand logos and favicons).

What is checked, in order, before anything is stored:
- size: at most UPLOADS_MAX_BYTES as sent (less for avatars and favicons), and not empty;
- type: sniffed by Pillow from the bytes, with only the PNG, JPEG, GIF and WebP readers allowed
  to try (never the file name or the declared content type): SVG, HTML and the rest are refused;
- pixels: the dimensions the header declares, before a single pixel is decoded, at most
  UPLOADS_MAX_PIXELS (a 50,000 × 50,000 PNG of a few hundred bytes is a "decompression bomb":
  decoding it would take gigabytes).

Then the image is decoded and written anew: only its pixels survive. EXIF (GPS position,
camera serial numbers), ICC profiles (converted to sRGB first), text chunks and whatever was
appended to the file (the HTML or ZIP half of a polyglot) are gone; the EXIF orientation is
applied first so the picture still stands the right way up. PNG stays PNG, JPEG stays JPEG
(quality 85), WebP stays WebP, a GIF becomes a PNG of its first frame. Images are scaled down to
what their place shows (`MAX_SIDE`).

Who sees an upload (`audience`): logos, favicons, avatars and article pictures are public; a
post's picture is seen by exactly those who may see that post (a held post's: its author and
the brand's staff), because the post's save attaches it (`attach_to_post`); a picture not yet
in any post only by its owner and staff.

Pillow and the S3 client are imported when first used: a web process that never receives an
image does not load them.
"""

from __future__ import annotations

import enum
import hashlib
import io
import logging
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from community.core import policy
from community.core.errors import AppError, BadRequest, FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.models import Post, User, Visibility
from community.core.service import get_brand
from community.core.settings import Settings
from community.core.upload_storage import KEY, storage_for
from community.core.workspace_models import Upload, UploadPurpose

if TYPE_CHECKING:
    from PIL.Image import Image, Transpose

logger = logging.getLogger(__name__)


class UploadTooLarge(AppError):
    """Too many bytes, or too many pixels."""

    status_code = 413
    code = "upload_too_large"


class UnsupportedImage(AppError):
    """Not an image of an accepted type, or one that cannot be decoded."""

    status_code = 415
    code = "unsupported_image"


# The Pillow readers allowed to look at the bytes, and what each is stored as.
READERS = ("PNG", "JPEG", "GIF", "WEBP")
_WRITTEN_AS = {"PNG": "PNG", "JPEG": "JPEG", "GIF": "PNG", "WEBP": "WEBP"}
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
JPEG_QUALITY = 85
# The longest side kept per place: what the page shows, at twice its size for sharp screens.
MAX_SIDE = {
    UploadPurpose.POST: 2048,
    UploadPurpose.ARTICLE: 2048,
    UploadPurpose.AVATAR: 256,
    UploadPurpose.LOGO: 512,
    UploadPurpose.FAVICON: 64,
}
# Small pictures need few bytes: the site-wide limit applies to the others.
MAX_BYTES = {UploadPurpose.AVATAR: 2 * 1024 * 1024, UploadPurpose.FAVICON: 1024 * 1024}
PUBLIC_PURPOSES = frozenset(
    {UploadPurpose.ARTICLE, UploadPurpose.AVATAR, UploadPurpose.LOGO, UploadPurpose.FAVICON}
)
NAME_MAX = 200
# How a post's Markdown refers to an upload: ![...](/uploads/<key>), also as a full URL.
UPLOAD_REFERENCE = re.compile(r"/uploads/([A-Za-z0-9_-]{16,40})(?![A-Za-z0-9_-])")
# More distinct uploads than this in one post is not a post anyone reads.
MAX_ATTACHED = 50


@dataclass(frozen=True, slots=True)
class Encoded:
    data: bytes
    content_type: str
    width: int
    height: int


class Audience(enum.Enum):
    """Who may see an upload, which decides how long browsers and proxies may keep it."""

    PUBLIC = "public"  # anyone, for good (its key never shows other bytes)
    EVERYONE_NOW = "everyone_now"  # anyone while its post stays visible
    RESTRICTED = "restricted"  # its author and staff (a held post's, or not yet in a post)


# --- accepting ---------------------------------------------------------------------------------


def new_key() -> str:
    """32 URL-safe characters (192 random bits): the name an upload is stored and served
    under, never guessable and never the sender's file name."""
    return secrets.token_urlsafe(24)


def clean_name(filename: str) -> str:
    """The sender's file name as a label only (alt text, the download name): the last path
    segment, without control characters, at most NAME_MAX characters."""
    name = unicodedata.normalize("NFC", filename or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    return name[:NAME_MAX]


def byte_limit(settings: Settings, purpose: UploadPurpose) -> int:
    return min(settings.uploads_max_bytes, MAX_BYTES.get(purpose, settings.uploads_max_bytes))


def accept_image(
    db: Session,
    settings: Settings,
    *,
    data: bytes,
    filename: str,
    purpose: UploadPurpose,
    owner_id: int | None,
    brand_id: int | None,
) -> Upload:
    """Check, re-encode and store an image; the new `Upload` (flushed). Raises UploadTooLarge
    (413), UnsupportedImage (415) or BadRequest (400, empty) and stores nothing when refused.
    Who may upload for which purpose is the caller's to check."""
    if not data:
        raise BadRequest(_("The file is empty."), code="empty_upload")
    limit = byte_limit(settings, purpose)
    if len(data) > limit:
        raise UploadTooLarge(
            _("Images can be at most %(megabytes)s MB.") % {"megabytes": _megabytes(limit)}
        )
    encoded = reencode(data, max_pixels=settings.uploads_max_pixels, max_side=MAX_SIDE[purpose])
    storage = storage_for(settings)
    upload = Upload(
        key=new_key(),
        owner_id=owner_id,
        brand_id=brand_id,
        purpose=purpose,
        content_type=encoded.content_type,
        width=encoded.width,
        height=encoded.height,
        byte_size=len(encoded.data),
        sha256=hashlib.sha256(encoded.data).hexdigest(),
        original_name=clean_name(filename),
        storage=storage.name,
    )
    db.add(upload)
    db.flush()
    # The row first: if storing fails the request's transaction is not committed, so no row
    # points at nothing. (A commit that fails after this leaves unreferenced bytes under a key
    # nobody knows.)
    storage.put(upload.key, encoded.data, encoded.content_type)
    return upload


# What the editors' "Add image" uploads for (the API's `purpose`); avatars, logos and favicons
# come through their own pages.
EDITOR_PURPOSES = {"post": UploadPurpose.POST, "article": UploadPurpose.ARTICLE}


def upload_from_editor(
    db: Session, settings: Settings, user: User, *, data: bytes, filename: str, purpose: str,
    brand_slug: str,
) -> Upload:  # fmt: skip
    """A picture for a post (any member who may post) or a KB article (the brand's curators),
    pasted or picked in an editor or sent to the API."""
    policy.ensure_can_participate(user)  # suspended and read-only accounts post nothing
    kind = EDITOR_PURPOSES.get(purpose)
    if kind is None:
        raise FormErrors({"purpose": _("Choose what the image is for: post or article.")})
    brand_id = get_brand(db, brand_slug).id if brand_slug else None
    if kind == UploadPurpose.ARTICLE:
        if brand_id is None:
            raise FormErrors({"brand": _("Say which brand's article the image is for.")})
        policy.ensure_curator(user, brand_id)
    return accept_image(
        db, settings, data=data, filename=filename, purpose=kind, owner_id=user.id,
        brand_id=brand_id,
    )  # fmt: skip


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g}"


# --- re-encoding -------------------------------------------------------------------------------


def reencode(data: bytes, *, max_pixels: int, max_side: int) -> Encoded:
    """The image in `data` written anew (see the module's docstring), or a refusal."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=READERS) as image:
            source = image.format or ""
            width, height = image.size  # from the header: nothing is decoded yet
            if width * height > max_pixels:
                raise _too_many_pixels(max_pixels)
            written_as = _WRITTEN_AS[source]
            clean = _clean_pixels(image, written_as, max_side)
            return Encoded(
                data=_encode(clean, written_as),
                content_type=CONTENT_TYPES[written_as],
                width=clean.width,
                height=clean.height,
            )
    except AppError:
        raise
    except Image.DecompressionBombError:
        raise _too_many_pixels(max_pixels) from None
    except UnidentifiedImageError:
        raise UnsupportedImage(_("Upload a PNG, JPEG, GIF or WebP image.")) from None
    except Exception as exc:  # any failure to decode these bytes is the bytes' fault, not a 500
        logger.info("an uploaded image could not be decoded: %s", type(exc).__name__)
        raise UnsupportedImage(
            _("The image could not be read: it may be damaged or incomplete.")
        ) from None


def _too_many_pixels(max_pixels: int) -> UploadTooLarge:
    return UploadTooLarge(
        _("The image has too many pixels: at most %(megapixels)s megapixels.")
        % {"megapixels": f"{max_pixels / 1_000_000:g}"},
        code="too_many_pixels",
    )


def _clean_pixels(image: Image, written_as: str, max_side: int) -> Image:
    """The first frame's pixels, upright, in sRGB, at most `max_side` wide and high, with no
    metadata at all."""
    from PIL import Image as PILImage

    orientation = _orientation(image)
    mode = _target_mode(image, written_as)
    if image.format == "JPEG":
        # Decode at a reduced scale straight away when the picture is far larger than kept.
        image.draft(image.mode, (max_side, max_side))
    palette = image.mode in ("1", "P") or "transparency" in image.info
    if palette:  # palettes resize poorly (nearest neighbour): colours first
        image = _to_srgb(image, mode)
    # A square box: rotating the picture afterwards leaves it inside.
    image.thumbnail((max_side, max_side), PILImage.Resampling.LANCZOS)
    if not palette:
        image = _to_srgb(image, mode)
    method = _transposition(orientation)
    if method is not None:
        image = image.transpose(method)
    image.info = {}
    return image


def _orientation(image: Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # broken EXIF: the picture as stored
        return 1
    return value if isinstance(value, int) else 1


def _transposition(orientation: int) -> Transpose | None:
    """The Pillow transposition that undoes an EXIF orientation (as ImageOps.exif_transpose)."""
    from PIL.Image import Transpose

    return {
        2: Transpose.FLIP_LEFT_RIGHT,
        3: Transpose.ROTATE_180,
        4: Transpose.FLIP_TOP_BOTTOM,
        5: Transpose.TRANSPOSE,
        6: Transpose.ROTATE_270,
        7: Transpose.TRANSVERSE,
        8: Transpose.ROTATE_90,
    }.get(orientation)


def _target_mode(image: Image, written_as: str) -> str:
    grey = image.mode in ("1", "L", "LA", "I", "I;16", "F")
    if written_as == "JPEG":
        return "L" if grey else "RGB"
    alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if alpha:
        return "RGBA"
    return "L" if grey else "RGB"


def _to_srgb(image: Image, mode: str) -> Image:
    """`image` in `mode`, its colours moved from its ICC profile (if any) to sRGB, since the
    profile itself is not kept."""
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "RGBA", "CMYK") and mode in ("RGB", "RGBA"):
        try:
            from PIL import ImageCms

            converted = ImageCms.profileToProfile(
                image,
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                outputMode=mode,
            )
            if converted is not None:
                return converted
        except Exception:  # an unusable profile: the numbers as they are
            logger.info("an uploaded image's colour profile could not be applied")
    return image.convert(mode)


def _encode(image: Image, written_as: str) -> bytes:
    out = io.BytesIO()
    if written_as == "JPEG":
        image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    elif written_as == "WEBP":
        image.save(out, "WEBP", quality=JPEG_QUALITY, method=4)
    else:
        image.save(out, "PNG")
    return out.getvalue()


# --- reading -----------------------------------------------------------------------------------


def url_of(upload: Upload) -> str:
    return f"/uploads/{upload.key}"


def _stem(name: str) -> str:
    """A file name without its extension ("router.png" -> "router", "notes" -> "notes")."""
    return name.rsplit(".", 1)[0] if "." in name else name


def download_name(upload: Upload) -> str:
    """A plain ASCII file name for Content-Disposition, its extension the stored type's (a
    "photo.html" sent as a PNG is saved as "photo.png")."""
    stem = _stem(upload.original_name)
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_stem).strip("._")[:60] or "image"
    return f"{safe}.{EXTENSIONS.get(upload.content_type, 'bin')}"


def markdown_of(upload: Upload) -> str:
    """What the editor inserts: ![name](/uploads/key), the name without Markdown's brackets."""
    alt = _stem(upload.original_name)
    alt = " ".join(re.sub(r"[\[\]\\()!*_`<>]+", " ", alt).split())[:80] or _("image")
    return f"![{alt}]({url_of(upload)})"


def audience(db: Session, who: User | None, upload: Upload) -> Audience | None:
    """Who may see the upload, or None when `who` may not."""
    if upload.purpose in PUBLIC_PURPOSES:
        return Audience.PUBLIC
    if upload.post_id is not None:
        return _post_audience(db, who, upload.post_id)
    if who is None:
        return None
    # Not in a post yet: its owner, and staff of its brand (of every brand when it names none).
    staff = (
        policy.staffed_brands(who) is None
        if upload.brand_id is None
        else policy.is_staff(who, upload.brand_id)
    )
    return Audience.RESTRICTED if who.id == upload.owner_id or staff else None


def _post_audience(db: Session, who: User | None, post_id: int) -> Audience | None:
    post = db.get(Post, post_id)
    if post is None:
        return None
    thread = post.thread
    try:
        # The rules of the post's own page: its brand shown, its forum readable, the thread
        # and the post visible to `who` (held: its author and the brand's staff).
        policy.ensure_forum_readable(who, thread.forum)
        policy.ensure_post_visible(who, post)
    except NotFound:
        return None
    if thread.forum.brand.archived_at is not None and not policy.is_admin(who):
        return None  # an archived brand's content is gone but for site admins
    shown = post.visibility == Visibility.VISIBLE and thread.visibility == Visibility.VISIBLE
    if shown and policy.can_read_forum(None, thread.forum):
        return Audience.EVERYONE_NOW
    return Audience.RESTRICTED


def may_view_upload(db: Session, who: User | None, upload: Upload) -> bool:
    return audience(db, who, upload) is not None


def access_upload(db: Session, who: User | None, key: str) -> tuple[Upload, Audience]:
    """The upload under `key` and who may see it, if `who` may; else NotFound (an upload one
    may not see does not exist, as a hidden post does not)."""
    if not KEY.match(key):
        raise NotFound()
    upload = db.scalar(select(Upload).where(Upload.key == key))
    if upload is None:
        raise NotFound()
    seen_by = audience(db, who, upload)
    if seen_by is None:
        raise NotFound()
    return upload, seen_by


def read_stored(settings: Settings, storage: str, key: str) -> bytes:
    """An upload's bytes from the storage it was put in (`Upload.storage`, `Upload.key`)."""
    return storage_for(settings, storage).get(key)


def discard_upload(db: Session, settings: Settings, key: str | None) -> None:
    """Remove an image nothing shows any more (a replaced or removed avatar, logo or favicon):
    its row, then its bytes, so its address stops answering. Deleting the bytes happens at once
    (not after the commit): if the request then fails, the row points at nothing and the
    address answers 404, which is what was asked for anyway. A store that fails to delete is
    logged, never raised: without its row the image is unreachable."""
    if not key or not KEY.match(key):
        return
    upload = db.scalar(select(Upload).where(Upload.key == key))
    if upload is None:
        return
    storage = upload.storage
    db.delete(upload)
    db.flush()
    try:
        storage_for(settings, storage).delete(key)
    except (AppError, OSError) as exc:
        logger.warning("could not delete a discarded upload's bytes: %s", type(exc).__name__)


# --- attaching to posts ------------------------------------------------------------------------


def referenced_keys(markdown: str) -> list[str]:
    """The upload keys a post's Markdown refers to, first seen first."""
    if "/uploads/" not in markdown:  # most posts: no regular expression run at all
        return []
    keys = list(dict.fromkeys(UPLOAD_REFERENCE.findall(markdown)))
    return keys[:MAX_ATTACHED]


def attach_to_post(db: Session, post: Post, owner_ids: Iterable[int | None]) -> None:
    """Tie the post's pictures to it, so they are seen by exactly those who see the post: the
    unattached post pictures its Markdown refers to, uploaded by one of `owner_ids` (its
    author, and an editor who added one). Someone else's picture, or one already in another
    post, stays as it is. Called by every save of a post, held ones included."""
    keys = referenced_keys(post.body_source)
    owners = [owner for owner in owner_ids if owner is not None]
    if not keys or not owners:
        return
    if post.id is None:
        db.flush()
    db.execute(
        update(Upload)
        .where(
            Upload.key.in_(keys),
            Upload.owner_id.in_(owners),
            Upload.post_id.is_(None),
            Upload.purpose == UploadPurpose.POST,
        )
        .values(post_id=post.id)
        .execution_options(synchronize_session=False)
    )
