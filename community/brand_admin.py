"""Creating, changing, archiving and bringing back brands (admin pages, API, command line).

Who: site admins create, archive and bring back brands; a brand's own admins (and site admins)
change its settings. The command line is trusted as a site admin is (whoever runs it owns the
server) and is audited without an actor. Every action writes one audit row.

Archiving hides, never deletes: an archived brand is gone for everyone but site admins
(community.core.service's getters and the content loaders answer 404), leaves the brand lists
and can no longer be the default brand; bringing it back restores everything as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from community.brand_schemas import BrandIn, BrandPatch
from community.core import indexing
from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.models import NO_GRANTS, Brand, Role, User
from community.core.policy import administered_brands, ensure_admin, ensure_brand_admin, is_admin
from community.core.workspace_models import BrandRole

# Path segments under /admin/brands/ that are pages, not brands.
RESERVED_BRAND_SLUGS: Final = frozenset({"new"})
# What a brand's settings form and PATCH change, in the order the audit row lists them.
BRAND_FIELDS: Final = (
    "name", "default_locale", "description", "code_of_conduct", "contact_email",
    "solution_threshold", "article_threshold", "review_period_days",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CommandLine:
    """The operator at the server's command line (community brand/forum commands): the policy
    sees a site admin without an account."""

    role: Role = Role.ADMIN
    brand_roles: Mapping[int, frozenset[BrandRole]] = field(default_factory=lambda: NO_GRANTS)


COMMAND_LINE: Final = CommandLine()
Actor = User | CommandLine


class SlugTaken(FormErrors):
    """The slug belongs to another brand or forum: 409, the field named."""

    status_code = 409
    code = "slug_taken"


def audit_actor(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) else None


def access_managed_brand(db: Session, actor: Actor, slug: str) -> Brand:
    """The brand `actor` may administer: 404 for no such brand (and for an archived one, to
    anyone but a site admin: it is gone for them), 403 for someone who is not its admin."""
    brand = db.scalar(select(Brand).where(Brand.slug == slug[:60]))
    if brand is None:
        raise NotFound()
    if brand.archived_at is not None and not is_admin(actor):
        raise NotFound()
    ensure_brand_admin(actor, brand.id)
    return brand


def managed_brands(db: Session, actor: User) -> list[Brand]:
    """The brands on the admin's brand list: every one (archived too) for a site admin, the
    brands they administer for a brand admin."""
    statement = select(Brand).order_by(Brand.archived_at.is_not(None), Brand.name, Brand.id)
    administered = administered_brands(actor)
    if administered is not None:
        statement = statement.where(Brand.id.in_(administered), Brand.archived_at.is_(None))
    return list(db.scalars(statement))


def record(
    db: Session,
    actor: Actor,
    action: str,
    target: tuple[str, int],
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    ip: str | None = None,
    reason: str | None = None,
) -> None:
    """The audit row of a brand or forum action (`target`: its type and id); the command
    line's say so in their reason."""
    if not isinstance(actor, User):
        reason = f"command line: {reason}" if reason else "command line"
    record_audit(
        db, actor=audit_actor(actor), action=action, target_type=target[0], target_id=target[1],
        before=before, after=after, ip=ip, reason=reason,
    )  # fmt: skip


def _slug_free(db: Session, slug: str) -> None:
    if slug in RESERVED_BRAND_SLUGS or db.scalar(select(Brand.id).where(Brand.slug == slug)):
        raise SlugTaken({"slug": _("That address is taken: choose another.")})


def _settings(brand: Brand) -> dict[str, Any]:
    return {name: getattr(brand, name) for name in BRAND_FIELDS}


def _column_default(name: str) -> Any:
    """The model's default for a column (a new brand's before it is flushed)."""
    default = Brand.__table__.c[name].default
    return getattr(default, "arg", None)


def do_create_brand(db: Session, actor: Actor, data: BrandIn, *, ip: str | None = None) -> Brand:
    """A new brand with no forum yet (its admins add them). SlugTaken if the slug is in use,
    also when another request took it a moment ago (the unique index decides)."""
    ensure_admin(actor, _("Only site admins can do that."))
    _slug_free(db, data.slug)
    brand = Brand(slug=data.slug, theme={})
    for name in BRAND_FIELDS:
        setattr(brand, name, _column_default(name))
    changes = data.model_dump(exclude_unset=True, exclude={"slug"})
    _check_thresholds(brand, changes)
    _apply(brand, changes)
    try:
        with db.begin_nested():
            db.add(brand)
            db.flush()
    except IntegrityError as exc:
        raise SlugTaken({"slug": _("That address is taken: choose another.")}) from exc
    record(
        db,
        actor,
        "brand.created",
        ("brand", brand.id),
        after=_settings(brand) | {"slug": brand.slug},
        ip=ip,
    )
    return brand


def _apply(brand: Brand, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        if value is not None:
            setattr(brand, name, value)


def _check_thresholds(brand: Brand, changes: dict[str, Any]) -> None:
    """An article is suggested from a community solution, so its threshold is not lower."""

    def chosen(name: str) -> float:
        value = changes.get(name)
        return float(getattr(brand, name) if value is None else value)

    solution, article = chosen("solution_threshold"), chosen("article_threshold")
    if article < solution:
        message = _("The article threshold cannot be below the community-solution threshold.")
        raise FormErrors({"article_threshold": message})


def do_update_brand(
    db: Session, actor: Actor, brand: Brand, data: BrandPatch, *, ip: str | None = None
) -> bool:
    """Change the settings sent (a null or missing field stays). True if anything changed;
    a FormErrors leaves the brand as it was."""
    ensure_brand_admin(actor, brand.id)
    changes = {
        name: value
        for name, value in data.model_dump(exclude_unset=True).items()
        if value is not None and value != getattr(brand, name)
    }
    _check_thresholds(brand, changes)
    if not changes:
        return False
    before = {name: getattr(brand, name) for name in changes}
    _apply(brand, changes)
    record(db, actor, "brand.updated", ("brand", brand.id), before=before, after=changes, ip=ip)
    db.flush()
    return True


def do_set_brand_archived(
    db: Session, actor: Actor, brand: Brand, archived: bool, *, ip: str | None = None
) -> bool:
    """Archive (hide) or bring back a brand; site admins only. True if it changed."""
    ensure_admin(actor, _("Only site admins can do that."))
    if (brand.archived_at is not None) == archived:
        return False
    brand.archived_at = utcnow() if archived else None
    indexing.brand_archived(db, brand.id)  # its documents leave search (or come back)
    action = "brand.archived" if archived else "brand.unarchived"
    record(
        db, actor, action, ("brand", brand.id),
        before={"archived": not archived}, after={"archived": archived}, ip=ip,
    )  # fmt: skip
    db.flush()
    return True
