"""Account security tables: sessions, API tokens, e-mailed links, second factors and single
sign-on. Kept apart from community.core.models (which re-exports UserSession and ApiToken);
these tables only point at users and brands.

Every secret a browser or an e-mail carries (session cookies, API tokens, e-mailed links,
sign-in challenges, SSO states, recovery codes) is stored as its SHA-256 only. Secrets the site
must read back (TOTP seeds, SSO client secrets) are encrypted with community.core.secretbox.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from community.core.clock import utcnow
from community.core.db import Base, BigIntId, JSONDocument, UTCDateTime, str_enum

if TYPE_CHECKING:
    from community.core.models import User


class UserSession(Base):
    """A server-side login session. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    # When this session's sign-in passed a second factor (a TOTP or recovery code); staff
    # pages of brands that require one refuse sessions without it.
    two_factor_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A personal token for integrations (Authorization: Bearer). Only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class LinkPurpose(enum.StrEnum):
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose, not a password
    CONFIRM_EMAIL = "confirm_email"  # a new account's address (or one not confirmed yet)
    CHANGE_EMAIL = "change_email"  # a new address, applied only once its link is opened


class EmailLink(Base):
    """A single-use link sent by e-mail. Only the token's hash is kept; `email` is the address
    it was sent to (for CHANGE_EMAIL, the address that becomes the account's when opened)."""

    __tablename__ = "email_links"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[LinkPurpose] = mapped_column(str_enum(LinkPurpose))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TwoFactor(Base):
    """A member's TOTP authenticator. `secret` is encrypted (secretbox); `enabled_at` is None
    while the member is still setting it up; `last_step` is the newest time step accepted, so
    a code cannot be used twice."""

    __tablename__ = "two_factor"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(Text)
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecoveryCode(Base):
    """A single-use code that stands in for the authenticator (hashed)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignInChallenge(Base):
    """A sign-in that proved the first factor (a password or single sign-on) and waits for the
    second. The browser holds the token in a short-lived cookie; attempts are counted."""

    __tablename__ = "sign_in_challenges"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    next_url: Mapped[str] = mapped_column(String(500), default="/")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SsoProvider(Base):
    """A brand's OpenID Connect provider, set up by the brand's admin. `client_secret` is
    encrypted (secretbox) and never sent to a browser."""

    __tablename__ = "sso_providers"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), unique=True)
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret: Mapped[str] = mapped_column(Text, default="")
    scopes: Mapped[str] = mapped_column(String(500), default="openid email profile")
    # The claim shown as the member's display name, and the claim (with, optionally, the value
    # it must hold or contain) that marks a member as the brand's verified customer.
    display_name_claim: Mapped[str] = mapped_column(String(100), default="name")
    verified_customer_claim: Mapped[str] = mapped_column(String(100), default="")
    verified_customer_value: Mapped[str] = mapped_column(String(200), default="")
    button_label: Mapped[str] = mapped_column(String(60), default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    # Whether an address this provider vouches for (`email_verified`) links the member's
    # account here without its password. Accounts are shared by every brand and a brand's
    # admins run its provider, so only a site admin may turn this on.
    link_by_email: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExternalIdentity(Base):
    """A member's account at a brand's provider (issuer's `sub`), linked to their account here."""

    __tablename__ = "external_identities"
    __table_args__ = (UniqueConstraint("provider_id", "subject"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("sso_providers.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SsoAttempt(Base):
    """One trip to the provider and back: the state (hashed), the nonce and the PKCE verifier,
    bound to the browser that started it (`browser_hash`: its session cookie's hash). After the
    callback it keeps the provider's checked claims until the member finishes (creates or
    links an account); each step uses it once."""

    __tablename__ = "sso_attempts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("sso_providers.id", ondelete="CASCADE"))
    browser_hash: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_url: Mapped[str] = mapped_column(String(500), default="/")
    claims: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    called_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
