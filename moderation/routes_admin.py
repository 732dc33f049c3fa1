"""Admins' moderation settings per brand: blocked words and patterns (enforced or log-only,
with what they caught), the flag weight that hides a post, and the code of conduct."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from community.core import service as community_service
from community.core.audit import record_audit
from community.core.auth import Admin, client_ip
from community.core.db import SessionDep
from community.core.errors import FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.web import flash_redirect, render
from moderation import filters, trust
from moderation.models import BlockedPattern, FilterHit, FilterMode

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]


@router.get(
    "/admin/brands/{brand_slug}/moderation", response_class=HTMLResponse, name="admin_moderation"
)
def settings_page(request: Request, db: SessionDep, user: Admin, brand_slug: str) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    patterns = list(
        db.scalars(
            select(BlockedPattern)
            .where(BlockedPattern.brand_id == brand.id)
            .order_by(BlockedPattern.id)
        )
    )
    hits = dict(
        db.execute(
            select(FilterHit.pattern_id, func.count())
            .where(FilterHit.pattern_id.in_([p.id for p in patterns]))
            .group_by(FilterHit.pattern_id)
        ).all()
    )
    recent = list(
        db.scalars(
            select(FilterHit)
            .where(
                FilterHit.pattern_id.in_([p.id for p in patterns]), FilterHit.enforced.is_(False)
            )
            .order_by(FilterHit.id.desc())
            .limit(20)
        )
    )
    return render(
        request,
        "moderation/admin.html",
        {
            "brand": brand,
            "patterns": patterns,
            # Stored before patterns were checked on save: say why they never match.
            "problems": {p.id: filters.regex_problem(p.pattern) for p in patterns if p.is_regex},
            "hits": hits,
            "recent": recent,
            "errors": {},
            "thresholds": trust.thresholds(brand),
            "threshold_keys": trust.THRESHOLD_KEYS,
        },
    )


@router.post("/admin/brands/{brand_slug}/moderation", response_class=HTMLResponse)
def save_settings(
    request: Request,
    db: SessionDep,
    user: Admin,
    brand_slug: str,
    flag_hide_weight: FormText = "",
    code_of_conduct: FormText = "",
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    try:
        weight = float(flag_hide_weight)
    except ValueError as exc:
        raise FormErrors({"flag_hide_weight": _("Enter a number.")}) from exc
    if not 0.5 <= weight <= 100:
        raise FormErrors(
            {
                "flag_hide_weight": _("Enter a number from %(low)s to %(high)s.")
                % {"low": "0.5", "high": "100"}
            }
        )
    before = {"flag_hide_weight": brand.flag_hide_weight}
    brand.flag_hide_weight = weight
    brand.code_of_conduct = code_of_conduct[:20_000]
    record_audit(
        db,
        actor=user,
        action="brand.moderation_settings",
        target_type="brand",
        target_id=brand.id,
        before=before,
        after={"flag_hide_weight": weight},
        ip=client_ip(request),
    )
    db.commit()
    return flash_redirect(request, f"/admin/brands/{brand.slug}/moderation", _("Saved."))


@router.post("/admin/brands/{brand_slug}/trust", name="admin_trust")
def save_trust_thresholds(
    request: Request,
    db: SessionDep,
    user: Admin,
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
    user: Admin,
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
    found = db.get(BlockedPattern, pattern_id)
    if found is None or action not in ("enforce", "log_only", "delete"):
        raise NotFound()
    brand = found.brand_id
    slug = community_service.get_brand_by_id(db, brand).slug
    if action == "delete":
        db.delete(found)
    else:
        found.mode = FilterMode(action)
    record_audit(
        db, actor=user, action=f"filter.{action}", target_type="brand", target_id=brand,
        after={"pattern": found.pattern}, ip=client_ip(request),
    )  # fmt: skip
    db.commit()
    return flash_redirect(request, f"/admin/brands/{slug}/moderation", _("Saved."))
