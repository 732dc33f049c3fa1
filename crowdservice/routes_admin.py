"""The admin's service-policy page: SLA targets, business hours, triage rules and expert
routing for a brand, with how escalations ended and how invited experts did lately."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from community.core import service as community_service
from community.core.auth import Admin, BrandAdmin, client_ip
from community.core.clock import utcnow
from community.core.db import SessionDep
from community.core.errors import FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.models import Brand
from community.core.web import flash_redirect, render
from crowdservice import escalation, experts, policies, rules_form, sla
from crowdservice.models import Priority

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
STATS_DAYS = 30


def _page(
    request: Request,
    db: SessionDep,
    brand: Brand,
    *,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    rows: list[rules_form.RuleRow] | None = None,
    status_code: int = 200,
) -> Response:
    policy = sla.policy_for(db, brand.id)
    since = utcnow() - timedelta(days=STATS_DAYS)
    targets = sla.targets_of(policy)
    return render(
        request,
        "crowdservice/admin_service.html",
        {
            "brand": brand,
            "policy": policy,
            "minutes": {
                priority.value: (
                    int(targets[priority].first_response.total_seconds() // 60),
                    int(targets[priority].resolution.total_seconds() // 60),
                )
                for priority in Priority
            },
            "hours": policy.business_hours or {},
            "rule_rows": rows or rules_form.rows_for(policies.rules_document(policy)),
            "rule_choices": {
                "types": rules_form.TYPES,
                "sentiments": rules_form.SENTIMENTS,
                "segments": rules_form.SEGMENTS,
                "outcomes": rules_form.OUTCOMES,
            },
            "using_default_rules": not policy.triage_rules,
            "outcomes": escalation.deflection_counts(db, brand.id, since),
            "expert_stats": experts.expert_stats(db, brand.id, since),
            "stats_days": STATS_DAYS,
            "errors": errors or {},
            "typed": typed or {},
        },
        status_code=status_code,
    )


@router.get("/admin/service", name="admin_service_default")
def service_default(request: Request, db: SessionDep, user: Admin) -> Response:
    brand = community_service.default_brand(db, request.app.state.settings.default_brand)
    if brand is None:
        raise NotFound()
    return RedirectResponse(f"/admin/brands/{brand.slug}/service", status_code=303)


@router.get("/admin/brands/{brand_slug}/service", response_class=HTMLResponse, name="admin_service")
def service_page(request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str) -> Response:
    return _page(request, db, community_service.get_brand(db, brand_slug))


@router.post("/admin/brands/{brand_slug}/service", response_class=HTMLResponse)
async def save_service(
    request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    form = await request.form()

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def values(name: str) -> list[str]:
        return [value for value in form.getlist(name) if isinstance(value, str)]

    rows: list[rules_form.RuleRow] | None = None
    try:
        sent = rules_form.policy_form(text, values)
        rows = sent.rules
        policies.save_policy(
            db, user, brand, targets=sent.targets, business_hours=sent.business_hours,
            rules=rows, expert_delay_factor=sent.expert_delay_factor,
            expert_daily_invitations=sent.expert_daily_invitations, ip=client_ip(request),
        )  # fmt: skip
    except FormErrors as exc:
        db.rollback()
        # Show what was typed (many rules must not be lost to one typo).
        typed = {key: value for key, value in form.items() if isinstance(value, str)}
        return _page(request, db, brand, errors=exc.errors, typed=typed, rows=rows, status_code=422)
    db.commit()
    return flash_redirect(request, f"/admin/brands/{brand.slug}/service", _("Saved."))


@router.get("/admin/brands/{brand_slug}/service/rules.json", name="admin_rules_export")
def export_rules(db: SessionDep, user: BrandAdmin, brand_slug: str) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    document = policies.rules_document(sla.policy_for(db, brand.id))
    return Response(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="triage-rules-{brand.slug}.json"'},
    )


@router.post(
    "/admin/brands/{brand_slug}/service/rules",
    response_class=HTMLResponse,
    name="admin_rules_import",
)
def import_rules(
    request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str, rules_json: FormText = ""
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    try:
        policies.save_rules(db, user, brand, rules_json, ip=client_ip(request))
    except FormErrors as exc:
        db.rollback()
        errors = {"rules_json": exc.errors.get("rules", _("These rules cannot be used."))}
        return _page(
            request, db, brand, errors=errors, typed={"rules_json": rules_json}, status_code=422
        )
    db.commit()
    return flash_redirect(
        request, f"/admin/brands/{brand.slug}/service#rules", _("The priority rules are imported.")
    )
