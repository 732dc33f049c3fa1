"""The admins' brand pages: the brand list, a new brand, and a brand's page (its settings, its
forums with create/rename/describe/access/order/archive, and moving threads between forums).

Thin: parse the form, call community.brand_admin / community.forum_admin, commit once, then
redirect with a flash message (a plain form) or render the changed block (htmx). A form with
mistakes is shown again with each field's message and a 4xx, and nothing is saved.

Moving threads in bulk lives on the brand's page: the admin picks the forum to move from, ticks
threads in its listing (newest first, every state, 50 a page) and picks where they go. That is
how an admin reorganising forums works (one forum's threads at a time), and it needs nothing of
the public forum page, whose thread list is shared by every reader who is not staff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from community import brand_admin, forum_admin, thread_reading
from community.brand_schemas import BrandIn, BrandPatch, ForumIn, ForumPatch, ThreadMoveIn
from community.core.auth import Admin, CurrentUser, StaffSecondFactor, client_ip
from community.core.db import SessionDep
from community.core.errors import FormErrors, PermissionDenied
from community.core.forms import parse_form, some_record_ids
from community.core.i18n import SUPPORTED_LOCALES, language_name, ngettext
from community.core.i18n import gettext as _
from community.core.models import Brand, Forum, ForumAccess, ModerationPolicy, User
from community.core.policy import is_admin
from community.core.web import flash_redirect, is_htmx, render

router = APIRouter(dependencies=[StaffSecondFactor], include_in_schema=False)
FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
MOVE_PAGE = 50


def _choices() -> dict[str, Any]:
    return {
        "locales": [(code, language_name(code)) for code in SUPPORTED_LOCALES],
        "accesses": [access.value for access in ForumAccess],
        "policies": [policy.value for policy in ModerationPolicy],
    }


def _brand_url(brand: Brand) -> str:
    return f"/admin/brands/{brand.slug}"


def _forget_site_brand(request: Request) -> None:
    """The brands are kept a few seconds (community.core.hosts); a change must show now."""
    request.app.state.site_brand = None


# --- the brand list and a new brand ------------------------------------------------------------


@router.get("/admin/brands", response_class=HTMLResponse, name="admin_brands")
def brands_page(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    brands = brand_admin.managed_brands(db, user)
    if not brands and not is_admin(user):
        raise PermissionDenied()
    return render(request, "admin/brands.html", {"brands": brands, "site_admin": is_admin(user)})


def _new_page(
    request: Request, typed: dict[str, str], errors: dict[str, str], status_code: int = 200
) -> Response:
    return render(
        request,
        "admin/brand_new.html",
        {"form": typed, "errors": errors} | _choices(),
        status_code=status_code,
    )


@router.get("/admin/brands/new", response_class=HTMLResponse, name="admin_brand_new")
def new_brand_page(request: Request, user: Admin) -> Response:
    return _new_page(request, {"default_locale": "en"}, {})


@router.post("/admin/brands/new", response_class=HTMLResponse, name="admin_brand_create")
def create_brand(
    request: Request,
    db: SessionDep,
    user: Admin,
    slug: FormText = "",
    name: FormText = "",
    default_locale: FormText = "en",
    description: FormText = "",
    contact_email: FormText = "",
) -> Response:
    typed = {
        "slug": slug.strip(), "name": name, "default_locale": default_locale,
        "description": description, "contact_email": contact_email,
    }  # fmt: skip
    try:
        data = parse_form(BrandIn, typed)
        brand = brand_admin.do_create_brand(db, user, data, ip=client_ip(request))
    except FormErrors as exc:
        db.rollback()
        return _new_page(request, typed, exc.errors, exc.status_code)
    db.commit()
    message = _("Brand %(name)s created. Add its forums below.") % {"name": brand.name}
    return flash_redirect(request, _brand_url(brand), message)


# --- a brand's page ----------------------------------------------------------------------------


@dataclass
class Shown:
    """What the brand page shows besides the brand: typed values and messages of a form sent
    with mistakes, and the forum whose threads the move section lists."""

    settings: dict[str, Any] | None = None
    settings_errors: dict[str, str] = field(default_factory=dict)
    new_forum: dict[str, str] = field(default_factory=dict)
    forum_errors: dict[str, str] = field(default_factory=dict)
    move_from: str = ""
    cursor: str = ""
    move_errors: dict[str, str] = field(default_factory=dict)
    status_code: int = 200


def _move_listing(db: Session, forums: list[Forum], shown: Shown) -> Any:
    source = next((forum for forum in forums if forum.slug == shown.move_from), None)
    if source is None:
        return None
    query = thread_reading.ThreadQuery(
        sort="newest", include_removed=True, cursor=shown.cursor[:400] or None, limit=MOVE_PAGE
    )
    return thread_reading.list_threads(db, source, query)


def _settings_of(brand: Brand) -> dict[str, Any]:
    return {name: getattr(brand, name) for name in brand_admin.BRAND_FIELDS}


def _brand_page(
    request: Request,
    db: Session,
    user: User,
    brand: Brand,
    shown: Shown,
    *,
    block: str | None = None,
) -> Response:
    forums = forum_admin.brand_forums(db, brand)
    context = {
        "brand": brand,
        "forums": forums,
        "open_forums": [forum for forum in forums if forum.archived_at is None],
        "site_admin": is_admin(user),
        "form": shown.settings or _settings_of(brand),
        "errors": shown.settings_errors,
        "new_forum": shown.new_forum or {"access": "public", "moderation_policy": "open"},
        "forum_errors": shown.forum_errors,
        "move_from": shown.move_from,
        "listing": _move_listing(db, forums, shown),
        "move_errors": shown.move_errors,
    }
    return render(
        request,
        "admin/brand.html",
        context | _choices(),
        status_code=shown.status_code,
        block=block,
    )


@router.get("/admin/brands/{brand_slug}", response_class=HTMLResponse, name="admin_brand")
def brand_page(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    brand_slug: str,
    move_from: str = "",
    cursor: str = "",
) -> Response:
    """htmx asks for the move section alone when the admin picks the forum to move from."""
    brand = brand_admin.access_managed_brand(db, user, brand_slug)
    shown = Shown(move_from=move_from[:80], cursor=cursor)
    return _brand_page(request, db, user, brand, shown, block="move_threads")


@router.post("/admin/brands/{brand_slug}", response_class=HTMLResponse, name="admin_brand_save")
def save_brand(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    brand_slug: str,
    name: FormText = "",
    default_locale: FormText = "",
    description: FormText = "",
    code_of_conduct: FormText = "",
    contact_email: FormText = "",
    solution_threshold: FormText = "",
    article_threshold: FormText = "",
    review_period_days: FormText = "",
) -> Response:
    brand = brand_admin.access_managed_brand(db, user, brand_slug)
    typed = {
        "name": name, "default_locale": default_locale, "description": description,
        "code_of_conduct": code_of_conduct, "contact_email": contact_email,
        "solution_threshold": solution_threshold, "article_threshold": article_threshold,
        "review_period_days": review_period_days,
    }  # fmt: skip
    try:
        data = parse_form(BrandPatch, typed)
        changed = brand_admin.do_update_brand(db, user, brand, data, ip=client_ip(request))
    except FormErrors as exc:
        db.rollback()
        brand = brand_admin.access_managed_brand(db, user, brand_slug)
        shown = Shown(settings=typed, settings_errors=exc.errors, status_code=exc.status_code)
        return _brand_page(request, db, user, brand, shown)
    db.commit()
    _forget_site_brand(request)  # its name and contact address are in every page's header
    message = _("Brand settings saved.") if changed else _("Nothing changed.")
    return flash_redirect(request, _brand_url(brand), message)


def _set_brand_archived(
    request: Request, db: Session, user: User, brand_slug: str, archived: bool
) -> Response:
    brand = brand_admin.access_managed_brand(db, user, brand_slug)
    brand_admin.do_set_brand_archived(db, user, brand, archived, ip=client_ip(request))
    db.commit()
    _forget_site_brand(request)
    if archived:
        message = _("%(name)s is archived: its pages are gone for everyone but site admins.")
    else:
        message = _("%(name)s is back: its pages are public again.")
    return flash_redirect(request, _brand_url(brand), message % {"name": brand.name})


@router.post("/admin/brands/{brand_slug}/archive", name="admin_brand_archive")
def archive_brand(request: Request, db: SessionDep, user: Admin, brand_slug: str) -> Response:
    return _set_brand_archived(request, db, user, brand_slug, True)


@router.post("/admin/brands/{brand_slug}/unarchive", name="admin_brand_unarchive")
def unarchive_brand(request: Request, db: SessionDep, user: Admin, brand_slug: str) -> Response:
    return _set_brand_archived(request, db, user, brand_slug, False)


# --- forums ------------------------------------------------------------------------------------


@router.post(
    "/admin/brands/{brand_slug}/forums", response_class=HTMLResponse, name="admin_forum_create"
)
def create_forum(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    brand_slug: str,
    slug: FormText = "",
    name: FormText = "",
    description: FormText = "",
    access: FormText = "public",
    moderation_policy: FormText = "open",
) -> Response:
    brand = brand_admin.access_managed_brand(db, user, brand_slug)
    typed = {
        "slug": slug.strip(), "name": name, "description": description, "access": access,
        "moderation_policy": moderation_policy,
    }  # fmt: skip
    try:
        data = parse_form(ForumIn, typed)
        forum = forum_admin.do_create_forum(db, user, brand, data, ip=client_ip(request))
    except FormErrors as exc:
        db.rollback()
        brand = brand_admin.access_managed_brand(db, user, brand_slug)
        shown = Shown(new_forum=typed, forum_errors=exc.errors, status_code=exc.status_code)
        return _brand_page(request, db, user, brand, shown)
    db.commit()
    message = _("Forum %(name)s created.") % {"name": forum.name}
    return flash_redirect(request, _brand_url(brand) + "#forums", message)


def _after_forum_change(
    request: Request, db: Session, user: User, brand: Brand, message: str
) -> Response:
    """The forums section again (htmx, with the message read out), else back to the page."""
    if is_htmx(request):
        forums = forum_admin.brand_forums(db, brand)
        context = {"brand": brand, "forums": forums, "forum_message": message}
        return render(request, "admin/brand.html", context | _choices(), block="forums")
    return flash_redirect(request, _brand_url(brand) + "#forums", message)


@router.post(
    "/admin/brands/{brand_slug}/forums/{forum_slug}",
    response_class=HTMLResponse,
    name="admin_forum_save",
)
def save_forum(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    brand_slug: str,
    forum_slug: str,
    name: FormText = "",
    description: FormText = "",
    access: FormText = "",
    moderation_policy: FormText = "",
) -> Response:
    brand = brand_admin.access_managed_brand(db, user, brand_slug)
    forum = forum_admin.access_managed_forum(db, user, brand, forum_slug)
    typed = {"name": name, "description": description}
    # A choice left out (an older form) stays as it is; a wrong one is a 422 page.
    typed |= {
        key: value
        for key, value in (("access", access), ("moderation_policy", moderation_policy))
        if value
    }
    data = parse_form(ForumPatch, typed)
    changed = forum_admin.do_update_forum(db, user, forum, data, ip=client_ip(request))
    db.commit()
    message = _("Forum %(name)s saved.") if changed else _("Nothing changed in %(name)s.")
    return _after_forum_change(request, db, user, brand, message % {"name": forum.name})


@router.post(
    "/admin/brands/{brand_slug}/forums/{forum_slug}/move",
    response_class=HTMLResponse,
    name="admin_forum_move",
)
def move_forum(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    brand_slug: str,
    forum_slug: str,
    direction: FormText = "",
) -> Response:
    """Up or down one place in the brand's list."""
    brand = brand_admin.access_managed_brand(db, user, brand_slug)
    forum = forum_admin.access_managed_forum(db, user, brand, forum_slug)
    if direction not in ("up", "down"):
        raise FormErrors({"direction": _("Choose one of the offered options.")})
    open_forums = [
        other.id for other in forum_admin.brand_forums(db, brand) if not other.archived_at
    ]
    place = open_forums.index(forum.id) if forum.id in open_forums else 0
    target = max(0, place - 1) if direction == "up" else place + 1
    forum_admin.do_reorder_forum(db, user, forum, target, ip=client_ip(request))
    db.commit()
    moved = _("%(name)s moved up.") if direction == "up" else _("%(name)s moved down.")
    message = moved % {"name": forum.name}
    return _after_forum_change(request, db, user, brand, message)


