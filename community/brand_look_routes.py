"""A brand's look: the admin page (/admin/brands/<slug>/look: colours for the light and dark
themes with a live contrast check, logo and favicon, footer links, host name) and its JSON API
(PUT /api/v1/brands/<slug>/look, POST or DELETE /api/v1/brands/<slug>/logo and /favicon).

For site admins and the brand's own brand admins (everyone else: 403). Thin: parse, call
community.core.brand_look_service, commit once, then drop the brands the web layer keeps
(community.core.hosts) so the next page shows the new look at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from community.api import ERRORS
from community.core import brand_look_service as looks
from community.core import service
from community.core.auth import CurrentUser, StaffSecondFactor, client_ip
from community.core.brand_look import Mode, Palette, look_of, text_on, theme_of
from community.core.db import SessionDep
from community.core.errors import BadRequest, FormErrors
from community.core.hosts import forget_brands
from community.core.i18n import gettext as _
from community.core.models import Brand, User
from community.core.policy import ensure_brand_admin
from community.core.schemas import ErrorOut
from community.core.web import flash_redirect, render

router = APIRouter(dependencies=[StaffSecondFactor], include_in_schema=False)
api = APIRouter(
    dependencies=[StaffSecondFactor],
    prefix="/api/v1",
    tags=["brands"],
    responses=ERRORS,  # type: ignore[arg-type]
)
FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
FilePart = Annotated[UploadFile | None, File(description="A PNG, JPEG, GIF or WebP image.")]
FOOTER_ROWS = 8  # rows the form shows (the limit of links, community.core.brand_look)
TEMPLATE = "admin/brand_look.html"
MODES: tuple[Mode, ...] = ("light", "dark")


def _managed_brand(db: Session, user: User, brand_slug: str) -> Brand:
    """The brand, if this person may change its look (a site admin sees archived ones too)."""
    brand = service.get_brand(db, brand_slug, viewer=user)
    ensure_brand_admin(user, brand.id)
    return brand


def _look_path(brand: Brand) -> str:
    return f"/admin/brands/{brand.slug}/look"


def _rows(links: Any) -> list[dict[str, str]]:
    """The footer rows the form shows: the links, then blank rows up to FOOTER_ROWS."""
    rows = [
        {"label": str(row.get("label") or ""), "url": str(row.get("url") or "")}
        for row in links
        if isinstance(row, dict)
    ]
    return rows + [{"label": "", "url": ""}] * max(0, FOOTER_ROWS - len(rows))


def _swatches(form: looks.LookForm) -> dict[str, dict[str, str]]:
    """What the preview shows of each theme: the colours as typed (those that parse), the dark
    ones derived from the light when blank, the site's where nothing is chosen."""
    theme = looks.parse_theme(form, {})
    shown: dict[str, dict[str, str]] = {}
    for mode in MODES:
        palette = theme.palette(mode)
        shown[mode] = {
            "primary": palette.primary,
            "accent": palette.accent,
            "on_primary": text_on(palette.primary),
        }
    return shown


def _page(
    request: Request,
    brand: Brand,
    form: looks.LookForm,
    errors: dict[str, str],
    *,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        TEMPLATE,
        {
            "brand": brand,
            "form": form,
            "footer_rows": _rows(form.footer_links),
            "errors": errors,
            "checked": looks.contrast_report(form),
            "swatches": _swatches(form),
            "look": look_of(brand),
            "shared_host": request.app.state.settings.base_url,
        },
        status_code=status_code,
        block="contrast" if request.url.path.endswith("/contrast") else None,
    )


def _form(
    primary: str,
    accent: str,
    dark_primary: str,
    dark_accent: str,
    labels: list[str],
    urls: list[str],
    host: str,
) -> looks.LookForm:
    rows = [
        {"label": label, "url": url}
        for label, url in zip(labels[:50], urls[:50], strict=False)  # a form of ours sends 8
    ]
    return looks.LookForm(
        primary=primary[:50], accent=accent[:50], dark_primary=dark_primary[:50],
        dark_accent=dark_accent[:50], footer_links=rows, host=host[:300],
    )  # fmt: skip


@router.get("/admin/brands/{brand_slug}/look", response_class=HTMLResponse, name="brand_look")
def look_page(request: Request, db: SessionDep, user: CurrentUser, brand_slug: str) -> Response:
    brand = _managed_brand(db, user, brand_slug)
    return _page(request, brand, looks.form_of(brand), {})


