"""Single sign-on pages (/b/<slug>/sso/...: start, callback, the choice of a new or an existing
account) and the brand's sign-in settings (/admin/brands/<slug>/sign-in and
GET/PUT /api/v1/brands/<slug>/sign-in). Thin: the flow is community.accounts.sso, the settings
community.accounts.sso_config; every sign-in ends in community.accounts.signin.finish_sign_in.

Also what the login page needs of a brand (`login_options`) and its refusal of member passwords
where the brand turned them off (`ensure_password_sign_in`): the brand of a login is the one
its `next` page belongs to (/b/<slug>/...), else the request's (community.core.web)."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from community.accounts import signin, sso, sso_config
from community.accounts.sso_config import SignInSettingsIn, SignInSettingsOut
from community.api import ERRORS
from community.core import policy_identity, service
from community.core.account_models import SsoProvider
from community.core.auth import CurrentUser, StaffSecondFactor, ViewerDep, client_ip
from community.core.db import SessionDep
from community.core.errors import FormErrors, NotFound, TooManyRequests
from community.core.forms import parse_form
from community.core.hosts import forget_brands
from community.core.i18n import gettext as _
from community.core.models import Brand, User
from community.core.policy import ensure_brand_admin, is_admin, is_staff
from community.core.schemas import LoginIn
from community.core.staff import load_brand_roles
from community.core.web import current_brand, flash_redirect, render, safe_next

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["brands"], responses=ERRORS)  # type: ignore[arg-type]
FormText = Annotated[str, Form()]
_BRAND_PATH = re.compile(r"^/b/([A-Za-z0-9_-]{1,60})(?:/|$)")


def _brand_and_provider(db: Session, brand_slug: str, viewer: Any) -> tuple[Brand, SsoProvider]:
    """The brand and its enabled provider; 404 when it has none (or it is switched off)."""
    brand = service.get_brand(db, brand_slug, viewer=viewer)
    provider = sso_config.enabled_provider(db, brand.id)
    if provider is None:
        raise NotFound(_("This community has no single sign-on."))
    return brand, provider


def _choose_path(brand: Brand) -> str:
    return f"/b/{brand.slug}/sso/choose"


@router.get("/b/{brand_slug}/sso/start", name="sso_start")
def sso_start(
    request: Request, db: SessionDep, viewer: ViewerDep, brand_slug: str, next: str = "/"
) -> Response:
    brand, provider = _brand_and_provider(db, brand_slug, viewer)
    url = sso.start(
        db,
        request.app.state.settings,
        brand,
        provider,
        session_token=request.state.session_token,
        next_url=safe_next(next),
    )
    db.commit()
    return RedirectResponse(url, status_code=302)


@router.get("/b/{brand_slug}/sso/callback", name="sso_callback")
def sso_callback(request: Request, db: SessionDep, viewer: ViewerDep, brand_slug: str) -> Response:
    brand, provider = _brand_and_provider(db, brand_slug, viewer)
    params = {key: value[:2000] for key, value in request.query_params.items()}
    attempt = sso.take_attempt(db, provider, params.get("state", ""), request.state.session_token)
    db.commit()  # used up, whatever the provider's answer turns out to be
    try:
        identity = sso.call_back(db, request.app.state.settings, brand, provider, attempt, params)
        user = sso.resolve(db, provider, attempt, identity)
        if user is not None:
            policy_identity.ensure_may_sign_in(user)
    except Exception:
        db.rollback()
        raise
    if user is None:
        db.commit()
        return RedirectResponse(_choose_path(brand), status_code=303)
    return signin.finish_sign_in(
        request,
        db,
        user,
        next_url=safe_next(attempt.next_url),
        message=_("Signed in as %(name)s.") % {"name": user.display_name},
    )


def _choice_page(
    request: Request,
    db: Session,
    brand: Brand,
    provider: SsoProvider,
    identity: sso.Identity,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    suggested = (form or {}).get("username") or sso.suggested_username(db, identity)
    return render(
        request,
        "accounts/sso_choose.html",
        {
            "brand": brand,
            "label": sso.label_of(brand, provider),
            "identity": identity,
            "address_kept": sso.address_for_new_account(db, identity) is not None,
            "form": (form or {}) | {"username": suggested},
            "errors": errors or {},
        },
        status_code=status_code,
        headers={"cache-control": "no-store"},
    )


@router.get("/b/{brand_slug}/sso/choose", response_class=HTMLResponse, name="sso_choose")
def sso_choose(request: Request, db: SessionDep, viewer: ViewerDep, brand_slug: str) -> Response:
    brand, provider = _brand_and_provider(db, brand_slug, viewer)
    _, identity = sso.choice_attempt(db, provider, request.state.session_token)
    return _choice_page(request, db, brand, provider, identity)


@router.post("/b/{brand_slug}/sso/create", response_class=HTMLResponse, name="sso_create")
def sso_create(
    request: Request,
    db: SessionDep,
    viewer: ViewerDep,
    brand_slug: str,
    username: FormText = "",
) -> Response:
    brand, provider = _brand_and_provider(db, brand_slug, viewer)
    attempt, identity = sso.choice_attempt(db, provider, request.state.session_token)
    try:
        user = sso.create_account(db, provider, attempt, identity, username[:100])
    except FormErrors as exc:
        db.rollback()
        form = {"username": username[:100], "mode": "create"}
        return _choice_page(
            request, db, brand, provider, identity, form=form, errors=exc.errors, status_code=422
        )
    message = _("Welcome, %(name)s! Your account is ready.") % {"name": user.display_name}
    if user.email is None:
        message += " " + _("Add an e-mail address on your account page to get notifications.")
    return signin.finish_sign_in(
        request, db, user, next_url=safe_next(attempt.next_url), message=message
    )


@router.post("/b/{brand_slug}/sso/link", response_class=HTMLResponse, name="sso_link")
def sso_link(
    request: Request,
    db: SessionDep,
    viewer: ViewerDep,
    brand_slug: str,
    login: FormText = "",
    password: FormText = "",
) -> Response:
    brand, provider = _brand_and_provider(db, brand_slug, viewer)
    attempt, identity = sso.choice_attempt(db, provider, request.state.session_token)
    form = {"login": login[:254], "mode": "link"}
    try:
        data = parse_form(LoginIn, {"login": login, "password": password})
        user = service.authenticate(
            db,
            request.app.state.passwords,
            request.app.state.login_throttle,
            data,
            ip=client_ip(request),
        )
        sso.link_account(db, provider, attempt, identity, user)
    except FormErrors as exc:
        db.rollback()
        errors = {
            "login": exc.errors.get("login")
            or _("Enter your username or e-mail and your password.")
        }
        return _choice_page(
            request, db, brand, provider, identity, form=form, errors=errors, status_code=422
        )
    except (TooManyRequests, service.InvalidCredentials, service.AccountSuspended) as exc:
        db.rollback()
        errors = {"login": exc.message or _("That username or password is not right.")}
        return _choice_page(
            request, db, brand, provider, identity, form=form, errors=errors,
            status_code=exc.status_code,
        )  # fmt: skip
    return signin.finish_sign_in(
        request,
        db,
        user,
        next_url=safe_next(attempt.next_url),
        message=_("Your account is linked to %(provider)s sign-in. Signed in as %(name)s.")
        % {"provider": sso.label_of(brand, provider), "name": user.display_name},
    )


# --- the login page --------------------------------------------------------------------------


def login_brand(request: Request, db: Session, next_url: str) -> Brand | None:
    """The brand a login is for: the one `next` is a page of, else the request's."""
    match = _BRAND_PATH.match(next_url)
    if match:
        brand = sso_config.open_brand(db, match.group(1))
        if brand is not None:
            return brand
    look = current_brand(request)
    return db.get(Brand, look.id) if look is not None else None


