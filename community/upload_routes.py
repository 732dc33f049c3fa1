"""Uploading pictures from the editors (POST /uploads, JSON for static/js/uploads.js), the API's
equivalent (POST /api/v1/uploads, with a token), and serving every upload (GET /uploads/<key>)
with headers that keep a browser from ever treating one as a page: the stored type, nosniff,
Content-Disposition, and a CSP that allows nothing (an image opened on its own runs nothing,
whatever its bytes say). Checks and rules are in community.core.uploads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from community.api import ERRORS
from community.core import uploads
from community.core.auth import CurrentUser, OptionalUser
from community.core.db import SessionDep
from community.core.errors import BadRequest
from community.core.i18n import gettext as _
from community.core.ratelimit import limited
from community.core.schemas import ErrorOut
from community.core.workspace_models import Upload

router = APIRouter(include_in_schema=False)
# Where images are sent: the body size limit is the image's there (community/app.py).
UPLOAD_PATHS = ("/uploads", "/api/v1/uploads")
api = APIRouter(prefix="/api/v1", responses=ERRORS)  # type: ignore[arg-type]

FormText = Annotated[str, Form()]
FilePart = Annotated[UploadFile | None, File(description="A PNG, JPEG, GIF or WebP image.")]

# Public pictures never change under their key: kept a year. A visible post's: by the browser
# only, briefly (the post may be hidden). Held or unattached ones: not kept at all.
_CACHE_CONTROL = {
    uploads.Audience.PUBLIC: "public, max-age=31536000, immutable",
    uploads.Audience.EVERYONE_NOW: "private, max-age=300",
    uploads.Audience.RESTRICTED: "private, no-store",
}


class UploadOut(BaseModel):
    key: str
    url: str
    markdown: str  # what an editor inserts: ![name](/uploads/<key>)
    content_type: str
    width: int
    height: int


def _out(upload: Upload) -> UploadOut:
    return UploadOut(
        key=upload.key,
        url=uploads.url_of(upload),
        markdown=uploads.markdown_of(upload),
        content_type=upload.content_type,
        width=upload.width,
        height=upload.height,
    )


def _accept(
    request: Request, db: SessionDep, user: CurrentUser, file: UploadFile | None, purpose: str,
    brand: str,
) -> UploadOut:  # fmt: skip
    if file is None or isinstance(file, str):
        raise BadRequest(_("Choose an image to upload."), code="no_file")
    settings = request.app.state.settings
    # One byte past the limit is enough to know it is too much.
    data = file.file.read(settings.uploads_max_bytes + 1)
    upload = uploads.upload_from_editor(
        db, settings, user, data=data, filename=file.filename or "", purpose=purpose,
        brand_slug=brand.strip(),
    )  # fmt: skip
    db.commit()
    return _out(upload)


@router.post(
    "/uploads",
    name="upload_image",
    status_code=status.HTTP_201_CREATED,
    dependencies=[limited("upload")],
)
def upload_image(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    file: FilePart = None,
    purpose: FormText = "post",
    brand: FormText = "",
) -> JSONResponse:
    """From an editor (static/js/uploads.js): the CSRF token in X-CSRF-Token, JSON back."""
    out = _accept(request, db, user, file, purpose, brand)
    return JSONResponse(out.model_dump(), status_code=status.HTTP_201_CREATED)


@api.post(
    "/uploads",
    response_model=UploadOut,
    status_code=status.HTTP_201_CREATED,
    tags=["uploads"],
    dependencies=[limited("upload")],
    responses={
        413: {"model": ErrorOut, "description": "Too many bytes or pixels."},
        415: {"model": ErrorOut, "description": "Not a PNG, JPEG, GIF or WebP image."},
    },
)
def api_upload(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    file: FilePart = None,
    purpose: FormText = "post",
    brand: FormText = "",
) -> UploadOut:
    """Upload a picture for a post (`purpose=post`) or a KB article (`purpose=article` with
    `brand`, the brand's slug; curators only). Put the answer's `markdown` in the post's body:
    saving the post attaches the picture, which is then seen by exactly those who see the post
    (until then only by its uploader and staff). The image is re-encoded: metadata is removed
    and large pictures are scaled down."""
    return _accept(request, db, user, file, purpose, brand)


@router.get("/uploads/{key}", name="upload")
def serve_upload(request: Request, db: SessionDep, user: OptionalUser, key: str) -> Response:
    upload, seen_by = uploads.access_upload(db, user, key)
    headers = {
        "content-disposition": f'inline; filename="{uploads.download_name(upload)}"',
        "x-content-type-options": "nosniff",
        # Opened on its own, an image is a document: it may load nothing and run nothing.
        "content-security-policy": "default-src 'none'; sandbox",
        "cache-control": _CACHE_CONTROL[seen_by],
        "etag": f'"{upload.sha256}"',
    }
    storage, content_type = upload.storage, upload.content_type
    db.close()  # done with the database: its connection back to the pool before the reading
    if headers["etag"] in request.headers.get("if-none-match", ""):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    data = uploads.read_stored(request.app.state.settings, storage, key)
    return Response(content=data, media_type=content_type, headers=headers)