@router.get(
    "/admin/brands/{brand_slug}/look/contrast",
    response_class=HTMLResponse,
    name="brand_look_contrast",
)
def contrast_check(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    brand_slug: str,
    primary: str = "",
    accent: str = "",
    dark_primary: str = "",
    dark_accent: str = "",
) -> Response:
    """The colours' contrast as typed, nothing saved: the form's live message (htmx, on each
    change), or the whole page with the colours filled in (the "Check contrast" button)."""
    brand = _managed_brand(db, user, brand_slug)
    current = looks.form_of(brand)
    form = looks.LookForm(
        primary=primary[:50], accent=accent[:50], dark_primary=dark_primary[:50],
        dark_accent=dark_accent[:50], footer_links=current.footer_links, host=current.host,
    )  # fmt: skip
    return _page(request, brand, form, {})


@router.post("/admin/brands/{brand_slug}/look", response_class=HTMLResponse)
def save_look(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    brand_slug: str,
    primary: FormText = "",
    accent: FormText = "",
    dark_primary: FormText = "",
    dark_accent: FormText = "",
    footer_label: FormList = [],  # noqa: B006 - one value per row, FastAPI's form lists
    footer_url: FormList = [],  # noqa: B006
    host: FormText = "",
) -> Response:
    brand = _managed_brand(db, user, brand_slug)
    settings = request.app.state.settings
    form = _form(primary, accent, dark_primary, dark_accent, footer_label, footer_url, host)
    try:
        looks.save_look(db, settings, user, brand, form, ip=client_ip(request))
    except FormErrors as exc:
        db.rollback()
        brand = _managed_brand(db, user, brand_slug)
        return _page(request, brand, form, exc.errors, status_code=422)
    db.commit()
    forget_brands(request.app.state)
    return flash_redirect(request, _look_path(brand), _("The brand's look is saved."))


def _read_image(request: Request, file: UploadFile | None) -> tuple[bytes, str]:
    if file is None or isinstance(file, str):
        raise BadRequest(_("Choose an image to upload."), code="no_file")
    # One byte past the limit is enough to know it is too much.
    return file.file.read(request.app.state.settings.uploads_max_bytes + 1), file.filename or ""


@router.post("/admin/brands/{brand_slug}/look/{kind}", name="brand_look_image")
def upload_image(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    brand_slug: str,
    kind: str,
    file: FilePart = None,
    remove: FormText = "",
) -> Response:
    """A new logo or favicon (`kind`), or none (`remove`); refusals are the upload's own 4xx."""
    brand = _managed_brand(db, user, brand_slug)
    settings = request.app.state.settings
    if remove:
        looks.remove_image(db, settings, user, brand, kind, ip=client_ip(request))
    else:
        data, filename = _read_image(request, file)
        looks.set_image(
            db, settings, user, brand, kind, data=data, filename=filename, ip=client_ip(request)
        )
    db.commit()
    forget_brands(request.app.state)
    saved = _("The logo is saved.") if kind == "logo" else _("The favicon is saved.")
    return flash_redirect(request, _look_path(brand), saved)


# --- JSON API --------------------------------------------------------------------------------


class ColoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    primary: str | None = Field(default=None, max_length=50, examples=["#0b5cad"])
    accent: str | None = Field(default=None, max_length=50, examples=["#f0a500"])


class FooterLinkIO(BaseModel):
    label: str = Field(max_length=200)
    url: str = Field(max_length=2000)


class LookIn(BaseModel):
    """The look's fields; those left out keep their value, null or "" clears one (a colour
    back to the site's, the dark theme to one derived from the light, no host)."""

    model_config = ConfigDict(extra="forbid")
    primary: str | None = Field(default=None, max_length=50)
    accent: str | None = Field(default=None, max_length=50)
    dark: ColoursIn | None = None
    footer_links: list[FooterLinkIO] | None = Field(default=None, max_length=50)
    host: str | None = Field(default=None, max_length=300)


class ColoursOut(BaseModel):
    primary: str
    accent: str


class LookOut(BaseModel):
    """The brand's look: the colours in use in each theme (`custom` false: the site's own),
    footer links, host, and the addresses of its logo, favicon and stylesheet."""

    custom: bool
    light: ColoursOut
    dark: ColoursOut
    footer_links: list[FooterLinkIO]
    host: str | None
    logo_url: str | None
    favicon_url: str | None
    stylesheet_url: str | None


def _colours(palette: Palette) -> ColoursOut:
    return ColoursOut(primary=palette.primary, accent=palette.accent)