def login_options(request: Request, db: Session, next_url: str) -> dict[str, Any]:
    """The login page's single sign-on button and whether it shows the password form."""
    brand = login_brand(request, db, next_url)
    provider = sso_config.enabled_provider(db, brand.id) if brand is not None else None
    if brand is None or provider is None:
        return {"sso": None, "password_sign_in": True}
    return {
        "sso": {
            "label": sso.label_of(brand, provider),
            "url": f"/b/{brand.slug}/sso/start?next={quote(next_url, safe='/')}",
        },
        "password_sign_in": brand.password_sign_in,
    }


def password_sign_in_refusal(db: Session, user: User, next_url: str, request: Request) -> str:
    """Why this password sign-in is refused ("": it is not). On a brand whose members sign in
    with its provider only, members are refused; the brand's staff and the site-wide staff
    keep their passwords: the way in when the provider is down or misconfigured."""
    brand = login_brand(request, db, next_url)
    if brand is None or brand.password_sign_in:
        return ""
    provider = sso_config.enabled_provider(db, brand.id)
    if provider is None:
        return ""  # the settings never allow it; a brand nobody can enter helps nobody
    if is_staff(load_brand_roles(db, user), brand.id):
        return ""
    return _("Members of %(brand)s sign in with %(provider)s: use the button above.") % {
        "brand": brand.name,
        "provider": sso.label_of(brand, provider),
    }


# --- the brand's sign-in settings (its admins) -----------------------------------------------


def _managed_brand(db: Session, user: User, brand_slug: str) -> Brand:
    brand = service.get_brand(db, brand_slug, viewer=user)
    ensure_brand_admin(user, brand.id)
    return brand


def _settings_page(
    request: Request,
    db: Session,
    brand: Brand,
    form: dict[str, Any],
    errors: dict[str, str],
    *,
    status_code: int = 200,
) -> Response:
    provider = sso_config.provider_of(db, brand.id)
    return render(
        request,
        "admin/brand_sign_in.html",
        {
            "brand": brand,
            "form": form,
            "errors": errors,
            "secret_saved": bool(provider and provider.client_secret),
            "redirect_uri": sso_config.redirect_uri(request.app.state.settings, brand),
        },
        status_code=status_code,
    )


