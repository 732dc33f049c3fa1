"""When staff must have passed a second factor: brands may require it of their moderators,
agents and admins (`Brand.require_staff_two_factor`).

Under a brand's path (/b/<slug>/...) the brand's own setting decides. Elsewhere (/mod, /admin,
the JSON API without a brand), any brand the person is staff of decides; site-wide staff roles
and site admins are staff of every brand. Members are never asked: the question costs them no
query, and staff one small query (only when their session has not passed a second factor).
"""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from community.core import policy
from community.core.account_models import TwoFactor
from community.core.models import Brand, User


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
