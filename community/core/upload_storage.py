"""Where uploaded images' bytes live: a folder (INSTANCE_DIR/uploads by default) or an
S3-compatible bucket (minio's client; Amazon S3, MinIO, Ceph, R2...). One small interface, so
community.core.uploads neither knows nor cares which.

The site serves every image itself (GET /uploads/<key>, with its access rules and safe
headers), so the bucket stays private: no public URLs, no presigned links, and the keys stay on
the server. Keys are random (community.core.uploads) and checked here again before they become a
path or an object name, so no caller can reach outside the uploads.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from community.core.errors import AppError, NotFound
from community.core.i18n import gettext as _
from community.core.settings import Settings

if TYPE_CHECKING:
    from minio import Minio

logger = logging.getLogger(__name__)

LOCAL, S3 = "local", "s3"
# What secrets.token_urlsafe makes (community.core.uploads.new_key), and nothing else.
KEY = re.compile(r"^[A-Za-z0-9_-]{16,40}$")


class StorageUnavailable(AppError):
    """The bucket did not answer: nothing was stored, the client may try again."""

    status_code = 503
    code = "storage_unavailable"


class Storage(Protocol):
    name: str

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes:
        """The stored bytes; NotFound when there are none."""
        ...

    def delete(self, key: str) -> None:
        """Gone afterwards, also when it was never there."""
        ...


def checked_key(key: str) -> str:
    if not KEY.match(key):
        raise NotFound()
    return key


class LocalStorage:
    """Files under one folder, spread over subfolders by the key's first two characters (a
    folder of a million files is slow to list and back up)."""

    name = LOCAL

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        key = checked_key(key)
        return self.root / key[:2] / key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a reader never sees half an image.
        partial = path.with_name(f".{key}.{secrets.token_hex(4)}.part")
        partial.write_bytes(data)
        os.replace(partial, path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound() from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Storage:
    """Objects in one bucket of an S3-compatible service. The bucket must exist (created with
    the service's own tools, with no public access)."""

    name = S3

    def __init__(self, client: Minio, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes, content_type: str) -> None:
        key = checked_key(key)
        try:
            self.client.put_object(
                self.bucket, key, io.BytesIO(data), length=len(data), content_type=content_type
            )
        except _client_errors() as exc:
            raise _unavailable("put", exc) from None

    def get(self, key: str) -> bytes:
        from minio.error import S3Error

        key = checked_key(key)
        try:
            response = self.client.get_object(self.bucket, key)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise NotFound() from None
            raise _unavailable("get", exc) from None
        except _client_errors() as exc:
            raise _unavailable("get", exc) from None

    def delete(self, key: str) -> None:
        key = checked_key(key)
        try:
            self.client.remove_object(self.bucket, key)
        except _client_errors() as exc:
            raise _unavailable("delete", exc) from None


def _client_errors() -> tuple[type[Exception], ...]:
    """What a call to the bucket raises when the bucket, not the caller, is at fault: the
    service's answers (MinioException) and the transport's (urllib3: refused, timed out)."""
    import urllib3
    from minio.error import MinioException

    return (MinioException, urllib3.exceptions.HTTPError, OSError)


def _unavailable(action: str, exc: Exception) -> StorageUnavailable:
    # The error's type and S3 code only: nothing about the request or its signature, let alone
    # the credentials, belongs in a log line.
    code = getattr(exc, "code", "")
    logger.warning("upload storage %s failed: %s %s", action, type(exc).__name__, code)
    return StorageUnavailable(_("The image store is not answering. Try again in a moment."))


@functools.lru_cache(maxsize=8)
def _minio_client(
    endpoint: str, access_key: str | None, secret_key: str | None, secure: bool, region: str | None
) -> Minio:
    """One client (and its connection pool) per configuration, kept for the process."""
    import urllib3
    from minio import Minio

    http = urllib3.PoolManager(
        # A bucket that hangs must not hold a request (and a database connection) for minutes.
        timeout=urllib3.Timeout(connect=5.0, read=30.0),
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        maxsize=10,
    )
    return Minio(
        endpoint,
        access_key=access_key,
        secret_key=secret_key,
        secure=secure,
        region=region,
        http_client=http,
    )


def storage_for(settings: Settings, name: str | None = None) -> Storage:
    """The storage new uploads go to (name None), or the one an upload was stored in."""
    name = name or (S3 if settings.uploads_in_s3 else LOCAL)
    if name == LOCAL:
        return LocalStorage(settings.uploads_path)
    if name == S3 and settings.uploads_s3_endpoint and settings.uploads_s3_bucket:
        secret = settings.uploads_s3_secret_key
        client = _minio_client(
            settings.uploads_s3_endpoint,
            settings.uploads_s3_access_key,
            secret.get_secret_value() if secret is not None else None,
            settings.uploads_s3_secure,
            settings.uploads_s3_region,
        )
        return S3Storage(client, settings.uploads_s3_bucket)
    # Stored in a bucket the site is no longer configured for: as good as gone.
    logger.warning("an upload is stored in %r, which is not configured", name)
    raise NotFound()