def _set_forum_archived(
    request: Request, db: Session, user: User, slugs: tuple[str, str], archived: bool
) -> Response:
    brand = brand_admin.access_managed_brand(db, user, slugs[0])
    forum = forum_admin.access_managed_forum(db, user, brand, slugs[1])
    forum_admin.do_set_forum_archived(db, user, forum, archived, ip=client_ip(request))
    db.commit()
    if archived:
        message = _("%(name)s is archived: it takes no new threads; its threads stay readable.")
    else:
        message = _("%(name)s is back in the forum list.")
    return _after_forum_change(request, db, user, brand, message % {"name": forum.name})


@router.post(
    "/admin/brands/{brand_slug}/forums/{forum_slug}/archive",
    response_class=HTMLResponse,
    name="admin_forum_archive",
)
def archive_forum(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str, forum_slug: str
) -> Response:
    return _set_forum_archived(request, db, user, (brand_slug, forum_slug), True)


@router.post(
    "/admin/brands/{brand_slug}/forums/{forum_slug}/unarchive",
    response_class=HTMLResponse,
    name="admin_forum_unarchive",
)
def unarchive_forum(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str, forum_slug: str
) -> Response:
    return _set_forum_archived(request, db, user, (brand_slug, forum_slug), False)


# --- moving threads ----------------------------------------------------------------------------


