"""JSON API for running brands and their forums: create, change, archive and bring back brands
(site admins create and archive; a brand's admins change it), its forums, and moving threads
between them in bulk. The same services and rules as the admin pages (community.brand_admin,
community.forum_admin): 403 for someone who may not, 404 for what does not exist (an archived
brand, for anyone but a site admin), 409 for a slug in use, 422 naming the field that is wrong.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from community import brand_admin, forum_admin
from community.brand_schemas import (
    BrandAdminOut,
    BrandIn,
    BrandPatch,
    ForumAdminOut,
    ForumIn,
    ForumPatch,
    ThreadMoveIn,
    ThreadMoveOut,
)
from community.core.auth import Admin, CurrentUser, client_ip
from community.core.db import SessionDep
from community.core.models import Brand, Forum
from community.core.schemas import ErrorOut

# Every answer but success, as the admins' calls can give them (documented in the schema).
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not signed in (no session or API token)."},
    403: {"model": ErrorOut, "description": "Signed in, but not allowed (or no CSRF token)."},
    404: {"model": ErrorOut, "description": "No such brand, forum or thread (or archived)."},
    409: {"model": ErrorOut, "description": "The slug is already in use."},
    422: {"model": ErrorOut, "description": "A field is not valid; `details` names it."},
}

router = APIRouter(prefix="/api/v1", tags=["brand administration"], responses=ERRORS)


def _forget_site_brand(request: Request) -> None:
    request.app.state.site_brand = None  # the header's cached brand (community.core.web)


@router.post("/brands", response_model=BrandAdminOut, status_code=status.HTTP_201_CREATED)
def api_create_brand(request: Request, db: SessionDep, user: Admin, body: BrandIn) -> Brand:
    """Create a brand (site admins). It has no forum until its admins add them."""
    brand = brand_admin.do_create_brand(db, user, body, ip=client_ip(request))
    db.commit()
    return brand


@router.patch("/brands/{brand_slug}", response_model=BrandAdminOut)
def api_update_brand(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str, body: BrandPatch
) -> Brand:
    """Change a brand's settings (its admins); fields left out or null stay as they are."""
    brand = brand_admin.access_managed_brand(db, user, brand_slug)
    brand_admin.do_update_brand(db, user, brand, body, ip=client_ip(request))
    db.commit()
    _forget_site_brand(request)
    return brand


def _set_archived(
    request: Request, db: SessionDep, user: Admin, slug: str, archived: bool
) -> Brand:
    brand = brand_admin.access_managed_brand(db, user, slug)
    brand_admin.do_set_brand_archived(db, user, brand, archived, ip=client_ip(request))
    db.commit()
    _forget_site_brand(request)
    return brand


@router.post("/brands/{brand_slug}/archive", response_model=BrandAdminOut)
def api_archive_brand(request: Request, db: SessionDep, user: Admin, brand_slug: str) -> Brand:
    """Archive a brand (site admins): its pages, content and API answers are 404 for everyone
    else; nothing is deleted. Archiving an archived brand changes nothing."""
    return _set_archived(request, db, user, brand_slug, True)


@router.post("/brands/{brand_slug}/unarchive", response_model=BrandAdminOut)
def api_unarchive_brand(request: Request, db: SessionDep, user: Admin, brand_slug: str) -> Brand:
    """Bring an archived brand back, as it was (site admins)."""
    return _set_archived(request, db, user, brand_slug, False)


@router.post(
    "/brands/{brand_slug}/forums",
    response_model=ForumAdminOut,
    status_code=status.HTTP_201_CREATED,
)
def api_create_forum(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str, body: ForumIn
) -> Forum:
    """Add a forum, last in the brand's list (the brand's admins)."""
    brand = brand_admin.access_managed_brand(db, user, brand_slug)
    forum = forum_admin.do_create_forum(db, user, brand, body, ip=client_ip(request))
    db.commit()
    return forum


@router.patch("/brands/{brand_slug}/forums/{forum_slug}", response_model=ForumAdminOut)
def api_update_forum(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    brand_slug: str,
    forum_slug: str,
    body: ForumPatch,
) -> Forum:
    """Rename, describe, restrict (`access`), set the moderation policy or reorder
    (`position`, 0 first) a forum."""
    brand = brand_admin.access_managed_brand(db, user, brand_slug)
    forum = forum_admin.access_managed_forum(db, user, brand, forum_slug)
    forum_admin.do_update_forum(db, user, forum, body, ip=client_ip(request))
    db.commit()
    return forum


def _set_forum_archived(
    request: Request, db: SessionDep, user: CurrentUser, slugs: tuple[str, str], archived: bool
) -> Forum:
    brand = brand_admin.access_managed_brand(db, user, slugs[0])
    forum = forum_admin.access_managed_forum(db, user, brand, slugs[1])
    forum_admin.do_set_forum_archived(db, user, forum, archived, ip=client_ip(request))
    db.commit()
    return forum


@router.post("/brands/{brand_slug}/forums/{forum_slug}/archive", response_model=ForumAdminOut)
def api_archive_forum(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str, forum_slug: str
) -> Forum:
    """Archive a forum: it leaves the forum list and takes no new threads (asking there is a
    422); its threads stay readable at their addresses."""
    return _set_forum_archived(request, db, user, (brand_slug, forum_slug), True)


@router.post("/brands/{brand_slug}/forums/{forum_slug}/unarchive", response_model=ForumAdminOut)
def api_unarchive_forum(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str, forum_slug: str
) -> Forum:
    """Bring an archived forum back, last in the list."""
    return _set_forum_archived(request, db, user, (brand_slug, forum_slug), False)


@router.post("/brands/{brand_slug}/threads/move", response_model=ThreadMoveOut)
def api_move_threads(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str, body: ThreadMoveIn
) -> ThreadMoveOut:
    """Move threads of the brand (at most 500) into one of its open forums. All or nothing:
    an id that is not a thread of this brand, or a forum that is archived or not the brand's,
    is a 422 and nothing moves."""
    brand = brand_admin.access_managed_brand(db, user, brand_slug)
    moved = forum_admin.do_move_threads(db, user, brand, body, ip=client_ip(request))
    db.commit()
    return ThreadMoveOut(moved=moved, forum=body.forum)
