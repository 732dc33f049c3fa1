"""Changing a brand's look: colours, footer links, host name, logo and favicon. Brand admins of
that brand and site admins only; every change is audited. The rules for each value are in
community.core.brand_look; the host name must also be free (no other brand's, not the shared
host). Services flush; the route commits and drops the brands the web layer keeps
(community.core.hosts.forget_brands)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from community.core import policy, uploads
from community.core.audit import record_audit
from community.core.brand_look import (
    DEFAULTS,
    FooterLink,
    LookError,
    Mode,
    Palette,
    Theme,
    contrast_problems,
    footer_links,
    host_name,
    parse_colour,
    shared_hosts,
    theme_of,
)
from community.core.errors import FormErrors
from community.core.i18n import gettext as _
from community.core.models import Brand, User
from community.core.settings import Settings
from community.core.workspace_models import Upload, UploadPurpose

IMAGE_PURPOSES = {"logo": UploadPurpose.LOGO, "favicon": UploadPurpose.FAVICON}


@dataclass(frozen=True)
class LookForm:
    """A look as typed in the form or sent to the API; blank colours mean the site's own (a
    blank dark theme is derived from the light one), a blank host none."""

    primary: str = ""
    accent: str = ""
    dark_primary: str = ""
    dark_accent: str = ""
    footer_links: Sequence[Mapping[str, object]] = field(default_factory=list)
    host: str = ""


def form_of(brand: Brand) -> LookForm:
    """The brand's look as the form shows it."""
    theme = theme_of(brand.theme)
    light, dark = theme.light, theme.dark
    return LookForm(
        primary=light.primary if light else "",
        accent=light.accent if light else "",
        dark_primary=dark.primary if dark else "",
        dark_accent=dark.accent if dark else "",
        footer_links=[dict(row) for row in brand.footer_links or [] if isinstance(row, Mapping)],
        host=brand.host or "",
    )


def _palette(
    primary: str, accent: str, *, mode: Mode, prefix: str, errors: dict[str, str]
) -> Palette | None:
    """The palette of one theme, or None when both colours are blank. A colour that does not
    parse, or does not reach AA, is an error under its field's name; a blank primary is the
    site's, a blank accent the primary."""
    if not primary.strip() and not accent.strip():
        return None
    parsed: dict[str, str] = {}
    for name, text in (("primary", primary), ("accent", accent)):
        try:
            parsed[name] = parse_colour(text) if text.strip() else ""
        except LookError as exc:
            errors[f"{prefix}{name}"] = str(exc)
    chosen = parsed.get("primary") or DEFAULTS[mode].primary
    palette = Palette(primary=chosen, accent=parsed.get("accent") or chosen)
    for name, message in contrast_problems(palette, mode).items():
        errors.setdefault(f"{prefix}{name}", message)  # a colour that did not parse says so
    return palette


def parse_theme(form: LookForm, errors: dict[str, str]) -> Theme:
    light = _palette(form.primary, form.accent, mode="light", prefix="", errors=errors)
    dark = _palette(form.dark_primary, form.dark_accent, mode="dark", prefix="dark_", errors=errors)
    return Theme(light=light, dark=dark)


def contrast_report(form: LookForm) -> dict[str, str]:
    """What is wrong with the colours alone (the form's live check, before saving)."""
    errors: dict[str, str] = {}
    parse_theme(form, errors)
    return errors


def _free_host(
    db: Session, settings: Settings, brand: Brand, text: str, errors: dict[str, str]
) -> str | None:
    try:
        host = host_name(text)
    except LookError as exc:
        errors["host"] = str(exc)
        return None
    if host is None:
        return None
    if host in shared_hosts(settings.base_url, settings.allowed_hosts):
        errors["host"] = _(
            "That is the address of the whole site; choose a host of the brand's own."
        )
        return None
    taken = db.scalar(
        select(func.count()).select_from(Brand).where(Brand.host == host, Brand.id != brand.id)
    )
    if taken:
        errors["host"] = _("Another brand is served on that host name.")
        return None
    return host


