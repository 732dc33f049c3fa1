"""Admins' moderation settings per brand: blocked words and patterns (enforced or log-only,
with what they caught), the flag weight that hides a post, and the code of conduct."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from community.core import service as community_service
from community.core.auth import Admin, BrandAdmin, client_ip
from community.core.db import SessionDep
from community.core.i18n import gettext as _
from community.core.web import flash_redirect, render
from moderation import filters, queue, trust

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]


@router.get(
    "/admin/brands/{brand_slug}/moderation", response_class=HTMLResponse, name="admin_moderation"
)
def settings_page(request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    report = filters.pattern_report(db, brand)
    patterns = report.patterns
    return render(
        request,
        "moderation/admin.html",
        {
            "brand": brand,
            "patterns": patterns,
            # Stored before patterns were checked on save: say why they never match.
            "problems": {p.id: filters.regex_problem(p.pattern) for p in patterns if p.is_regex},
            "hits": report.hits,
            "recent": report.recent_logged,
            "errors": {},
            "thresholds": trust.thresholds(brand),
            "threshold_keys": trust.THRESHOLD_KEYS,
        },
    )


@router.post("/admin/brands/{brand_slug}/moderation", response_class=HTMLResponse)
def save_settings(
    request: Request,
    db: SessionDep,
    user: BrandAdmin,
    brand_slug: str,
    flag_hide_weight: FormText = "",
    code_of_conduct: FormText = "",
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    queue.save_moderation_settings(
        db, user, brand, flag_hide_weight=flag_hide_weight, code_of_conduct=code_of_conduct,
        ip=client_ip(request),
    )  # fmt: skip
    db.commit()
    return flash_redirect(request, f"/admin/brands/{brand.slug}/moderation", _("Saved."))


@router.post("/admin/brands/{brand_slug}/trust", name="admin_trust")
def save_trust_thresholds(
    request: Request,
    db: SessionDep,
    user: BrandAdmin,
    brand_slug: str,
    days_visited: FormList = [],  # noqa: B006 - one value per level, FastAPI's form lists
    threads_read: FormList = [],  # noqa: B006
    posts: FormList = [],  # noqa: B006
    upvotes: FormList = [],  # noqa: B006
    accepted: FormList = [],  # noqa: B006
    account_days: FormList = [],  # noqa: B006
    max_flags_upheld: FormList = [],  # noqa: B006
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    values = {
        "days_visited": days_visited,
        "threads_read": threads_read,
        "posts": posts,
        "upvotes": upvotes,
        "accepted": accepted,
        "account_days": account_days,
        "max_flags_upheld": max_flags_upheld,
    }
    trust.save_thresholds(db, user, brand, values, ip=client_ip(request))
    db.commit()
    return flash_redirect(request, f"/admin/brands/{brand.slug}/moderation", _("Saved."))


@router.post("/admin/brands/{brand_slug}/patterns", name="admin_pattern_add")
def add_pattern(
    request: Request,
    db: SessionDep,
    user: BrandAdmin,
    brand_slug: str,
    pattern: FormText = "",
    is_regex: FormText = "",
    mode: FormText = "enforce",
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    filters.add_pattern(
        db, user, brand, pattern, is_regex=is_regex == "1", mode=mode, ip=client_ip(request)
    )
    db.commit()
    return flash_redirect(request, f"/admin/brands/{brand.slug}/moderation", _("Filter added."))


@router.post("/admin/patterns/{pattern_id}/{action}", name="admin_pattern_change")
def change_pattern(
    request: Request, db: SessionDep, user: Admin, pattern_id: int, action: str
) -> Response:
    brand_id = filters.change_pattern(db, user, pattern_id, action, ip=client_ip(request))
    slug = community_service.get_brand_by_id(db, brand_id).slug
    db.commit()
    return flash_redirect(request, f"/admin/brands/{slug}/moderation", _("Saved."))