@router.post(
    "/admin/brands/{brand_slug}/threads/move",
    response_class=HTMLResponse,
    name="admin_threads_move",
)
def move_threads(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    brand_slug: str,
    thread_ids: FormList = [],  # noqa: B006 - one value per ticked box, FastAPI's form lists
    forum: FormText = "",
    move_from: FormText = "",
) -> Response:
    brand = brand_admin.access_managed_brand(db, user, brand_slug)
    try:
        ids = some_record_ids(thread_ids)
        if not ids:
            raise FormErrors({"thread_ids": _("Tick the threads to move.")})
        data = parse_form(ThreadMoveIn, {"thread_ids": ids, "forum": forum})
        moved = forum_admin.do_move_threads(db, user, brand, data, ip=client_ip(request))
    except FormErrors as exc:
        db.rollback()
        brand = brand_admin.access_managed_brand(db, user, brand_slug)
        shown = Shown(move_from=move_from[:80], move_errors=exc.errors, status_code=exc.status_code)
        return _brand_page(request, db, user, brand, shown)
    db.commit()
    message = ngettext("%(num)d thread moved.", "%(num)d threads moved.", moved) % {"num": moved}
    back = f"{_brand_url(brand)}?move_from={quote(move_from[:80], safe='')}#move-threads"
    return flash_redirect(request, back, message)
