"""The brand's staff page (/admin/brands/<slug>/staff) and its API: site admins and the brand's
own admins grant and revoke moderator, agent and brand-admin roles in that brand."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from community import brand_staff
from community.api import ERRORS
from community.core import service as community_service
from community.core.auth import BrandAdmin, client_ip
from community.core.db import SessionDep
from community.core.errors import FormErrors
from community.core.i18n import gettext as _
from community.core.models import Brand
from community.core.web import flash_redirect, render
from community.core.workspace_models import BrandRole

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["brands"])  # type: ignore[arg-type]

FormText = Annotated[str, Form()]


def role_label(role: BrandRole) -> str:
    return {
        BrandRole.MODERATOR: _("Moderator"),
        BrandRole.AGENT: _("Support agent"),
        BrandRole.BRAND_ADMIN: _("Brand admin"),
    }[role]


def _page(
    request: Request,
    db: SessionDep,
    brand: Brand,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/brand_staff.html",
        {
            "brand": brand,
            "staff": brand_staff.brand_staff(db, brand),
            "roles": list(BrandRole),
            "role_label": role_label,
            "form": form or {},
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/admin/brands/{brand_slug}/staff", response_class=HTMLResponse, name="brand_staff")
def staff_page(request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str) -> Response:
    return _page(request, db, community_service.get_brand(db, brand_slug))


def _role(raw: str) -> BrandRole:
    if raw not in BrandRole._value2member_map_:
        raise FormErrors({"role": _("Choose one of the offered roles.")})
    return BrandRole(raw)


@router.post("/admin/brands/{brand_slug}/staff", response_class=HTMLResponse, name="staff_grant")
def grant_submit(
    request: Request,
    db: SessionDep,
    user: BrandAdmin,
    brand_slug: str,
    username: FormText = "",
    role: FormText = "",
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    try:
        chosen = _role(role)
        person = brand_staff.find_member(db, username)
        brand_staff.grant(db, user, brand, person, chosen, ip=client_ip(request))
    except FormErrors as exc:
        db.rollback()
        typed = {"username": username[:60], "role": role[:20]}
        return _page(request, db, brand, form=typed, errors=exc.errors, status_code=422)
    db.commit()
    message = _("%(name)s is now %(role)s of %(brand)s.") % {
        "name": person.display_name,
        "role": role_label(chosen).lower(),
        "brand": brand.name,
    }
    return flash_redirect(request, f"/admin/brands/{brand.slug}/staff", message)


@router.post(
    "/admin/brands/{brand_slug}/staff/{user_id}/{role}/revoke",
    response_class=HTMLResponse,
    name="staff_revoke",
)
def revoke_submit(
    request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str, user_id: int, role: str
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    person = brand_staff.staff_member(db, brand, user_id)
    chosen = _role(role)
    brand_staff.revoke(db, user, brand, person, chosen, ip=client_ip(request))
    db.commit()
    message = _("%(name)s is no longer %(role)s of %(brand)s.") % {
        "name": person.display_name,
        "role": role_label(chosen).lower(),
        "brand": brand.name,
    }
    return flash_redirect(request, f"/admin/brands/{brand.slug}/staff", message)


# --- JSON API ----------------------------------------------------------------------------------


class StaffGrantIn(BaseModel):
    username: str = Field(min_length=1, max_length=60)
    role: BrandRole


class StaffMemberOut(BaseModel):
    user_id: int
    username: str
    display_name: str
    roles: list[BrandRole]


def _out(member: brand_staff.StaffMember) -> StaffMemberOut:
    return StaffMemberOut(
        user_id=member.user.id,
        username=member.user.username,
        display_name=member.user.display_name,
        roles=sorted(member.roles),
    )


@api.get("/brands/{brand_slug}/staff", response_model=list[StaffMemberOut])
def api_staff(db: SessionDep, user: BrandAdmin, brand_slug: str) -> list[StaffMemberOut]:
    brand = community_service.get_brand(db, brand_slug)
    return [_out(member) for member in brand_staff.brand_staff(db, brand)]


@api.post("/brands/{brand_slug}/staff", response_model=list[StaffMemberOut], status_code=201)
def api_grant(
    request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str, body: StaffGrantIn
) -> list[StaffMemberOut]:
    """Grant a role; granting one already held changes nothing (and still answers 201)."""
    brand = community_service.get_brand(db, brand_slug)
    person = brand_staff.find_member(db, body.username)
    brand_staff.grant(db, user, brand, person, body.role, ip=client_ip(request))
    db.commit()
    return [_out(member) for member in brand_staff.brand_staff(db, brand)]


@api.delete("/brands/{brand_slug}/staff/{user_id}/{role}", status_code=204)
def api_revoke(
    request: Request,
    db: SessionDep,
    user: BrandAdmin,
    brand_slug: str,
    user_id: int,
    role: BrandRole,
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    person = brand_staff.staff_member(db, brand, user_id)
    brand_staff.revoke(db, user, brand, person, role, ip=client_ip(request))
    db.commit()
    return Response(status_code=204)
