"""When staff must have passed a second factor: brands may require it of their moderators,
agents and admins (`Brand.require_staff_two_factor`).

Under a brand's path (/b/<slug>/...) the brand's own setting decides. Elsewhere (/mod, /admin,
the JSON API without a brand), any brand the person is staff of decides; site-wide staff roles
and site admins are staff of every brand. Members are never asked: the question costs them no
query, and staff one small query (only when their session has not passed a second factor).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from community.core import policy, policy_identity
from community.core.account_models import TwoFactor
from community.core.models import Brand, Role, User
from community.core.workspace_models import BrandRole

BrandRoles = Mapping[int, frozenset[BrandRole]]


@dataclass(frozen=True, slots=True)
class WithheldStaff:
    """The staff roles a session keeps back until it passes a second factor: the account's
    site-wide role and all its grants (policy predicates can be asked of it: it has `role` and
    `brand_roles`). Until then the session acts as what is left (see withhold_staff_roles)."""

    role: Role
    brand_roles: BrandRoles


def brands_requiring(db: Session) -> frozenset[int]:
    return frozenset(
        db.scalars(
            select(Brand.id).where(
                Brand.require_staff_two_factor.is_(True), Brand.archived_at.is_(None)
            )
        )
    )


def withhold_staff_roles(
    db: Session, role: Role, brand_roles: BrandRoles
) -> tuple[Role, BrandRoles, WithheldStaff | None]:
    """For a session that has not passed a second factor: the roles it acts with
    (policy_identity.acting_roles says which are held back). Not only the staff pages refuse
    such a session then: every staff power does (staff-only forums, others' posts, private
    conversations, triage), because the policy never sees those roles. Members pay nothing;
    staff one small query."""
    held = WithheldStaff(role=role, brand_roles=brand_roles)
    if not policy.is_staff(held):
        return role, brand_roles, None
    acting = policy_identity.acting_roles(role, brand_roles, brands_requiring(db))
    if acting is None:
        return role, brand_roles, None
    return acting[0], acting[1], held


def second_factor_required(
    db: Session, user: User, brand_slug: str | None = None, *, brand_id: int | None = None
) -> bool:
    """Whether `user`'s staff work needs a session that passed a second factor: in the brand
    named (by slug or id) if they are its staff, else in any brand they staff."""
    if not policy.is_staff(user):
        return False
    if brand_slug is not None or brand_id is not None:
        where = Brand.slug == brand_slug if brand_slug is not None else Brand.id == brand_id
        row = db.execute(select(Brand.id, Brand.require_staff_two_factor).where(where)).first()
        return row is not None and row[1] and policy.is_staff(user, row[0])
    requiring = select(Brand.id).where(
        Brand.require_staff_two_factor.is_(True), Brand.archived_at.is_(None)
    )
    brands = policy.staffed_brands(user)  # None: every brand
    if brands is not None:
        requiring = requiring.where(Brand.id.in_(brands))
    return bool(db.scalar(select(exists(requiring))))


def has_second_factor(db: Session, user_id: int) -> bool:
    """The member has an authenticator turned on."""
    return (
        db.scalar(
            select(TwoFactor.user_id).where(
                TwoFactor.user_id == user_id, TwoFactor.enabled_at.is_not(None)
            )
        )
        is not None
    )
