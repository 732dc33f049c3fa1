"""Re-encoding uploaded images (community.core.uploads.reencode): what goes in, what comes out.

Pure image work (no database): the refusals are also checked through the upload route, on both
databases, in test_uploads.py."""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from community.core.uploads import UnsupportedImage, UploadTooLarge, reencode

MAX_PIXELS = 40_000_000


def image_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def striped(size: tuple[int, int] = (120, 80), mode: str = "RGB") -> Image.Image:
    """A picture with a left half and a right half of different colours (orientation shows)."""
    image = Image.new(mode, size, "white")
    image.paste(Image.new(mode, (size[0] // 2, size[1]), "red"), (0, 0))
    return image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def declared_png(width: int, height: int) -> bytes:
    """A few hundred bytes that declare width × height RGB pixels (a decompression bomb when
    large: decoding would allocate width × height × 3 bytes)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + png_chunk(b"IEND", b"")
    )


def encode(data: bytes, max_side: int = 2048) -> tuple[bytes, Image.Image]:
    encoded = reencode(data, max_pixels=MAX_PIXELS, max_side=max_side)
    image = Image.open(io.BytesIO(encoded.data))
    image.load()
    assert (image.width, image.height) == (encoded.width, encoded.height)
    return encoded.data, image


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
def test_png_jpeg_and_webp_keep_their_type_and_size(fmt: str, content_type: str) -> None:
    source = image_bytes(striped(), fmt)
    encoded = reencode(source, max_pixels=MAX_PIXELS, max_side=2048)
    assert encoded.content_type == content_type
    assert (encoded.width, encoded.height) == (120, 80)
    image = Image.open(io.BytesIO(encoded.data))
    assert image.format == fmt
    assert image.convert("RGB").getpixel((10, 40))[0] > 200  # the red half is still red
    assert image.convert("RGB").getpixel((100, 40)) == pytest.approx((255, 255, 255), abs=8)


def test_a_gif_becomes_a_png_of_its_first_frame() -> None:
    frames = [Image.new("RGB", (30, 20), colour) for colour in ("blue", "yellow")]
    source = image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0)
    encoded = reencode(source, max_pixels=MAX_PIXELS, max_side=2048)
    assert encoded.content_type == "image/png"
    image = Image.open(io.BytesIO(encoded.data)).convert("RGB")
    assert getattr(image, "n_frames", 1) == 1
    assert image.getpixel((5, 5)) == (0, 0, 255)


def test_transparency_survives() -> None:
    source = image_bytes(Image.new("RGBA", (20, 20), (0, 128, 0, 0)), "PNG")
    _data, image = encode(source)
    assert image.mode == "RGBA"
    assert image.getpixel((3, 3))[3] == 0
    palette = Image.new("P", (20, 20), 0)
    _data, image = encode(image_bytes(palette, "PNG", transparency=0))
    assert image.mode == "RGBA" and image.getpixel((3, 3))[3] == 0


def test_exif_with_gps_is_gone_and_the_orientation_applied() -> None:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam Corp"  # camera maker
    exif[0x0131] = "owner-laptop-7731"  # software
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    exif[0x8825] = {1: "N", 2: (51.0, 28.0, 38.0), 3: "W", 4: (0.0, 7.0, 39.0)}  # GPS
    source = image_bytes(striped((120, 80)), "JPEG", exif=exif, quality=95)
    assert b"SecretCam" in source and b"owner-laptop" in source

    data, image = encode(source)
    assert b"SecretCam" not in data and b"owner-laptop" not in data
    assert b"Exif" not in data
    assert not image.getexif()
    assert "exif" not in image.info
    # Stored upright: 80 wide and 120 high, the red half (the left one) now on top.
    assert image.size == (80, 120)
    assert image.convert("RGB").getpixel((40, 10))[1] < 60
    assert image.convert("RGB").getpixel((40, 110))[1] > 200


def test_png_text_chunks_and_colour_profile_are_gone() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "home address: 12 Secret Lane")
    info.add_text("Author", "secret-author-zip", zip=True)
    info.add_itxt("Description", "secret-itxt-words", lang="en")
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = image_bytes(striped(), "PNG", pnginfo=info, icc_profile=profile)
    assert b"Secret Lane" in source and b"iCCP" in source

    data, image = encode(source)
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"iCCP", b"eXIf"):
        assert chunk not in data, chunk
    assert b"Secret Lane" not in data and b"secret-itxt" not in data
    assert not getattr(image, "text", {})
    assert "icc_profile" not in image.info


@pytest.mark.parametrize(
    "profile",
    [ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(), b"not a profile" * 20],
    ids=["srgb", "garbage"],
)
def test_a_colour_profile_is_applied_or_ignored_then_dropped(profile: bytes) -> None:
    """Colours are moved to sRGB through the picture's profile when it has a usable one; an
    unusable profile does not stop the picture (its numbers are taken as sRGB)."""
    source = image_bytes(Image.new("RGB", (10, 10), (200, 10, 10)), "PNG", icc_profile=profile)
    data, image = encode(source)
    assert image.convert("RGB").getpixel((5, 5)) == pytest.approx((200, 10, 10), abs=3)
    assert "icc_profile" not in image.info and b"iCCP" not in data


def test_large_pictures_are_scaled_down_to_their_place() -> None:
    source = image_bytes(striped((3000, 1500)), "JPEG")
    encoded = reencode(source, max_pixels=MAX_PIXELS, max_side=2048)
    assert (encoded.width, encoded.height) == (2048, 1024)
    avatar = reencode(source, max_pixels=MAX_PIXELS, max_side=256)
    assert (avatar.width, avatar.height) == (256, 128)


def test_html_appended_to_a_png_is_not_stored() -> None:
    payload = b"<html><body><script>alert(document.cookie)</script></body></html>"
    source = image_bytes(striped(), "PNG") + payload
    assert Image.open(io.BytesIO(source)).format == "PNG"  # still a valid PNG
    data, image = encode(source)
    assert image.format == "PNG"
    assert b"<script" not in data and b"alert" not in data and b"<html" not in data


def test_a_jpeg_and_zip_polyglot_keeps_only_the_picture() -> None:
    """A JPEG that is also a ZIP archive holding a PHP shell (the archive readers find it at
    the end of the file): only the pixels are stored."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("shell.php", "<?php system($_GET['cmd']); ?>")
    source = image_bytes(striped(), "JPEG") + archive.getvalue()
    assert zipfile.is_zipfile(io.BytesIO(source))
    assert Image.open(io.BytesIO(source)).format == "JPEG"
    data, _image = encode(source)
    assert b"<?php" not in data and b"PK\x03\x04" not in data and b"shell.php" not in data
    assert not zipfile.is_zipfile(io.BytesIO(data))


def test_a_comment_segment_with_script_is_not_kept() -> None:
    """Script hidden in the JPEG's own comment segment (COM), inside the image proper."""
    source = image_bytes(striped(), "JPEG", comment=b"<script>alert(1)</script>")
    assert b"<script>" in source
    data, _image = encode(source)
    assert b"<script" not in data


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b"<script>alert(1)</script></svg>",
            id="svg-with-script",
        ),
        pytest.param(
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
            id="svg-onload",
        ),
        pytest.param(b"<!doctype html><html><script>alert(1)</script></html>", id="html"),
        pytest.param(b"%PDF-1.4\n1 0 obj<<>>endobj", id="pdf"),
        pytest.param(b"GIF89a<script>alert(1)</script>", id="gif-magic-then-script"),
        pytest.param(b"\x89PNG\r\n\x1a\n", id="png-magic-only"),
        pytest.param(image_bytes(striped(), "BMP"), id="bmp"),
        pytest.param(image_bytes(striped(), "TIFF"), id="tiff"),
        pytest.param(b"\x00" * 100, id="zeros"),
    ],
)
def test_anything_but_the_four_types_is_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedImage) as refused:
        reencode(data, max_pixels=MAX_PIXELS, max_side=2048)
    assert refused.value.status_code == 415