def _form_of(brand: Brand, provider: SsoProvider | None) -> dict[str, Any]:
    """The form as saved (a brand without a provider: the provider fields' defaults)."""
    form: dict[str, Any] = {name: getattr(brand, name) for name in sso_config.RULES}
    source: Any = (
        provider if provider is not None else sso_config.ProviderIn(issuer="", client_id="")
    )
    for name in sso_config.ProviderIn.model_fields.keys() - {"client_secret"}:
        form[name] = getattr(source, name)
    return form


# The sign-in settings are staff work like the brand's other admin pages: a session that has not
# passed a second factor where the brand requires one must not change them (turning the
# requirement itself off, or pointing members at another provider).
@router.get(
    "/admin/brands/{brand_slug}/sign-in",
    response_class=HTMLResponse,
    name="brand_sign_in",
    dependencies=[StaffSecondFactor],
)
def sign_in_settings_page(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str
) -> Response:
    brand = _managed_brand(db, user, brand_slug)
    return _settings_page(
        request, db, brand, _form_of(brand, sso_config.provider_of(db, brand.id)), {}
    )


@router.post(
    "/admin/brands/{brand_slug}/sign-in",
    response_class=HTMLResponse,
    dependencies=[StaffSecondFactor],
)
def save_sign_in_settings(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    brand_slug: str,
    require_verified_email: FormText = "",
    require_staff_two_factor: FormText = "",
    password_sign_in: FormText = "",
    issuer: FormText = "",
    client_id: FormText = "",
    client_secret: FormText = "",
    scopes: FormText = "",
    display_name_claim: FormText = "",
    verified_customer_claim: FormText = "",
    verified_customer_value: FormText = "",
    button_label: FormText = "",
    enabled: FormText = "",
    link_by_email: FormText = "",
) -> Response:
    brand = _managed_brand(db, user, brand_slug)
    typed: dict[str, object] = {
        "issuer": issuer, "client_id": client_id, "scopes": scopes,
        "display_name_claim": display_name_claim,
        "verified_customer_claim": verified_customer_claim,
        "verified_customer_value": verified_customer_value,
        "button_label": button_label, "enabled": bool(enabled),
        # Only site admins see the box; a brand admin's form keeps what is set.
        "link_by_email": bool(link_by_email) if is_admin(user) else None,
    }  # fmt: skip
    rules = {
        "require_verified_email": bool(require_verified_email),
        "require_staff_two_factor": bool(require_staff_two_factor),
        "password_sign_in": bool(password_sign_in),
    }
    # A brand without a provider whose admin left its fields blank sets the rules only.
    blank = not (issuer.strip() or client_id.strip() or client_secret.strip())
    wants_provider = not blank or sso_config.provider_of(db, brand.id) is not None
    try:
        data = parse_form(
            SignInSettingsIn,
            rules
            | {"provider": typed | {"client_secret": client_secret} if wants_provider else None},
        )
        sso_config.do_save_sign_in(
            db, request.app.state.settings, user, brand, data, ip=client_ip(request)
        )
    except FormErrors as exc:
        db.rollback()
        brand = _managed_brand(db, user, brand_slug)
        errors = {key.removeprefix("provider."): value for key, value in exc.errors.items()}
        return _settings_page(request, db, brand, rules | typed, errors, status_code=422)
    db.commit()
    forget_brands(request.app.state)
    return flash_redirect(
        request, f"/admin/brands/{brand.slug}/sign-in", _("The sign-in settings are saved.")
    )


@api.get(
    "/brands/{brand_slug}/sign-in",
    response_model=SignInSettingsOut,
    dependencies=[StaffSecondFactor],
)
def api_sign_in_settings(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str
) -> SignInSettingsOut:
    """The brand's sign-in rules and single sign-on provider (its brand admins and site
    admins). The client secret is never sent: `client_secret_set` says whether one is saved."""
    brand = _managed_brand(db, user, brand_slug)
    provider = sso_config.provider_of(db, brand.id)
    return sso_config.settings_out(request.app.state.settings, brand, provider)


@api.put(
    "/brands/{brand_slug}/sign-in",
    response_model=SignInSettingsOut,
    dependencies=[StaffSecondFactor],
)
def api_save_sign_in_settings(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str, body: SignInSettingsIn
) -> SignInSettingsOut:
    """Change the rules sent and, with `provider`, the whole provider (`client_secret` left
    out or empty keeps the saved one). A new, changed or re-enabled issuer is checked by
    fetching its discovery document (https only; its `issuer` must match exactly): a 422 on
    `provider.issuer` otherwise. Password sign-in can only be off while an enabled provider
    exists. Any 422 changes nothing."""
    brand = _managed_brand(db, user, brand_slug)
    sso_config.do_save_sign_in(
        db, request.app.state.settings, user, brand, body, ip=client_ip(request)
    )
    db.commit()
    forget_brands(request.app.state)
    return sso_config.settings_out(
        request.app.state.settings, brand, sso_config.provider_of(db, brand.id)
    )
