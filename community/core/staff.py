"""Staff roles granted per brand, as the request's viewer and the policy read them.

A moderator, agent or brand admin is staff of the brands they were granted (site admins, and
the site-wide roles on `User.role`, of every brand). The viewer's grants are loaded with it,
once per request, and handed to the `User` row the route acts as, so the policy's predicates
read them without a query (community.core.policy never touches the database).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sqlalchemy import ColumnElement, Select, exists, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from community.core.models import BRAND_ROLES_KEY, NO_GRANTS, Brand, User
from community.core.policy import staffed_brands
from community.core.workspace_models import BrandRole, StaffGrant

BrandRoles = Mapping[int, frozenset[BrandRole]]


def has_grants(user_id: InstrumentedAttribute[int]) -> ColumnElement[bool]:
    """Whether a user holds any grant: asked in the viewer's own statement, so that members
    (nearly everyone) cost no second query."""
    return exists().where(StaffGrant.user_id == user_id)


def brand_roles_of(db: Session, user_id: int) -> BrandRoles:
    rows = db.execute(
        select(StaffGrant.brand_id, StaffGrant.role).where(StaffGrant.user_id == user_id)
    ).all()
    if not rows:
        return NO_GRANTS
    roles: dict[int, set[BrandRole]] = {}
    for brand_id, role in rows:
        roles.setdefault(brand_id, set()).add(role)
    return MappingProxyType({brand_id: frozenset(held) for brand_id, held in roles.items()})


def remember_brand_roles(user: User, roles: BrandRoles) -> User:
    """Hand the viewer's grants to a `User` row (see `User.brand_roles`)."""
    user.__dict__[BRAND_ROLES_KEY] = roles
    return user


def load_brand_roles(db: Session, user: User) -> User:
    """A user row with its grants, for code that loads an acting user itself (the CLI, tests)."""
    return remember_brand_roles(user, brand_roles_of(db, user.id))


def home_brand(db: Session, user: User, preferred: Brand | None) -> Brand | None:
    """Where a staff member's workspace opens (/mod, /agent): the site's default brand
    (`preferred`) when they staff it, else the first brand they do (None: none)."""
    brands = staffed_brands(user)
    if brands is None or (preferred is not None and preferred.id in brands):
        return preferred
    if not brands:
        return None
    return db.scalar(
        select(Brand)
        .where(Brand.id.in_(brands), Brand.archived_at.is_(None))
        .order_by(Brand.id)
        .limit(1)
    )


def granted_user_ids(brand_id: int, roles: frozenset[BrandRole]) -> Select[int]:
    """The ids of the people granted one of `roles` in the brand."""
    return select(StaffGrant.user_id).where(
        StaffGrant.brand_id == brand_id, StaffGrant.role.in_(roles)
    )


def holds_role_in(brand_id: int, roles: frozenset[BrandRole]) -> ColumnElement[bool]:
    """For queries over users: those granted one of `roles` in the brand (who gets a brand's
    summary, who an escalation may be given to), beside the site-wide roles."""
    return User.id.in_(granted_user_ids(brand_id, roles))
