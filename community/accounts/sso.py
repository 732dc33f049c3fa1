"""Single sign-on with a brand's OpenID Connect provider (Authorization Code with PKCE).

A trip there and back is one `SsoAttempt`: `start` makes it (a random state, stored hashed; a
nonce; a PKCE verifier) bound to the browser that asked (its session cookie's hash), and sends
the browser to the provider. `call_back` takes the attempt once, exchanges the code (client
secret and verifier), checks the ID token (signature against the provider's keys, issuer,
audience, authorized party, expiry, nonce) and reads userinfo (its `sub` must be the token's).
`resolve` then finds the member: a known identity; or, only when the provider says the address
is verified, the local account whose confirmed address it is (linked, and told by e-mail).
Otherwise the member chooses (`create_account` or `link_account`, with a password) within 30
minutes, in the same browser. An unverified address never matches anything: anyone can type
someone else's address into an account at a provider.

Services flush and never commit. Every refusal is an AppError with a 4xx (or, for a provider
that fails, 502) status, and none changes anything but marking the attempt used.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from authlib.common.security import generate_token  # type: ignore[import-untyped]
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from community.accounts import oidc
from community.accounts.oidc import ProviderError
from community.accounts.sso_config import client_of
from community.core import i18n, outbox, policy, policy_identity
from community.core.account_models import ExternalIdentity, SsoAttempt, SsoProvider
from community.core.brand_look import brand_base_url
from community.core.clock import utcnow
from community.core.errors import AppError, FormErrors
from community.core.i18n import gettext as _
from community.core.identity import (
    IdentityError,
    normalise_display_name,
    normalise_email,
    normalise_username,
)
from community.core.jobs import Worker
from community.core.mail import Mailer, email_templates, stable_message_id
from community.core.models import Brand, User
from community.core.settings import Settings
from community.core.staff import load_brand_roles

ATTEMPT_LIFETIME = timedelta(minutes=10)
CHOICE_LIFETIME = timedelta(minutes=30)
LINKED_EVENT = "accounts.sso_linked"


class AttemptInvalid(AppError):
    status_code = 400
    code = "sso_attempt_invalid"

    def __init__(self) -> None:
        super().__init__(_("This sign-in link is no longer valid; start again."))


class ProviderFailed(AppError):
    """The provider refused or answered wrongly (a 502: the fault is not the visitor's)."""

    status_code = 502
    code = "sso_provider_failed"


class SignInRefused(AppError):
    """The provider said no (the visitor cancelled, say), or the account may not sign in."""

    status_code = 403
    code = "sso_refused"


@dataclass(frozen=True, slots=True)
class Identity:
    """What the provider vouched for, as kept on the attempt until the member chooses."""

    sub: str
    email: str | None
    email_verified: bool
    display_name: str
    preferred_username: str
    verified_customer: bool | None  # None: the brand reads no such claim


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def browser_hash(session_token: str | None) -> str:
    if not session_token:
        raise AttemptInvalid  # no cookie, nothing to bind the attempt to
    return token_hash(f"sso-browser:{session_token}")


# --- there: the provider's sign-in page -------------------------------------------------------


def start(
    db: Session,
    settings: Settings,
    brand: Brand,
    provider: SsoProvider,
    *,
    session_token: str | None,
    next_url: str,
) -> str:
    """A new attempt; the provider's address to send the browser to."""
    bound_to = browser_hash(session_token)
    client = client_of(settings, brand, provider)
    discovery = _discover(client)
    state, nonce, verifier = generate_token(43), generate_token(32), generate_token(64)
    now = utcnow()
    db.add(
        SsoAttempt(
            state_hash=token_hash(state),
            provider_id=provider.id,
            browser_hash=bound_to,
            nonce=nonce,
            code_verifier=verifier,
            next_url=next_url[:500],
            created_at=now,
            expires_at=now + ATTEMPT_LIFETIME,
        )
    )
    db.flush()
    try:
        return oidc.authorization_url(
            client,
            discovery.authorization_endpoint,
            scope=provider.scopes,
            state=state,
            nonce=nonce,
            verifier=verifier,
        )
    except ProviderError as exc:
        raise ProviderFailed(str(exc)) from exc


def _discover(client: oidc.Client) -> oidc.Discovery:
    try:
        return oidc.discover(client.issuer, allow_private=client.allow_private)
    except ProviderError as exc:
        raise ProviderFailed(str(exc)) from exc


# --- back: the callback ----------------------------------------------------------------------


def take_attempt(
    db: Session, provider: SsoProvider, state: str, session_token: str | None
) -> SsoAttempt:
    """The attempt this callback belongs to, marked called back: once, in the browser that
    started it, before it expires. The mark is a conditional UPDATE, so two callbacks with the
    same state racing each other get it once between them."""
    bound_to = browser_hash(session_token)
    attempt = db.scalar(
        select(SsoAttempt).where(
            SsoAttempt.state_hash == token_hash(state), SsoAttempt.provider_id == provider.id
        )
    ) if state else None  # fmt: skip
    now = utcnow()
    if attempt is None or attempt.browser_hash != bound_to or attempt.expires_at <= now:
        raise AttemptInvalid
    taken = db.execute(
        update(SsoAttempt)
        .where(SsoAttempt.id == attempt.id, SsoAttempt.called_back_at.is_(None))
        .values(called_back_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise AttemptInvalid
    db.refresh(attempt)
    return attempt


def call_back(
    db: Session,
    settings: Settings,
    brand: Brand,
    provider: SsoProvider,
    attempt: SsoAttempt,
    params: dict[str, str],
) -> Identity:
    """The provider's answer for a taken attempt, checked, as an Identity."""
    if params.get("error"):
        raise SignInRefused(
            _("%(provider)s did not sign you in (%(error)s). You can start again.")
            % {"provider": label_of(brand, provider), "error": params["error"][:100]}
        )
    code = params.get("code")
    if not code:
        raise ProviderFailed(_("The provider sent no authorization code."))
    client = client_of(settings, brand, provider)
    discovery = _discover(client)
    try:
        tokens = oidc.exchange_code(client, discovery.token_endpoint, code, attempt.code_verifier)
        now = int(utcnow().timestamp())
        claims = oidc.checked_id_token(
            client, discovery.jwks_uri, tokens, nonce=attempt.nonce, now=now
        )
        access_token = tokens.get("access_token")
        if discovery.userinfo_endpoint and isinstance(access_token, str):
            more = oidc.userinfo(client, discovery.userinfo_endpoint, access_token)
            if more.get("sub") != claims["sub"]:
                raise ProviderFailed(_("The provider's userinfo is about someone else."))
            claims = more | claims  # the signed token's claims win
    except ProviderError as exc:
        raise ProviderFailed(str(exc)) from exc
    return _identity(provider, claims)


def _text(value: object, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _identity(provider: SsoProvider, claims: dict[str, Any]) -> Identity:
    email = _text(claims.get("email"), 254) or None
    verified = claims.get("email_verified") in (True, "true")
    return Identity(
        sub=_text(claims["sub"], 255),
        email=email,
        email_verified=bool(email) and verified,
        display_name=_text(claims.get(provider.display_name_claim), 200),
        preferred_username=_text(claims.get("preferred_username"), 100),
        verified_customer=verified_customer(provider, claims),
    )


def verified_customer(provider: SsoProvider, claims: dict[str, Any]) -> bool | None:
    """Whether the claims mark a verified customer (None: the brand reads no such claim).
    With a value set, the claim must equal it or, for a list, contain it; without one, the
    claim must be true."""
    name = provider.verified_customer_claim
    if not name:
        return None
    value, wanted = claims.get(name), provider.verified_customer_value

    def as_text(item: object) -> str:
        return str(item).lower() if isinstance(item, bool) else str(item)

    if not wanted:
        return value is True or as_text(value).lower() in ("true", "yes", "1")
    if isinstance(value, list):
        return wanted in (as_text(item) for item in value)
    return value is not None and as_text(value) == wanted


def label_of(brand: Brand, provider: SsoProvider) -> str:
    return provider.button_label or brand.name


# --- who it is -------------------------------------------------------------------------------


def resolve(
    db: Session, provider: SsoProvider, attempt: SsoAttempt, identity: Identity
) -> User | None:
    """The member this identity signs in as (linked now if need be), or None: they choose,
    and the attempt keeps the identity for CHOICE_LIFETIME."""
    linked = db.scalar(
        select(ExternalIdentity).where(
            ExternalIdentity.provider_id == provider.id, ExternalIdentity.subject == identity.sub
        )
    )
    if linked is not None:
        user = db.get(User, linked.user_id)
        assert user is not None  # the foreign key cascades
        _signed_in(linked, user, identity)
        _finish(db, attempt)
        return user
    owner = _confirmed_owner(db, identity) if provider.link_by_email else None
    if owner is not None:
        _link(db, provider, owner, identity)
        _finish(db, attempt)
        outbox.enqueue(db, LINKED_EVENT, {"user_id": owner.id, "brand_id": provider.brand_id})
        return owner
    attempt.claims = {
        "sub": identity.sub, "email": identity.email, "email_verified": identity.email_verified,
        "display_name": identity.display_name, "preferred_username": identity.preferred_username,
        "verified_customer": identity.verified_customer,
    }  # fmt: skip
    attempt.expires_at = utcnow() + CHOICE_LIFETIME
    db.flush()
    return None


def _confirmed_owner(db: Session, identity: Identity) -> User | None:
    if not (identity.email and identity.email_verified):
        return None  # an address the provider does not vouch for is only text someone typed
    try:
        _, key = normalise_email(identity.email)
    except IdentityError:
        return None
    owner = db.scalar(
        select(User).where(
            User.email_key == key,
            User.email_verified_at.is_not(None),
            User.deactivated_at.is_(None),
        )
    )
    # A brand's admins run its provider, so it vouches for whatever they make it say: linked by
    # an address, a staff account (site admins, another brand's moderators) would be theirs.
    # Staff link with their password, like any address the provider does not vouch for.
    if owner is None or policy.is_staff(load_brand_roles(db, owner)):
        return None
    return owner


def _signed_in(linked: ExternalIdentity, user: User, identity: Identity) -> None:
    linked.last_sign_in_at = utcnow()
    linked.email = identity.email
    if identity.verified_customer is not None:
        user.verified_customer = identity.verified_customer


def _link(db: Session, provider: SsoProvider, user: User, identity: Identity) -> None:
    linked = ExternalIdentity(
        provider_id=provider.id, subject=identity.sub, user_id=user.id, email=identity.email
    )
    _signed_in(linked, user, identity)
    try:
        with db.begin_nested():
            db.add(linked)
            db.flush()
    except IntegrityError as exc:  # the same identity linked at once by another request
        raise AttemptInvalid from exc


def _finish(db: Session, attempt: SsoAttempt) -> None:
    """Use the attempt up (once: a conditional UPDATE, as for the callback)."""
    finished = db.execute(
        update(SsoAttempt)
        .where(SsoAttempt.id == attempt.id, SsoAttempt.finished_at.is_(None))
        .values(finished_at=utcnow(), claims=None)
        .execution_options(synchronize_session=False)
    )
    if finished.rowcount != 1:  # type: ignore[attr-defined]
        raise AttemptInvalid


# --- the member's choice ---------------------------------------------------------------------


def choice_attempt(
    db: Session, provider: SsoProvider, session_token: str | None
) -> tuple[SsoAttempt, Identity]:
    """This browser's attempt waiting for the member to create or link an account."""
    attempt = db.scalar(
        select(SsoAttempt)
        .where(
            SsoAttempt.provider_id == provider.id,
            SsoAttempt.browser_hash == browser_hash(session_token),
            SsoAttempt.called_back_at.is_not(None),
            SsoAttempt.finished_at.is_(None),
            SsoAttempt.expires_at > utcnow(),
        )
        .order_by(SsoAttempt.id.desc())
        .limit(1)
    )
    if attempt is None or not attempt.claims:
        raise AttemptInvalid
    return attempt, Identity(**attempt.claims)


def suggested_username(db: Session, identity: Identity) -> str:
    """A free username from the provider's preferred one or the address's local part."""
    source = identity.preferred_username or (identity.email or "").partition("@")[0]
    base = "".join(ch for ch in source if ch.isascii() and (ch.isalnum() or ch in "_.-"))
    base = base.lstrip("_.-")[:24] or "member"
    if len(base) < 3:
        base = f"{base}{'0' * (3 - len(base))}"
    for number in range(0, 1000):
        candidate = base if number == 0 else f"{base}{number}"
        try:
            _, key = normalise_username(candidate)
        except IdentityError:
            continue
        if db.scalar(select(User.id).where(User.username_key == key)) is None:
            return candidate
    return f"member{generate_token(8).lower()}"


def address_for_new_account(db: Session, identity: Identity) -> tuple[str, str] | None:
    """The address (and its key) a new account gets: the provider's, only when it vouches for
    it and no account has it (that account's owner links by password instead)."""
    if not (identity.email and identity.email_verified):
        return None
    try:
        email, key = normalise_email(identity.email)
    except IdentityError:
        return None
    if db.scalar(select(User.id).where(User.email_key == key)) is not None:
        return None
    return email, key


def create_account(
    db: Session, provider: SsoProvider, attempt: SsoAttempt, identity: Identity, username: str
) -> User:
    """A new account for the identity: no password, the provider's address (confirmed) only
    when it vouches for it and no account has it."""
    try:
        shown, key = normalise_username(username)
    except IdentityError as exc:
        raise FormErrors({"username": str(exc)}) from exc
    if db.scalar(select(User.id).where(User.username_key == key)) is not None:
        raise FormErrors({"username": _("That username is taken.")})
    try:
        display_name = normalise_display_name(identity.display_name[:60], fallback=shown)
    except IdentityError:
        display_name = shown
    address = address_for_new_account(db, identity)
    email, email_key = address if address else (None, None)
    user = User(
        username=shown, username_key=key, email=email, email_key=email_key,
        email_verified_at=utcnow() if email else None, display_name=display_name,
        password_hash=None, verified_customer=bool(identity.verified_customer),
    )  # fmt: skip
    try:
        with db.begin_nested():
            db.add(user)
            db.flush()
    except IntegrityError as exc:  # the name or address taken at the same moment
        raise FormErrors({"username": _("That username is taken.")}) from exc
    _link(db, provider, user, identity)
    _finish(db, attempt)
    return user


def link_account(
    db: Session, provider: SsoProvider, attempt: SsoAttempt, identity: Identity, user: User
) -> None:
    """Link the identity to `user`, who has just proved their password."""
    policy_identity.ensure_may_sign_in(user)
    already = db.scalar(
        select(ExternalIdentity.id).where(
            ExternalIdentity.provider_id == provider.id, ExternalIdentity.user_id == user.id
        )
    )
    if already is not None:
        raise FormErrors(
            {"login": _("That account is already linked to another sign-in at this provider.")}
        )
    _link(db, provider, user, identity)
    _finish(db, attempt)


# --- the e-mail telling an account it was linked ---------------------------------------------


def register(worker: Worker) -> None:
    worker.register(LINKED_EVENT, LinkNotice(worker.settings).send)


class LinkNotice:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mailer = Mailer(settings)
        self.emails = email_templates()

    def send(self, db: Session, event: outbox.OutboxEvent) -> None:
        user = db.get(User, event.payload.get("user_id"))
        brand = db.get(Brand, event.payload.get("brand_id"))
        if user is None or brand is None or not user.email or not self.mailer.enabled:
            return
        with i18n.override(user.locale or brand.default_locale or "en"):
            context = {
                "user": user,
                "brand": brand,
                "account_url": brand_base_url(self.settings.base_url, brand.host) + "/account",
            }
            subject = _("Your account was linked to %(brand)s sign-in") % {"brand": brand.name}
            text = self.emails.get_template("sso_linked.txt").render(**context)
            html = self.emails.get_template("sso_linked.html").render(**context)
        self.mailer.send(
            user.email,
            subject,
            text,
            html,
            message_id=stable_message_id(self.settings, "sso-linked", event.id),
        )
