"""Uploads kept in an S3-compatible bucket (UPLOADS_S3_*): moto's S3 server, a real HTTP server on
loopback speaking the S3 protocol, stands in for the bucket (the same minio client code runs as
against Amazon S3 or MinIO; nothing of the client is mocked). The site serves the bucket's
images itself, with the same rules and headers, and the bucket's keys never reach a browser or
a log."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from minio import Minio
from moto.server import ThreadedMotoServer
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core import meili, uploads
from community.core.errors import NotFound
from community.core.models import User
from community.core.settings import Settings
from community.core.upload_storage import (
    LocalStorage,
    S3Storage,
    StorageUnavailable,
    storage_for,
)
from community.core.workspace_models import Upload, UploadPurpose
from tests.conftest import csrf_token, fresh, log_in, make_settings

BUCKET = "community-uploads"
ACCESS_KEY = "AKIAUPLOADTESTS"
SECRET_KEY = "s3-secret-that-must-never-leak-8f1c2b"


@pytest.fixture(scope="module")
def bucket_endpoint() -> Iterator[str]:
    """host:port of a private bucket on moto's S3 server, for this module's tests."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"{host}:{port}"
    admin = Minio(endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False,
                  region="us-east-1")  # fmt: skip
    admin.make_bucket(BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, meili_server: meili.MeiliServer, bucket_endpoint: str
) -> Settings:
    """This module's settings: uploads go to the bucket."""
    return make_settings(
        tmp_path,
        database_url,
        meili_server.url,
        uploads_s3_endpoint=bucket_endpoint,
        uploads_s3_bucket=BUCKET,
        uploads_s3_access_key=ACCESS_KEY,
        uploads_s3_secret_key=SECRET_KEY,
        uploads_s3_secure=False,
        uploads_s3_region="us-east-1",
    )


def bucket(endpoint: str) -> Minio:
    return Minio(endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False,
                 region="us-east-1")  # fmt: skip


def png(colour: str = "orange") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, "PNG")
    return out.getvalue()


def upload_as(browser: TestClient, data: bytes) -> str:
    token = csrf_token(browser, "/")
    response = browser.post(
        "/uploads",
        files={"file": ("photo.png", data, "image/png")},
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def test_an_upload_goes_to_the_bucket_and_is_served_from_it(
    make_user: Callable[..., User], make_client: Callable[[], TestClient], client: TestClient,
    db: Session, settings: Settings, bucket_endpoint: str, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    owner = make_user("owner")
    browser = make_client()
    log_in(browser, owner.username)
    key = upload_as(browser, png())

    fresh(db)
    upload = db.scalar(select(Upload).where(Upload.key == key))
    assert upload is not None and upload.storage == "s3"
    stat = bucket(bucket_endpoint).stat_object(BUCKET, key)
    assert stat.content_type == "image/png" and stat.size == upload.byte_size
    assert not settings.uploads_path.exists() or not any(settings.uploads_path.rglob("*"))

    served = browser.get(f"/uploads/{key}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-disposition"] == 'inline; filename="photo.png"'
    stored = bucket(bucket_endpoint).get_object(BUCKET, key)
    assert served.content == stored.read()
    stored.close()
    stored.release_conn()
    # The same rule as on disk: a picture in no post yet is its owner's (and staff's).
    assert client.get(f"/uploads/{key}").status_code == 404

    # Neither the secret nor a signed request's credential reached a page or a log line.
    for text in (caplog.text, served.headers.__repr__(), repr(settings)):
        assert SECRET_KEY not in text
    assert "X-Amz-Credential" not in caplog.text


def test_a_picture_gone_from_the_bucket_is_a_404(
    db: Session, settings: Settings, bucket_endpoint: str, client: TestClient
) -> None:
    logo = uploads.accept_image(
        db, settings, data=png(), filename="logo.png", purpose=UploadPurpose.LOGO,
        owner_id=None, brand_id=None,
    )  # fmt: skip
    db.commit()
    assert client.get(f"/uploads/{logo.key}").status_code == 200
    storage = storage_for(settings)
    assert isinstance(storage, S3Storage)
    storage.delete(logo.key)
    with pytest.raises(NotFound):
        storage.get(logo.key)
    assert client.get(f"/uploads/{logo.key}").status_code == 404


def test_pictures_stored_on_disk_before_the_bucket_are_still_served(
    db: Session, settings: Settings, client: TestClient
) -> None:
    key = uploads.new_key()
    LocalStorage(settings.uploads_path).put(key, png("navy"), "image/png")
    db.add(
        Upload(
            key=key,
            owner_id=None,
            brand_id=None,
            purpose=UploadPurpose.LOGO,
            content_type="image/png",
            width=40,
            height=30,
            byte_size=1,
            sha256="0" * 64,
            original_name="old.png",
            storage="local",
        )
    )
    db.commit()
    served = client.get(f"/uploads/{key}")
    assert served.status_code == 200
    assert Image.open(io.BytesIO(served.content)).convert("RGB").getpixel((1, 1)) == (0, 0, 128)


def test_a_bucket_that_does_not_answer_stores_nothing_and_leaks_nothing(
    db: Session, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    unreachable = settings.model_copy(update={"uploads_s3_endpoint": "127.0.0.1:9"})
    with pytest.raises(StorageUnavailable) as refused:
        uploads.accept_image(
            db,
            unreachable,
            data=png(),
            filename="a.png",
            purpose=UploadPurpose.POST,
            owner_id=None,
            brand_id=None,
        )
    assert refused.value.status_code == 503
    db.rollback()  # what the request does with an error: nothing is committed
    assert (db.scalar(select(func.count()).select_from(Upload)) or 0) == 0
    assert SECRET_KEY not in caplog.text
