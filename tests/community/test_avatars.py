"""Avatars and bios: the generated drawing (deterministic, escaped, readable colours), its own
address with safe headers, uploading and removing a picture on the account page (an SVG
refused), the bio (plain text, escaped, at most 500 characters), avatars beside posts, and CSRF
and sign-in on every change."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core import uploads
from community.core.models import User
from community.core.workspace_models import Upload, UploadPurpose
from community.members import avatars
from tests.conftest import QA, csrf_token, fresh, log_in

UserFactory = Callable[..., User]


def _png(size: tuple[int, int] = (300, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def _signed_in(make_client: Callable[[], TestClient], user: User) -> TestClient:
    browser = make_client()
    log_in(browser, user.username)
    return browser


# --- the generated drawing -----------------------------------------------------------------------


def test_the_generated_avatar_is_deterministic_and_escaped() -> None:
    first = avatars.generated_svg("ana", "Ana María", 32)
    assert first == avatars.generated_svg("ana", "Ana María", 32)
    assert first == avatars.generated_svg("ANA", "Ana María", 32)  # one account, one colour
    assert ">AM</text>" in first
    hostile = str(avatars.generated_svg("<script>", '<script>alert("x")</script>', 32))
    assert "<script" not in hostile
    assert hostile.count("<svg") == 1 and hostile.endswith("</svg>")
    quotes = str(avatars.generated_svg("q", '"><img src=x onerror=alert(1)>', 32))
    assert "<img" not in quotes
    assert ">IS</text>" in quotes  # the first letter of each of the first two words
    # Different names land on different colours (not all on one).
    colours = {avatars.colour_for(f"member{n}") for n in range(60)}
    assert len(colours) > len(avatars.PALETTE) // 2


def test_every_colour_keeps_aa_contrast_with_its_initials() -> None:
    for background in avatars.PALETTE:
        text = avatars.text_colour(background)
        assert avatars.contrast(background, text) >= avatars.AA_CONTRAST, background
    assert round(avatars.contrast("#ffffff", "#000000"), 1) == 21.0


def test_the_generated_avatar_s_address_serves_a_locked_down_svg(
    client: TestClient, make_user: UserFactory
) -> None:
    make_user("ana")
    response = client.get("/u/ana/avatar.svg")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers["content-security-policy"] == "default-src 'none'"
    assert "max-age=86400" in response.headers["cache-control"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text.startswith("<?xml")
    again = client.get("/u/ana/avatar.svg", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/u/nobody/avatar.svg").status_code == 404


# --- uploading and removing ----------------------------------------------------------------------


def test_uploading_and_removing_a_picture(
    db: Session, qa: QA, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    member = make_user("member")
    browser = _signed_in(make_client, member)
    token = csrf_token(browser, "/account")
    uploaded = browser.post(
        "/account/avatar",
        data={"csrf_token": token},
        files={"avatar": ("me.png", _png(), "image/png")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303, uploaded.text[:500]
    fresh(db)
    user = db.get(User, member.id)
    assert user is not None and user.avatar_key
    upload = db.scalars(select(Upload).where(Upload.key == user.avatar_key)).one()
    assert upload.purpose == UploadPurpose.AVATAR and upload.owner_id == member.id
    # Shown beside the member's posts and on the profile, and served to anyone.
    thread = qa.ask(user)
    page = make_client().get(f"/t/{thread.id}").text
    assert f'src="/uploads/{user.avatar_key}"' in page
    assert f'src="/uploads/{user.avatar_key}"' in make_client().get("/u/member").text
    assert make_client().get(f"/uploads/{user.avatar_key}").status_code == 200

    # A new picture replaces the old one, whose address stops answering.
    first_key = user.avatar_key
    replaced = browser.post(
        "/account/avatar",
        data={"csrf_token": token},
        files={"avatar": ("again.png", _png((64, 64)), "image/png")},
        follow_redirects=False,
    )
    assert replaced.status_code == 303
    fresh(db)
    second_key = db.get(User, member.id).avatar_key  # type: ignore[union-attr]
    assert second_key and second_key != first_key
    assert make_client().get(f"/uploads/{first_key}").status_code == 404

    removed = browser.post(
        "/account/avatar/remove", data={"csrf_token": token}, follow_redirects=False
    )
    assert removed.status_code == 303
    fresh(db)
    assert db.get(User, member.id).avatar_key is None  # type: ignore[union-attr]
    assert "/uploads/" not in make_client().get("/u/member").text
    assert make_client().get(f"/uploads/{second_key}").status_code == 404
    assert db.scalars(select(Upload)).all() == []


def test_the_picture_is_decoded_off_the_event_loop(
    make_user: UserFactory, make_client: Callable[[], TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoding a 40-megapixel picture takes most of a second: on the event loop it would stall
    every other request of the process meanwhile (the editors' and logos' uploads run in the
    thread pool too)."""
    on_loop: list[bool] = []
    reencode = uploads.reencode

    def watched(data: bytes, **limits: int) -> uploads.Encoded:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            on_loop.append(False)
        else:
            on_loop.append(True)
        return reencode(data, **limits)

    monkeypatch.setattr(uploads, "reencode", watched)
    browser = _signed_in(make_client, make_user("member"))
    uploaded = browser.post(
        "/account/avatar",
        data={"csrf_token": csrf_token(browser, "/account")},
        files={"avatar": ("me.png", _png(), "image/png")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303
    assert on_loop == [False]


def test_an_svg_or_a_non_image_is_refused_and_changes_nothing(
    db: Session, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    member = make_user("member")
    browser = _signed_in(make_client, member)
    token = csrf_token(browser, "/account")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    for name, data, kind in (
        ("me.svg", svg, "image/svg+xml"),
        ("me.png", b"GIF89a<html><script>alert(1)</script>", "image/png"),
        ("empty.png", b"", "image/png"),
    ):
        refused = browser.post(
            "/account/avatar", data={"csrf_token": token}, files={"avatar": (name, data, kind)}
        )
        assert 400 <= refused.status_code < 500, name
        assert 'id="error-avatar"' in refused.text, name
    fresh(db)
    assert db.get(User, member.id).avatar_key is None  # type: ignore[union-attr]
    assert db.scalars(select(Upload)).all() == []


def test_changes_need_the_csrf_token_and_a_signed_in_member(
    db: Session, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    member = make_user("member")
    browser = _signed_in(make_client, member)
    assert (
        browser.post("/account/avatar", files={"avatar": ("me.png", _png(), "image/png")})
    ).status_code == 403
    assert browser.post("/account/avatar/remove").status_code == 403
    assert browser.post("/account/bio", data={"bio": "Hi"}).status_code == 403
    visitor = make_client()
    token = csrf_token(visitor, "/login")
    for path in ("/account/avatar/remove", "/account/bio"):
        response = visitor.post(
            path, data={"csrf_token": token, "bio": "x"}, follow_redirects=False
        )
        assert response.status_code in (303, 401), path
    fresh(db)
    user = db.get(User, member.id)
    assert user is not None and user.bio == "" and user.avatar_key is None


# --- the bio -----------------------------------------------------------------------------------


def test_the_bio_is_plain_text_shown_escaped_and_limited(
    db: Session, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    member = make_user("member")
    browser = _signed_in(make_client, member)
    token = csrf_token(browser, "/account")
    bio = '<script>alert("hi")</script> I fix **phones**.\nSecond line\x00.'
    saved = browser.post(
        "/account/bio", data={"csrf_token": token, "bio": bio}, follow_redirects=False
    )
    assert saved.status_code == 303
    profile = make_client().get("/u/member").text
    assert "&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt; I fix **phones**.<br>Second line." in (
        profile
    )
    assert "<script>alert" not in profile
    assert "Second line." in browser.get("/account").text

    too_long = browser.post("/account/bio", data={"csrf_token": token, "bio": "x" * 501})
    assert too_long.status_code == 422
    assert 'id="error-bio"' in too_long.text
    fresh(db)
    user = db.get(User, member.id)
    assert user is not None and user.bio.startswith("<script>")  # unchanged by the refusal
    assert "\x00" not in user.bio


def test_posts_show_the_generated_avatar_when_there_is_no_picture(
    client: TestClient, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    asker.display_name = "Zoë Quinn"
    qa.db.commit()
    thread = qa.ask(asker)
    page = client.get(f"/t/{thread.id}").text
    drawing = re.search(
        r'<svg xmlns="http://www.w3.org/2000/svg" class="avatar-img".*?</svg>', page
    )
    assert drawing is not None
    assert ">ZQ</text>" in drawing.group(0)
    assert str(avatars.generated_svg("asker", "Zoë Quinn", 24)) in page
