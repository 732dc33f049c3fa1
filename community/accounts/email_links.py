"""Single-use links sent by e-mail: a password reset (30 minutes), a new account's address
confirmation (48 hours), a new address for an account (24 hours).

The token is 256 random bits, in the link only; the table keeps its SHA-256. Opening a link's
page does not use it up (mail scanners fetch every link in a message): the button on that page
does, once.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from community.core.account_models import EmailLink, LinkPurpose
from community.core.auth import hash_token
from community.core.clock import utcnow
from community.core.models import User

LIFETIMES: dict[LinkPurpose, timedelta] = {
    LinkPurpose.RESET_PASSWORD: timedelta(minutes=30),
    LinkPurpose.CONFIRM_EMAIL: timedelta(hours=48),
    LinkPurpose.CHANGE_EMAIL: timedelta(hours=24),
}
TOKEN_BYTES = 32
# A token in a URL is at most this long; longer input is not worth hashing.
_TOKEN_MAX = 100


def issue(db: Session, user: User, purpose: LinkPurpose, email: str) -> str:
    """A new link for `user` sent to `email`; returns the raw token (for the e-mail only)."""
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    db.add(
        EmailLink(
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_token(raw),
            email=email,
            created_at=now,
            expires_at=now + LIFETIMES[purpose],
        )
    )
    db.flush()
    return raw


def live_link(db: Session, raw: str, purpose: LinkPurpose) -> tuple[EmailLink, User] | None:
    """The link and its account when `raw` is a live link for `purpose` (not used, not expired,
    the account neither deactivated nor suspended); else None."""
    if not raw or len(raw) > _TOKEN_MAX:
        return None
    now = utcnow()
    row = db.execute(
        select(EmailLink, User)
        .join(User, User.id == EmailLink.user_id)
        .where(
            EmailLink.token_hash == hash_token(raw),
            EmailLink.purpose == purpose,
            EmailLink.used_at.is_(None),
            EmailLink.expires_at > now,
            User.deactivated_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    link, user = row
    if user.suspended_until is not None and user.suspended_until > now:
        return None
    return link, user


def use_up(db: Session, link: EmailLink) -> bool:
    """Mark the link used; False when another request used it first (the UPDATE decides)."""
    used = db.execute(
        update(EmailLink)
        .where(EmailLink.id == link.id, EmailLink.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.expire(link)
    return getattr(used, "rowcount", 0) == 1


def use_up_all(db: Session, user_id: int, purposes: Iterable[LinkPurpose]) -> None:
    """Every outstanding link of the account for these purposes stops working."""
    db.execute(
        update(EmailLink)
        .where(
            EmailLink.user_id == user_id,
            EmailLink.purpose.in_(list(purposes)),
            EmailLink.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def issued_since(db: Session, user_id: int, purpose: LinkPurpose, window: timedelta) -> bool:
    """Whether a link for `purpose` was made for the account within `window`."""
    recent = db.scalar(
        select(EmailLink.id)
        .where(
            EmailLink.user_id == user_id,
            EmailLink.purpose == purpose,
            EmailLink.created_at > utcnow() - window,
        )
        .limit(1)
    )
    return recent is not None


def masked(address: str) -> str:
    """An address as a notice shows it to someone who may not own it: n***@example.com."""
    local, _at, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"
