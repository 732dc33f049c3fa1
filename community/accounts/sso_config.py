"""A brand's sign-in settings: its rules (confirmed addresses, staff second factors, password
sign-in) and its OpenID Connect provider, as its admins set them (the page and the API call
`do_save_sign_in`). A new, changed or re-enabled issuer is checked by fetching its discovery
document (community.accounts.oidc), so a typo is a 422 and not a broken button.

The client secret is stored sealed (community.core.secretbox); it is never shown back, logged
or audited, and only the token request reads it (`client_of`).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.accounts.oidc import Client, ProviderError, discover
from community.core import secretbox
from community.core.account_models import SsoProvider
from community.core.audit import record_audit
from community.core.brand_look import brand_base_url
from community.core.clock import utcnow
from community.core.errors import AppError, FormErrors
from community.core.i18n import gettext as _
from community.core.models import Brand, User
from community.core.policy import ensure_admin, ensure_brand_admin
from community.core.settings import Settings

_CLAIM_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{1,100}$")
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 scope-token characters
RULES = ("require_verified_email", "require_staff_two_factor", "password_sign_in")


# --- the settings ----------------------------------------------------------------------------


class ClientSecretUnreadable(AppError):
    """The client secret was sealed under another SECRET_KEY: the brand's admin enters it
    again (a 502: the visitor did nothing wrong, and nothing else breaks meanwhile)."""

    status_code = 502
    code = "sso_secret_unreadable"

    def __init__(self) -> None:
        super().__init__(
            _(
                "Single sign-on is not available right now: the brand's admins must enter the "
                "provider's client secret again."
            )
        )


class ProviderIn(BaseModel):
    """The brand's OpenID Connect provider. `client_secret` empty or left out keeps the one
    saved (it is never shown back)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    issuer: str = Field(max_length=500, examples=["https://id.acme.example"])
    client_id: str = Field(max_length=255)
    client_secret: str | None = Field(default=None, max_length=1000)
    scopes: str = Field(default="openid email profile", max_length=500)
    display_name_claim: str = Field(default="name", max_length=100)
    verified_customer_claim: str = Field(default="", max_length=100)
    verified_customer_value: str = Field(default="", max_length=200)
    button_label: str = Field(default="", max_length=60)
    enabled: bool = True
    link_by_email: bool | None = Field(
        default=None,
        description="Link a member's account when the provider vouches for its confirmed "
        "address (site admins only; null or left out keeps it).",
    )


class SignInSettingsIn(BaseModel):
    """The brand's sign-in rules and provider; fields left out (or null) keep their value."""

    model_config = ConfigDict(extra="forbid")
    require_verified_email: bool | None = None
    require_staff_two_factor: bool | None = None
    password_sign_in: bool | None = None
    provider: ProviderIn | None = None


class ProviderOut(BaseModel):
    issuer: str
    client_id: str
    client_secret_set: bool = Field(description="Whether a secret is saved (never shown).")
    scopes: str
    display_name_claim: str
    verified_customer_claim: str
    verified_customer_value: str
    button_label: str
    enabled: bool
    link_by_email: bool


class SignInSettingsOut(BaseModel):
    require_verified_email: bool
    require_staff_two_factor: bool
    password_sign_in: bool
    provider: ProviderOut | None
    redirect_uri: str = Field(description="The address to register at the provider.")


def provider_of(db: Session, brand_id: int) -> SsoProvider | None:
    return db.scalar(select(SsoProvider).where(SsoProvider.brand_id == brand_id))


def open_brand(db: Session, slug: str) -> Brand | None:
    """The brand at /b/<slug> unless it is missing or archived (the login page's brand)."""
    return db.scalar(select(Brand).where(Brand.slug == slug, Brand.archived_at.is_(None)))


def enabled_provider(db: Session, brand_id: int) -> SsoProvider | None:
    provider = provider_of(db, brand_id)
    return provider if provider is not None and provider.enabled else None


def redirect_uri(settings: Settings, brand: Brand) -> str:
    return f"{brand_base_url(settings.base_url, brand.host)}/b/{brand.slug}/sso/callback"


def client_of(settings: Settings, brand: Brand, provider: SsoProvider) -> Client:
    """The brand's registration at its provider, the secret unsealed (for the token request)."""
    try:
        secret = (
            secretbox.unseal(settings.effective_secret_key, provider.client_secret)
            if provider.client_secret
            else ""
        )
    except secretbox.SecretUnreadable as exc:
        raise ClientSecretUnreadable from exc
    return Client(
        issuer=provider.issuer,
        client_id=provider.client_id,
        client_secret=secret,
        redirect_uri=redirect_uri(settings, brand),
        allow_private=settings.sso_allow_private_issuers,
    )


def settings_out(
    settings: Settings, brand: Brand, provider: SsoProvider | None
) -> SignInSettingsOut:
    shown = None
    if provider is not None:
        shown = ProviderOut(
            issuer=provider.issuer,
            client_id=provider.client_id,
            client_secret_set=bool(provider.client_secret),
            scopes=provider.scopes,
            display_name_claim=provider.display_name_claim,
            verified_customer_claim=provider.verified_customer_claim,
            verified_customer_value=provider.verified_customer_value,
            button_label=provider.button_label,
            enabled=provider.enabled,
            link_by_email=provider.link_by_email,
        )
    return SignInSettingsOut(
        require_verified_email=brand.require_verified_email,
        require_staff_two_factor=brand.require_staff_two_factor,
        password_sign_in=brand.password_sign_in,
        provider=shown,
        redirect_uri=redirect_uri(settings, brand),
    )