def test_a_truncated_image_is_refused() -> None:
    source = image_bytes(striped((400, 300)), "PNG")
    with pytest.raises(UnsupportedImage):
        reencode(source[: len(source) // 2], max_pixels=MAX_PIXELS, max_side=2048)


@pytest.mark.parametrize(
    ("width", "height"),
    [(50_000, 50_000), (8_000, 8_000), (40_000_001, 1), (7_000, 6_000)],
    ids=["beyond-pillows-own-limit", "under-pillows-limit", "one-long-row", "just-over"],
)
def test_a_decompression_bomb_is_refused_from_its_header_at_once(width: int, height: int) -> None:
    bomb = declared_png(width, height)
    assert len(bomb) < 500
    started = time.monotonic()
    with pytest.raises(UploadTooLarge) as refused:
        reencode(bomb, max_pixels=MAX_PIXELS, max_side=2048)
    assert time.monotonic() - started < 0.5  # nothing was decoded
    assert refused.value.status_code == 413
    assert refused.value.code == "too_many_pixels"


def test_a_jpeg_bomb_is_refused_too() -> None:
    """A JPEG whose frame header declares 60,000 × 60,000 pixels."""
    source = bytearray(image_bytes(Image.new("L", (8, 8)), "JPEG"))
    marker = source.index(b"\xff\xc0")  # start of frame: length, precision, height, width
    source[marker + 5 : marker + 9] = struct.pack(">HH", 60_000, 60_000)
    with pytest.raises(UploadTooLarge):
        reencode(bytes(source), max_pixels=MAX_PIXELS, max_side=2048)