def _out(brand: Brand) -> LookOut:
    theme = theme_of(brand.theme)
    look = look_of(brand)
    return LookOut(
        custom=theme.custom,
        light=_colours(theme.palette("light")),
        dark=_colours(theme.palette("dark")),
        footer_links=[FooterLinkIO(label=link.label, url=link.url) for link in look.footer_links],
        host=look.host,
        logo_url=look.logo_url,
        favicon_url=look.favicon_url,
        stylesheet_url=look.stylesheet_url,
    )


def _sent(values: dict[str, Any], key: str, now: str) -> str:
    """A field as sent (null: cleared), or as it is when left out."""
    return (values[key] or "") if key in values else now


def _merged(brand: Brand, body: LookIn) -> looks.LookForm:
    current = looks.form_of(brand)
    sent = body.model_dump(exclude_unset=True)
    # "dark": null clears the dark theme; an object changes the colours it names.
    dark = (
        {"primary": None, "accent": None} if sent.get("dark", {}) is None else sent.get("dark", {})
    )
    links = sent.get("footer_links", current.footer_links)
    return looks.LookForm(
        primary=_sent(sent, "primary", current.primary),
        accent=_sent(sent, "accent", current.accent),
        dark_primary=_sent(dark, "primary", current.dark_primary),
        dark_accent=_sent(dark, "accent", current.dark_accent),
        footer_links=links or [],
        host=_sent(sent, "host", current.host),
    )


@api.get("/brands/{brand_slug}/look", response_model=LookOut)
def api_look(db: SessionDep, user: CurrentUser, brand_slug: str) -> LookOut:
    """The brand's look (its brand admins and site admins)."""
    return _out(_managed_brand(db, user, brand_slug))


@api.put("/brands/{brand_slug}/look", response_model=LookOut)
def api_save_look(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str, body: LookIn
) -> LookOut:
    """Set the colours (each checked against WCAG AA: 4.5:1 for the primary colour on the page
    and under button text, 3:1 for the accent), the footer links (at most 8; http(s) or a
    path on this site) and the host name the brand is served on. 422 names every wrong field
    and changes nothing."""
    brand = _managed_brand(db, user, brand_slug)
    form = _merged(brand, body)
    looks.save_look(db, request.app.state.settings, user, brand, form, ip=client_ip(request))
    db.commit()
    forget_brands(request.app.state)
    return _out(brand)


_IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": "Too many bytes or pixels."},
    415: {"model": ErrorOut, "description": "Not a PNG, JPEG, GIF or WebP image."},
}


def _api_image(request: Request, db: Session, user: User, brand_slug: str, kind: str,
               file: UploadFile | None) -> LookOut:  # fmt: skip
    brand = _managed_brand(db, user, brand_slug)
    data, filename = _read_image(request, file)
    settings = request.app.state.settings
    looks.set_image(
        db, settings, user, brand, kind, data=data, filename=filename, ip=client_ip(request)
    )
    db.commit()
    forget_brands(request.app.state)
    return _out(brand)


def _api_remove(request: Request, db: Session, user: User, brand_slug: str, kind: str) -> LookOut:
    brand = _managed_brand(db, user, brand_slug)
    settings = request.app.state.settings
    looks.remove_image(db, settings, user, brand, kind, ip=client_ip(request))
    db.commit()
    forget_brands(request.app.state)
    return _out(brand)


@api.post("/brands/{brand_slug}/logo", response_model=LookOut, responses=_IMAGE_ERRORS)
def api_upload_logo(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str, file: FilePart = None
) -> LookOut:
    """A new logo, as multipart `file`: re-encoded, metadata stripped, scaled down to 512 px;
    SVG, HTML and anything but a PNG, JPEG, GIF or WebP image refused."""
    return _api_image(request, db, user, brand_slug, "logo", file)


@api.post("/brands/{brand_slug}/favicon", response_model=LookOut, responses=_IMAGE_ERRORS)
def api_upload_favicon(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str, file: FilePart = None
) -> LookOut:
    """A new favicon, as multipart `file` (as the logo; scaled down to 64 px)."""
    return _api_image(request, db, user, brand_slug, "favicon", file)


@api.delete("/brands/{brand_slug}/logo", response_model=LookOut)
def api_remove_logo(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str
) -> LookOut:
    """No logo: the brand's initial shows instead."""
    return _api_remove(request, db, user, brand_slug, "logo")


@api.delete("/brands/{brand_slug}/favicon", response_model=LookOut)
def api_remove_favicon(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str
) -> LookOut:
    """No favicon of the brand's own: the site's shows."""
    return _api_remove(request, db, user, brand_slug, "favicon")
