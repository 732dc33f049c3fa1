"""Uploading pictures (POST /uploads, POST /api/v1/uploads) and serving them (GET /uploads/<key>):
who may upload, what is refused and stores nothing, the headers an image is served with, and
who sees it (a held post's pictures: its author and staff only; a picture in no post yet: its
owner and staff). Both databases; the bucket storage is in test_upload_storage_s3.py, the image
work itself in test_upload_images.py."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core import uploads
from community.core.api_tokens import create_token
from community.core.clock import utcnow
from community.core.markdown import render_markdown
from community.core.models import Brand, Forum, Post, Role, User, Visibility
from community.core.settings import Settings
from community.core.workspace_models import BrandRole, StaffGrant, Upload, UploadPurpose
from tests.conftest import QA, csrf_token, fresh, log_in

Clients = Callable[[Role | None], tuple[TestClient, User | None]]
JSON = {"Accept": "application/json"}


def png(size: tuple[int, int] = (64, 48), colour: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def bomb_png(side: int = 50_000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 99))


def send(
    client: TestClient,
    data: bytes,
    name: str = "picture.png",
    content_type: str = "image/png",
    *,
    token: str | None = "",
    fields: dict[str, str] | None = None,
) -> httpx.Response:
    """POST /uploads as the editor's script does; token "" fetches this session's token, None
    sends none."""
    headers = dict(JSON)
    if token == "":
        token = csrf_token(client, "/")
    if token is not None:
        headers["X-CSRF-Token"] = token
    return client.post(
        "/uploads",
        files={"file": (name, data, content_type)},
        data=fields or {},
        headers=headers,
    )


def stored_count(db: Session) -> int:
    fresh(db)
    return db.scalar(select(func.count()).select_from(Upload)) or 0


def stored_files(settings: Settings) -> list[Path]:
    root = settings.uploads_path
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def member(make_user: Callable[..., User], make_client: Callable[[], TestClient], name: str,
           **fields: object) -> tuple[TestClient, User]:  # fmt: skip
    user = make_user(name, **fields)
    browser = make_client()
    log_in(browser, user.username)
    return browser, user


# --- uploading ---------------------------------------------------------------------------------


def test_a_member_uploads_a_picture_and_gets_its_markdown(
    as_role: Clients, db: Session, settings: Settings
) -> None:
    browser, user = as_role(Role.MEMBER)
    assert user is not None
    response = send(browser, png(), name="My router [setup].png")
    assert response.status_code == 201, response.text
    body = response.json()
    key = body["key"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", key)
    assert body["url"] == f"/uploads/{key}"
    assert body["markdown"] == f"![My router setup](/uploads/{key})"
    assert (body["width"], body["height"], body["content_type"]) == (64, 48, "image/png")

    fresh(db)
    upload = db.scalar(select(Upload).where(Upload.key == key))
    assert upload is not None
    assert upload.owner_id == user.id and upload.purpose == UploadPurpose.POST
    assert upload.post_id is None and upload.storage == "local"
    assert upload.original_name == "My router [setup].png"
    files = stored_files(settings)
    assert [path.name for path in files] == [key]  # stored under the key, never the name
    assert Image.open(files[0]).format == "PNG"


def test_the_stored_name_is_never_the_senders(as_role: Clients, settings: Settings) -> None:
    browser, _user = as_role(Role.MEMBER)
    response = send(browser, png(), name="../../../etc/passwd.png")
    assert response.status_code == 201
    names = [path.name for path in stored_files(settings)]
    assert names == [response.json()["key"]]
    assert not (settings.instance_path.parent / "etc").exists()


@pytest.mark.parametrize(
    ("data", "name", "content_type", "status", "code"),
    [
        pytest.param(
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script>'
            b"</svg>", "logo.svg", "image/svg+xml", 415, "unsupported_image", id="svg-script",
        ),
        pytest.param(
            b"<!doctype html><script>alert(1)</script>", "cat.png", "image/png", 415,
            "unsupported_image", id="html-named-png",
        ),
        pytest.param(bomb_png(), "bomb.png", "image/png", 413, "too_many_pixels", id="bomb"),
        pytest.param(b"", "empty.png", "image/png", 400, "empty_upload", id="empty"),
        pytest.param(
            b"\x89PNG\r\n\x1a\n" + b"\0" * (5 * 1024 * 1024), "huge.png", "image/png", 413,
            "upload_too_large", id="oversize",
        ),
    ],
)  # fmt: skip
def test_refused_uploads_answer_4xx_and_store_nothing(
    as_role: Clients, db: Session, settings: Settings,
    data: bytes, name: str, content_type: str, status: int, code: str,
) -> None:  # fmt: skip
    browser, _user = as_role(Role.MEMBER)
    response = send(browser, data, name=name, content_type=content_type)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and "Traceback" not in error["message"]
    assert stored_count(db) == 0
    assert stored_files(settings) == []


def test_a_body_far_over_the_limit_is_refused_before_it_is_read(as_role: Clients) -> None:
    browser, _user = as_role(Role.MEMBER)
    response = send(browser, b"\x89PNG" + b"\0" * (6 * 1024 * 1024))
    assert response.status_code == 413


def test_an_upload_without_a_file_is_a_clear_400(as_role: Clients) -> None:
    browser, _user = as_role(Role.MEMBER)
    token = csrf_token(browser, "/")
    response = browser.post(
        "/uploads", data={"purpose": "post"}, headers=JSON | {"X-CSRF-Token": token}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_file"


def test_without_the_csrf_token_nothing_is_stored(as_role: Clients, db: Session) -> None:
    browser, _user = as_role(Role.MEMBER)
    response = send(browser, png(), token=None)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert stored_count(db) == 0


def test_nobody_signed_in_may_upload(client: TestClient, db: Session) -> None:
    token = csrf_token(client, "/")
    response = client.post(
        "/uploads",
        files={"file": ("a.png", png(), "image/png")},
        headers=JSON | {"X-CSRF-Token": token},
    )
    assert response.status_code == 401
    as_page = client.post(
        "/uploads",
        files={"file": ("a.png", png(), "image/png")},
        headers={"X-CSRF-Token": token},
        follow_redirects=False,
    )
    assert as_page.status_code == 303 and as_page.headers["location"].startswith("/login")
    assert stored_count(db) == 0


@pytest.mark.parametrize("sanction", ["silenced_until", "suspended_until"])
def test_silenced_and_suspended_members_may_not_upload(
    make_user: Callable[..., User], make_client: Callable[[], TestClient], db: Session,
    sanction: str,
) -> None:  # fmt: skip
    browser, user = member(make_user, make_client, "quiet")
    fresh(db)
    row = db.get(User, user.id)
    assert row is not None
    setattr(row, sanction, utcnow() + timedelta(days=3))
    db.commit()
    response = send(browser, png())
    # Read-only: a 403 that says so. Suspended: signed out as well, so 401 or 403.
    expected = {403} if sanction == "silenced_until" else {401, 403}
    assert response.status_code in expected, response.text
    assert stored_count(db) == 0


def test_article_pictures_are_for_the_brands_curators(
    as_role: Clients, forum: Forum, db: Session
) -> None:
    member_browser, _member = as_role(Role.MEMBER)
    refused = send(member_browser, png(), fields={"purpose": "article", "brand": "acme"})
    assert refused.status_code == 403
    missing_brand = send(member_browser, png(), fields={"purpose": "article"})
    assert missing_brand.status_code == 422
    odd = send(member_browser, png(), fields={"purpose": "logo"})
    assert odd.status_code == 422
    assert stored_count(db) == 0

    agent_browser, _agent = as_role(Role.AGENT)
    accepted = send(agent_browser, png(), fields={"purpose": "article", "brand": "acme"})
    assert accepted.status_code == 201
    key = accepted.json()["key"]
    fresh(db)
    upload = db.scalar(select(Upload).where(Upload.key == key))
    assert upload is not None and upload.purpose == UploadPurpose.ARTICLE
    assert upload.brand_id == forum.brand_id
    # Article pictures are public, as the articles they are for.
    with TestClient(agent_browser.app) as anonymous:
        assert anonymous.get(f"/uploads/{key}").status_code == 200


def test_the_api_takes_a_token_and_no_csrf(
    make_user: Callable[..., User], client: TestClient, db: Session
) -> None:
    user = make_user("tokenholder")
    _token, raw = create_token(db, user, "images")
    db.commit()
    response = client.post(
        "/api/v1/uploads",
        files={"file": ("shot.jpg", png(), "image/jpeg")},
        headers={"authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "image/png"  # what it is, not what it said
    refused = client.post(
        "/api/v1/uploads",
        files={"file": ("x.svg", b"<svg/>", "image/svg+xml")},
        headers={"authorization": f"Bearer {raw}"},
    )
    assert refused.status_code == 415
    assert refused.json()["error"]["code"] == "unsupported_image"
    assert client.post("/api/v1/uploads", files={"file": ("a.png", png())}).status_code in (
        401,
        403,
    )


# --- serving -----------------------------------------------------------------------------------


def test_an_image_is_served_with_headers_that_make_it_only_an_image(as_role: Clients) -> None:
    browser, _user = as_role(Role.MEMBER)
    key = send(browser, png(), name="../evil<script>.html").json()["key"]
    response = browser.get(f"/uploads/{key}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == 'inline; filename="evil_script.png"'
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert response.headers["cache-control"] == "no-store"  # a picture in no post yet
    etag = response.headers["etag"]
    assert etag == f'"{hashlib.sha256(response.content).hexdigest()}"'
    assert Image.open(io.BytesIO(response.content)).format == "PNG"
    again = browser.get(f"/uploads/{key}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert browser.head(f"/uploads/{key}").status_code == 200


@pytest.mark.parametrize(
    "key",
    ["nosuchkeynosuchkeynosuchkey12345", "short", "..%2F..%2Fsecret_key", "a" * 41, "%00" * 20],
)
def test_unknown_or_malformed_keys_are_404(client: TestClient, key: str) -> None:
    assert client.get(f"/uploads/{key}").status_code == 404


def test_a_public_picture_may_be_kept_by_any_cache(
    client: TestClient, as_role: Clients, db: Session, settings: Settings, forum: Forum
) -> None:
    logo = uploads.accept_image(
        db, settings, data=png(), filename="logo.png", purpose=UploadPurpose.LOGO,
        owner_id=None, brand_id=forum.brand_id,
    )  # fmt: skip
    db.commit()
    long_lived = "public, max-age=31536000, immutable"
    assert client.get(f"/uploads/{logo.key}").headers["cache-control"] == long_lived
    browser, _user = as_role(Role.MEMBER)  # signed in: still the same picture for everyone
    assert browser.get(f"/uploads/{logo.key}").headers["cache-control"] == long_lived


# --- who sees what -----------------------------------------------------------------------------


def test_a_picture_in_no_post_yet_is_its_owners_and_staffs(
    make_user: Callable[..., User], make_client: Callable[[], TestClient], as_role: Clients,
    client: TestClient,
) -> None:  # fmt: skip
    owner_browser, _owner = member(make_user, make_client, "owner")
    key = send(owner_browser, png()).json()["key"]
    other_browser, _other = member(make_user, make_client, "other")
    moderator_browser, _moderator = as_role(Role.MODERATOR)
    assert owner_browser.get(f"/uploads/{key}").status_code == 200
    assert moderator_browser.get(f"/uploads/{key}").status_code == 200
    assert other_browser.get(f"/uploads/{key}").status_code == 404
    assert client.get(f"/uploads/{key}").status_code == 404


def test_a_picture_in_no_post_yet_is_for_the_staff_of_its_brand_only(
    db: Session, forum: Forum, make_user: Callable[..., User],
    make_client: Callable[[], TestClient],
) -> None:  # fmt: skip
    """Staff of one brand see another brand's pictures no more than its posts; a picture sent
    without a brand is for the site-wide staff."""
    globex = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(globex)
    db.commit()
    owner_browser, _owner = member(make_user, make_client, "owner")
    for_acme = send(owner_browser, png(), fields={"brand": "acme"}).json()["key"]
    no_brand = send(owner_browser, png(colour="navy")).json()["key"]
    acme_moderator, acme_user = member(make_user, make_client, "mona")
    globex_moderator, globex_user = member(make_user, make_client, "gil")
    db.add_all([
        StaffGrant(user_id=acme_user.id, brand_id=forum.brand_id, role=BrandRole.MODERATOR),
        StaffGrant(user_id=globex_user.id, brand_id=globex.id, role=BrandRole.MODERATOR),
    ])  # fmt: skip
    db.commit()
    assert acme_moderator.get(f"/uploads/{for_acme}").status_code == 200
    assert globex_moderator.get(f"/uploads/{for_acme}").status_code == 404
    assert acme_moderator.get(f"/uploads/{no_brand}").status_code == 404
    assert owner_browser.get(f"/uploads/{no_brand}").status_code == 200


def test_a_held_posts_picture_is_seen_by_its_author_and_staff_only(
    make_user: Callable[..., User], make_client: Callable[[], TestClient], as_role: Clients,
    client: TestClient, db: Session, qa: QA,
) -> None:  # fmt: skip
    # A new account's first post waits for a moderator (and so does one with a picture).
    author_browser, author = member(make_user, make_client, "newcomer", trust_level=0)
    key = send(author_browser, png()).json()["key"]
    thread = qa.ask(author, body=f"My router shows this light:\n\n![light](/uploads/{key})")
    fresh(db)
    assert thread.visibility == Visibility.PENDING
    upload = db.scalar(select(Upload).where(Upload.key == key))
    assert upload is not None and upload.post_id is not None  # attached while held

    other_browser, _other = member(make_user, make_client, "bystander")
    moderator_browser, _moderator = as_role(Role.MODERATOR)
    assert author_browser.get(f"/uploads/{key}").status_code == 200
    served = moderator_browser.get(f"/uploads/{key}")
    assert served.status_code == 200 and served.headers["cache-control"] == "no-store"
    assert other_browser.get(f"/uploads/{key}").status_code == 404
    assert client.get(f"/uploads/{key}").status_code == 404
    # The author's own view of the held question shows the picture.
    page = author_browser.get(f"/t/{thread.id}")
    assert f'src="/uploads/{key}"' in page.text


def test_a_visible_posts_picture_is_seen_by_everyone_until_the_post_is_hidden(
    make_user: Callable[..., User], make_client: Callable[[], TestClient], client: TestClient,
    db: Session, qa: QA,
) -> None:  # fmt: skip
    author_browser, _author = member(make_user, make_client, "regular")
    asker = make_user("asker")
    thread = qa.ask(asker)
    key = send(author_browser, png()).json()["key"]
    token = csrf_token(author_browser, f"/t/{thread.id}")
    answered = author_browser.post(
        f"/t/{thread.id}/answers",
        data={"body": f"Here is the screen: ![screen](/uploads/{key})", "csrf_token": token},
        follow_redirects=False,
    )
    assert answered.status_code == 303
    fresh(db)
    upload = db.scalar(select(Upload).where(Upload.key == key))
    assert upload is not None and upload.post_id is not None
    shown = client.get(f"/uploads/{key}")
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "private, max-age=300"
    assert f'src="/uploads/{key}"' in client.get(f"/t/{thread.id}").text

    row = db.get(Post, upload.post_id)
    assert row is not None
    row.visibility = Visibility.HIDDEN
    db.commit()
    assert client.get(f"/uploads/{key}").status_code == 404
    assert author_browser.get(f"/uploads/{key}").status_code == 404  # hidden: not even theirs


def test_only_the_authors_own_pictures_are_attached(
    make_user: Callable[..., User], make_client: Callable[[], TestClient], client: TestClient,
    db: Session, qa: QA,
) -> None:  # fmt: skip
    """Referring to someone else's unattached picture neither attaches nor reveals it."""
    owner_browser, _owner = member(make_user, make_client, "owner")
    private_key = send(owner_browser, png()).json()["key"]
    thief = make_user("thief")
    qa.ask(thief, body=f"Look: ![x](/uploads/{private_key})")
    fresh(db)
    upload = db.scalar(select(Upload).where(Upload.key == private_key))
    assert upload is not None and upload.post_id is None
    assert client.get(f"/uploads/{private_key}").status_code == 404


