"""Staff per brand: who moderates, answers for and administers one brand.

A grant gives one person one role (moderator, agent, brand admin) in one brand. Site admins
and the brand's own admins grant and revoke; every change is audited; nobody changes their own
roles (no self-promotion, and no brand admin locking the brand out of its last admin by
accident). The command line (`community staff ...`) acts as the operator: no actor, no checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from community.core.audit import record_audit
from community.core.errors import FormErrors, NotFound, PermissionDenied
from community.core.i18n import gettext as _
from community.core.identity import IdentityError, normalise_username
from community.core.models import Brand, User
from community.core.policy import ensure_brand_admin, ensure_can_participate
from community.core.workspace_models import BrandRole, StaffGrant


@dataclass(frozen=True, slots=True)
class StaffMember:
    user: User
    roles: frozenset[BrandRole]


def brand_staff(db: Session, brand: Brand) -> list[StaffMember]:
    """The brand's staff by name, each with the roles they hold in it."""
    rows = db.execute(
        select(User, StaffGrant.role)
        .join(StaffGrant, StaffGrant.user_id == User.id)
        .where(StaffGrant.brand_id == brand.id)
        .order_by(User.username_key)
    ).all()
    roles: dict[int, set[BrandRole]] = {}
    people: dict[int, User] = {}
    for user, role in rows:
        people[user.id] = user
        roles.setdefault(user.id, set()).add(role)
    return [StaffMember(people[user_id], frozenset(held)) for user_id, held in roles.items()]


def _check_actor(actor: User | None, brand: Brand, person: User) -> None:
    if actor is None:  # the operator at the command line
        return
    ensure_brand_admin(actor, brand.id)
    ensure_can_participate(actor)
    if actor.id == person.id:
        raise PermissionDenied(_("You cannot change your own roles."))


def find_member(db: Session, username: str) -> User:
    """An active account by its name, or a form error on `username`."""
    missing = FormErrors({"username": _("There is no active member with that name.")})
    try:
        _display, key = normalise_username(username.strip()[:60])
    except IdentityError as exc:
        raise missing from exc
    user = db.scalar(select(User).where(User.username_key == key, User.deactivated_at.is_(None)))
    if user is None:
        raise missing
    return user


def grant(
    db: Session,
    actor: User | None,
    brand: Brand,
    person: User,
    role: BrandRole,
    *,
    ip: str | None = None,
) -> bool:
    """Give `person` the role in the brand; False when they already held it (nothing changes)."""
    _check_actor(actor, brand, person)
    held = db.scalar(
        select(StaffGrant.id).where(
            StaffGrant.user_id == person.id,
            StaffGrant.brand_id == brand.id,
            StaffGrant.role == role,
        )
    )
    if held is not None:
        return False
    db.add(
        StaffGrant(
            user_id=person.id,
            brand_id=brand.id,
            role=role,
            granted_by_id=actor.id if actor else None,
        )
    )
    db.flush()
    record_audit(
        db, actor=actor, action="staff.granted", target_type="user", target_id=person.id,
        after={"brand": brand.slug, "role": role.value}, ip=ip,
    )  # fmt: skip
    return True


def revoke(
    db: Session,
    actor: User | None,
    brand: Brand,
    person: User,
    role: BrandRole,
    *,
    ip: str | None = None,
) -> bool:
    """Take the role back; False when they did not hold it."""
    _check_actor(actor, brand, person)
    result = db.execute(
        delete(StaffGrant).where(
            StaffGrant.user_id == person.id,
            StaffGrant.brand_id == brand.id,
            StaffGrant.role == role,
        )
    )
    if not getattr(result, "rowcount", 0):
        return False
    record_audit(
        db, actor=actor, action="staff.revoked", target_type="user", target_id=person.id,
        before={"brand": brand.slug, "role": role.value}, ip=ip,
    )  # fmt: skip
    return True


def staff_member(db: Session, brand: Brand, user_id: int) -> User:
    """A person holding a role in the brand (404 for anyone else: ids are not probed here)."""
    user = db.scalar(
        select(User)
        .join(StaffGrant, StaffGrant.user_id == User.id)
        .where(StaffGrant.brand_id == brand.id, User.id == user_id)
        .limit(1)
    )
    if user is None:
        raise NotFound()
    return user
