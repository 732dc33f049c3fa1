"""Pages and htmx fragments for members: the avatar and bio on the account page, the generated
avatar's address, following forums and tags (a toggle like a thread's watch button), a tag's
page, and the forums' and tags' Atom feeds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from community.core import service
from community.core.auth import CurrentUser, OptionalUser
from community.core.brand_look import brand_base_url
from community.core.db import SessionDep
from community.core.errors import BadRequest, FormErrors
from community.core.i18n import gettext as _
from community.core.models import Forum, Tag, User
from community.core.ratelimit import limited
from community.core.uploads import UnsupportedImage, UploadTooLarge
from community.core.web import flash_redirect, is_htmx, render
from community.members import avatars, feeds, follows
from community.routes import _account_context as account_context

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form()]
# Read no more than this of an upload: the uploads module refuses what is too big anyway, and
# a body is never held whole in memory past it.
AVATAR_READ_LIMIT = 10 * 1024 * 1024 + 1
# The drawing changes only with the display name: a day in caches, revalidated by ETag.
AVATAR_CACHE = "public, max-age=86400"
FEED_CACHE = "public, max-age=300"


def _account_error(
    request: Request,
    db: SessionDep,
    user: User,
    errors: dict[str, str],
    *,
    status_code: int = 422,
    form: dict[str, str] | None = None,
) -> Response:
    db.rollback()
    return render(
        request,
        "community/account.html",
        account_context(db, user) | {"errors": errors, "form": form or {}},
        status_code=status_code,
    )


# --- avatar and bio --------------------------------------------------------------------------


@router.get("/u/{username}/avatar.svg", name="generated_avatar")
def generated_avatar(request: Request, db: SessionDep, username: str) -> Response:
    user = service.get_user_by_username(db, username)
    body = avatars.standalone_svg(user.username, user.display_name)
    etag = avatars.drawing_etag(body)
    headers = {
        "cache-control": AVATAR_CACHE,
        "etag": etag,
        # A document of its own: nothing in it may run or load anything.
        "content-security-policy": "default-src 'none'",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="image/svg+xml", headers=headers)


@router.post(
    "/account/avatar",
    response_class=HTMLResponse,
    name="account_avatar",
    dependencies=[limited("post")],
)
def account_avatar(
    request: Request, db: SessionDep, user: CurrentUser, avatar: Annotated[UploadFile, File()]
) -> Response:
    # A plain `def`: decoding and re-encoding a picture (up to UPLOADS_MAX_PIXELS) and the
    # database work take their time in the thread pool, never on the event loop every other
    # request of this process waits on.
    data = avatar.file.read(AVATAR_READ_LIMIT)
    try:
        avatars.upload_avatar(
            db,
            request.app.state.settings,
            user,
            data=data,
            filename=(avatar.filename or "")[:200],
        )
    except (BadRequest, UploadTooLarge, UnsupportedImage) as exc:
        # Too big, not a picture (an SVG, a polyglot...), empty: said beside the field.
        message = exc.message or _("This file cannot be used as a picture.")
        return _account_error(request, db, user, {"avatar": message}, status_code=exc.status_code)
    db.commit()
    return flash_redirect(request, "/account", _("Your picture is saved."))


@router.post("/account/avatar/remove", name="account_avatar_remove")
def account_avatar_remove(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    avatars.remove_avatar(db, request.app.state.settings, user)
    db.commit()
    return flash_redirect(request, "/account", _("Your picture is removed."))


@router.post("/account/bio", response_class=HTMLResponse, name="account_bio")
def account_bio(
    request: Request, db: SessionDep, user: CurrentUser, bio: FormText = ""
) -> Response:
    try:
        avatars.set_bio(user, bio)
    except FormErrors as exc:
        return _account_error(
            request, db, user, exc.errors, form={"bio": bio[: avatars.BIO_MAX * 2]}
        )
    db.commit()
    return flash_redirect(request, "/account", _("Your bio is saved."))


# --- following -------------------------------------------------------------------------------


def forum_follow_context(forum: Forum, following: bool) -> dict[str, object]:
    return {"follow_target": "forum", "follow_id": forum.id, "following": following}


def tag_follow_context(brand_slug: str, tag: Tag, following: bool) -> dict[str, object]:
    return {
        "follow_target": "tag",
        "follow_brand": brand_slug,
        "follow_tag": tag.name,
        "following": following,
    }


@router.post("/forums/{forum_id}/follow", response_class=HTMLResponse, name="follow_forum")
def follow_forum(
    request: Request, db: SessionDep, user: CurrentUser, forum_id: int, follow: FormText = "1"
) -> Response:
    forum = follows.access_forum(db, user, forum_id)
    if follow == "0":
        follows.unfollow_forum(db, user, forum)
    else:
        follows.follow_forum(db, user, forum)
    db.commit()
    if is_htmx(request):
        context = forum_follow_context(forum, follow != "0")
        return render(request, "community/_follow.html", context)
    return RedirectResponse(f"/b/{forum.brand.slug}/{forum.slug}", status_code=303)


@router.post("/b/{brand_slug}/tags/{tag}/follow", response_class=HTMLResponse, name="follow_tag")
def follow_tag(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    brand_slug: str,
    tag: str,
    follow: FormText = "1",
) -> Response:
    found = follows.access_tag(db, user, brand_slug, tag)
    if follow == "0":
        follows.unfollow_tag(db, user, found)
    else:
        follows.follow_tag(db, user, found)
    db.commit()
    if is_htmx(request):
        context = tag_follow_context(brand_slug, found, follow != "0")
        return render(request, "community/_follow.html", context)
    return RedirectResponse(feeds.tag_path(brand_slug, found.name), status_code=303)


# --- a tag's page and the feeds --------------------------------------------------------------


@router.get("/b/{brand_slug}/tags/{tag}", response_class=HTMLResponse, name="tag_page")
def tag_page(
    request: Request, db: SessionDep, brand_slug: str, tag: str, viewer: OptionalUser = None
) -> Response:
    brand, found = feeds.public_tag(db, brand_slug, tag)
    following = follows.follows_tag(db, viewer.id if viewer else None, found.id)
    return render(
        request,
        "community/tag.html",
        {
            "brand": brand,
            "tag": found,
            "threads": feeds.tag_threads(db, found),
            **tag_follow_context(brand.slug, found, following),
        },
    )


def _atom(request: Request, feed: feeds.Feed) -> Response:
    etag = feed.etag
    headers = {
        "etag": etag,
        "last-modified": feeds.http_date(feed.updated),
        "cache-control": FEED_CACHE,
    }
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    body = feeds.render(feed, brand_base_url(request.app.state.settings.base_url, feed.brand_host))
    return Response(body, media_type=feeds.MEDIA_TYPE, headers=headers)


@router.get("/b/{brand_slug}/tags/{tag}/feed.atom", name="tag_feed")
def tag_feed(request: Request, db: SessionDep, brand_slug: str, tag: str) -> Response:
    return _atom(request, feeds.tag_feed(db, brand_slug, tag))


@router.get("/b/{brand_slug}/{forum_slug}/feed.atom", name="forum_feed")
def forum_feed(request: Request, db: SessionDep, brand_slug: str, forum_slug: str) -> Response:
    return _atom(request, feeds.forum_feed(db, brand_slug, forum_slug))