def _stored_links(links: list[FooterLink]) -> list[dict[str, str]]:
    return [{"label": link.label, "url": link.url} for link in links]


def _current(brand: Brand) -> dict[str, Any]:
    return {
        "theme": dict(brand.theme or {}),
        "footer_links": list(brand.footer_links or []),
        "host": brand.host,
    }


def save_look(
    db: Session,
    settings: Settings,
    actor: User,
    brand: Brand,
    form: LookForm,
    *,
    ip: str | None = None,
) -> None:
    """Set the brand's colours, footer links and host from `form`, all or nothing: every wrong
    field is named in one FormErrors (422) and nothing changes."""
    policy.ensure_brand_admin(actor, brand.id)
    errors: dict[str, str] = {}
    theme = parse_theme(form, errors)
    links, link_errors = footer_links(form.footer_links)
    errors |= link_errors
    host = _free_host(db, settings, brand, form.host, errors)
    if errors:
        raise FormErrors(errors)
    before = _current(brand)
    # Only the look's own keys: anything else a brand's theme holds is kept.
    kept = {k: v for k, v in (brand.theme or {}).items() if k not in ("primary", "accent", "dark")}
    try:
        with db.begin_nested():  # two brands claiming one host at once: the unique index decides
            brand.theme = kept | theme.stored()
            brand.footer_links = _stored_links(links)
            brand.host = host
            db.flush()
    except IntegrityError as exc:
        raise FormErrors({"host": _("Another brand is served on that host name.")}) from exc
    after = _current(brand)
    if before == after:
        return
    record_audit(
        db, actor=actor, action="brand.look", target_type="brand", target_id=brand.id,
        before=before, after=after, ip=ip,
    )  # fmt: skip
    db.flush()


def set_image(
    db: Session,
    settings: Settings,
    actor: User,
    brand: Brand,
    kind: str,
    *,
    data: bytes,
    filename: str,
    ip: str | None = None,
) -> Upload:
    """A new logo or favicon (`kind`), checked and re-encoded by community.core.uploads (an
    SVG, HTML or anything but a PNG, JPEG, GIF or WebP image is refused, as is one too large)."""
    policy.ensure_brand_admin(actor, brand.id)
    purpose = IMAGE_PURPOSES.get(kind)
    if purpose is None:
        raise FormErrors({"kind": _("Choose a logo or a favicon.")})
    upload = uploads.accept_image(
        db, settings, data=data, filename=filename, purpose=purpose, owner_id=actor.id,
        brand_id=brand.id,
    )  # fmt: skip
    _set_key(db, settings, actor, brand, kind, upload.key, ip=ip)
    return upload


def remove_image(
    db: Session, settings: Settings, actor: User, brand: Brand, kind: str, *, ip: str | None = None
) -> None:
    """Back to the site's favicon, or the brand's initial instead of a logo."""
    policy.ensure_brand_admin(actor, brand.id)
    if kind not in IMAGE_PURPOSES:
        raise FormErrors({"kind": _("Choose a logo or a favicon.")})
    _set_key(db, settings, actor, brand, kind, None, ip=ip)


def _set_key(
    db: Session,
    settings: Settings,
    actor: User,
    brand: Brand,
    kind: str,
    key: str | None,
    *,
    ip: str | None,
) -> None:
    """Point the brand at its new image (or none); the one it replaces is shown nowhere else,
    so it is deleted (community.core.uploads.discard_upload)."""
    column = f"{kind}_key"
    before = getattr(brand, column)
    if before == key:
        return
    setattr(brand, column, key)
    uploads.discard_upload(db, settings, before)
    record_audit(
        db, actor=actor, action=f"brand.{kind}", target_type="brand", target_id=brand.id,
        before={column: before}, after={column: key}, ip=ip,
    )  # fmt: skip
    db.flush()
