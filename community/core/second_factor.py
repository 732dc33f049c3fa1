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


def second_factor_required(db: Session, user: User, brand_slug: str | None = None) -> bool:
    """Whether `user`'s staff pages need a session that passed a second factor."""
    if not policy.is_staff(user):
        return False
    if brand_slug is not None:
        return bool(
            db.scalar(select(Brand.require_staff_two_factor).where(Brand.slug == brand_slug))
        )
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