def test_an_edit_attaches_the_pictures_it_adds(
    make_user: Callable[..., User], make_client: Callable[[], TestClient], client: TestClient,
    db: Session, qa: QA,
) -> None:  # fmt: skip
    author_browser, author = member(make_user, make_client, "editor")
    thread = qa.ask(author)
    key = send(author_browser, png()).json()["key"]
    assert client.get(f"/uploads/{key}").status_code == 404
    fresh(db)
    question = db.scalar(select(Post).where(Post.thread_id == thread.id, Post.is_question))
    assert question is not None
    token = csrf_token(author_browser, f"/posts/{question.id}/edit")
    saved = author_browser.post(
        f"/posts/{question.id}/edit",
        data={
            "body": f"{question.body_source}\n\n![photo](/uploads/{key})",
            "title": thread.title, "tags": "", "kind": "question", "csrf_token": token,
        },
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303, saved.text[:500]
    assert client.get(f"/uploads/{key}").status_code == 200


def test_markdown_shows_our_uploads_and_nothing_like_them() -> None:
    key = "A" * 32
    assert f'<img src="/uploads/{key}" alt="x">' in render_markdown(f"![x](/uploads/{key})")
    for source in (
        "![x](javascript:alert(1))",
        "![x](data:image/png;base64,iVBORw0KGgo=)",
        f"![x](//evil.example/uploads/{key})",
        f"![x](/uploads/{key}/../../admin)",
        "![x](/static/favicon.svg)",
        "![x](http://tracker.example/p.png)",
    ):
        assert "src=" not in render_markdown(source), source


# --- the service other pages call (logos, favicons, avatars) -----------------------------------


@pytest.mark.parametrize(
    ("purpose", "side"),
    [
        (UploadPurpose.AVATAR, 256),
        (UploadPurpose.LOGO, 512),
        (UploadPurpose.FAVICON, 64),
        (UploadPurpose.POST, 2048),
    ],
)
def test_each_place_keeps_its_own_size(
    db: Session, settings: Settings, purpose: UploadPurpose, side: int
) -> None:
    upload = uploads.accept_image(
        db, settings, data=png((3000, 1500)), filename="big.png", purpose=purpose,
        owner_id=None, brand_id=None,
    )  # fmt: skip
    assert (upload.width, upload.height) == (side, side // 2)
    stored = Image.open(io.BytesIO(uploads.read_stored(settings, upload.storage, upload.key)))
    assert stored.size == (side, side // 2)


def test_avatars_and_favicons_take_fewer_bytes(db: Session, settings: Settings) -> None:
    noise = Image.frombytes("RGB", (1100, 1100), bytes(range(256)) * (1100 * 1100 * 3 // 256 + 1))
    out = io.BytesIO()
    noise.save(out, "PNG", compress_level=0)
    data = out.getvalue()
    assert 2 * 1024 * 1024 < len(data) < settings.uploads_max_bytes
    for purpose in (UploadPurpose.AVATAR, UploadPurpose.FAVICON):
        with pytest.raises(uploads.UploadTooLarge):
            uploads.accept_image(
                db, settings, data=data, filename="me.png", purpose=purpose, owner_id=None,
                brand_id=None,
            )  # fmt: skip
    assert stored_count(db) == 0
    logo = uploads.accept_image(
        db, settings, data=data, filename="logo.png", purpose=UploadPurpose.LOGO,
        owner_id=None, brand_id=None,
    )  # fmt: skip
    assert logo.width == 512


def test_a_discarded_image_stops_answering(
    db: Session, settings: Settings, client: TestClient
) -> None:
    avatar = uploads.accept_image(
        db, settings, data=png(), filename="me.png", purpose=UploadPurpose.AVATAR,
        owner_id=None, brand_id=None,
    )  # fmt: skip
    db.commit()
    assert client.get(f"/uploads/{avatar.key}").status_code == 200
    uploads.discard_upload(db, settings, avatar.key)
    db.commit()
    assert client.get(f"/uploads/{avatar.key}").status_code == 404
    assert stored_files(settings) == []
    uploads.discard_upload(db, settings, avatar.key)  # twice, or a key never stored: no error
    uploads.discard_upload(db, settings, None)