def _provider_errors(data: ProviderIn, has_secret: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not data.issuer:
        errors["issuer"] = _("Enter the provider's issuer URL.")
    elif "?" in data.issuer or "#" in data.issuer:
        errors["issuer"] = _("The issuer URL has no query or fragment.")
    if not data.client_id.strip():
        errors["client_id"] = _("Enter the client id the provider gave you.")
    if not data.client_secret and not has_secret:
        errors["client_secret"] = _("Enter the client secret the provider gave you.")
    scopes = data.scopes.split()
    if "openid" not in scopes:
        errors["scopes"] = _("The scopes must include openid.")
    elif not all(_SCOPE.match(scope) for scope in scopes):
        errors["scopes"] = _("Scopes are words separated by spaces, without quotes or backslashes.")
    if not _CLAIM_NAME.match(data.display_name_claim):
        errors["display_name_claim"] = _("Name a claim (letters, digits and _ . : / -).")
    claim = data.verified_customer_claim
    if claim and not _CLAIM_NAME.match(claim):
        errors["verified_customer_claim"] = _("Name a claim (letters, digits and _ . : / -).")
    if data.verified_customer_value and not claim:
        errors["verified_customer_value"] = _("Name the claim this value is read from.")
    return errors


def _check_issuer(settings: Settings, issuer: str) -> None:
    try:
        discover(issuer, allow_private=settings.sso_allow_private_issuers)
    except ProviderError as exc:
        raise FormErrors(
            {"issuer": _("This issuer cannot be used: %(reason)s") % {"reason": str(exc)}}
        ) from exc


def _shown(provider: SsoProvider | None) -> dict[str, Any] | None:
    """What the audit log keeps of a provider: everything but the secret."""
    if provider is None:
        return None
    fields = ProviderOut.model_fields.keys() - {"client_secret_set"}
    return {name: getattr(provider, name) for name in sorted(fields)}


def _errors(brand: Brand, provider: SsoProvider | None, data: SignInSettingsIn) -> dict[str, str]:
    errors: dict[str, str] = {}
    if data.provider is not None:
        errors = _provider_errors(data.provider, bool(provider and provider.client_secret))
    provider_on = data.provider.enabled if data.provider else bool(provider and provider.enabled)
    password_on = brand.password_sign_in if data.password_sign_in is None else data.password_sign_in
    if not password_on and not provider_on:
        errors["password_sign_in"] = _(
            "Password sign-in can only be turned off while single sign-on is set up and on."
        )
    return errors


def _save_provider(
    db: Session, settings: Settings, brand: Brand, provider: SsoProvider | None, wanted: ProviderIn
) -> tuple[SsoProvider, bool]:
    """The provider as sent (its issuer checked when new, changed or switched on), and whether
    a new secret was saved."""
    needs_check = wanted.enabled and (
        provider is None or provider.issuer != wanted.issuer or not provider.enabled
    )
    if needs_check:
        _check_issuer(settings, wanted.issuer)
    if provider is None:
        provider = SsoProvider(brand_id=brand.id)
        db.add(provider)
    for name in ProviderIn.model_fields.keys() - {"client_secret", "link_by_email"}:
        setattr(provider, name, getattr(wanted, name))
    if wanted.link_by_email is not None:
        provider.link_by_email = wanted.link_by_email
    if wanted.client_secret:
        provider.client_secret = secretbox.seal(settings.effective_secret_key, wanted.client_secret)
    provider.updated_at = utcnow()
    return provider, bool(wanted.client_secret)


def do_save_sign_in(
    db: Session,
    settings: Settings,
    actor: User,
    brand: Brand,
    data: SignInSettingsIn,
    *,
    ip: str | None = None,
) -> None:
    """Apply the brand's sign-in settings as sent. A FormErrors (422) names each wrong field
    and changes nothing; an issuer is checked (its discovery document fetched) when it is new,
    changed or switched on."""
    ensure_brand_admin(actor, brand.id)
    provider = provider_of(db, brand.id)
    wanted_link = data.provider.link_by_email if data.provider else None
    if wanted_link is not None and wanted_link != bool(provider and provider.link_by_email):
        ensure_admin(
            actor, _("Only site admins decide whether a provider's addresses link accounts.")
        )
    errors = _errors(brand, provider, data)
    if errors:
        raise FormErrors(errors)
    rules = {
        name: value
        for name in RULES
        if (value := getattr(data, name)) is not None and value != getattr(brand, name)
    }
    before_rules = {name: getattr(brand, name) for name in rules}
    before_provider = _shown(provider)
    secret_changed = False
    if data.provider is not None:
        provider, secret_changed = _save_provider(db, settings, brand, provider, data.provider)
    for name, value in rules.items():
        setattr(brand, name, value)
    after_provider = _shown(provider)
    if not rules and before_provider == after_provider and not secret_changed:
        return
    record_audit(
        db,
        actor=actor,
        action="brand.sign_in_updated",
        target_type="brand",
        target_id=brand.id,
        before={"rules": before_rules, "provider": before_provider},
        after={"rules": rules, "provider": after_provider, "client_secret_changed": secret_changed},
        ip=ip,
    )
    db.flush()
