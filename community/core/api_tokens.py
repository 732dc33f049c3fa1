"""Personal API tokens for integrations: `Authorization: Bearer cmt_...`.

The raw token is shown once at creation; only its SHA-256 is stored. A request that carries a
bearer token is authenticated by it alone (cookies are ignored), so it needs no CSRF token: a
browser never attaches such a header to a cross-site request on its own.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from community.core.account_models import TwoFactor
from community.core.auth import (
    ANONYMOUS,
    Viewer,
    acting_viewer,
    hash_token,
    may_sign_in,
    viewer_of,
)
from community.core.clock import utcnow
from community.core.db import begin_write
from community.core.errors import FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.models import NO_GRANTS, ApiToken, User
from community.core.staff import brand_roles_of, has_grants

PREFIX = "cmt_"
MAX_TOKENS_PER_USER = 20
# Recording last use on every call would make every API read a write.
_TOUCH_INTERVAL = timedelta(minutes=5)


def create_token(
    db: Session, user: User, name: str, *, session_two_factor: bool = True
) -> tuple[ApiToken, str]:
    """`session_two_factor`: the session asking passed the second factor its brands require
    (or they require none). A token acts without a browser session (see viewer_for_token), so
    staff whose brands require a second factor make one only from a session that passed it."""
    label = " ".join(name.split())[:60]
    if not label:
        raise FormErrors({"name": _("Give the token a name.")})
    if not session_two_factor:
        raise FormErrors(
            {
                "name": _(
                    "Your brands require two-factor sign-in of their staff: confirm this "
                    "session with a code first (Two-factor sign-in, above)."
                )
            }
        )
    active = list_tokens(db, user)
    if len(active) >= MAX_TOKENS_PER_USER:
        raise FormErrors({"name": _("Revoke an old token first.")})
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=label, token_hash=hash_token(raw), prefix=raw[:10])
    db.add(token)
    db.flush()
    return token, raw


def list_tokens(db: Session, user: User) -> list[ApiToken]:
    return list(
        db.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.id)
        )
    )


def revoke_token(db: Session, user: User, token_id: int) -> None:
    token = db.get(ApiToken, token_id)
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        raise NotFound()
    token.revoked_at = utcnow()


def revoke_all_tokens(db: Session, user_id: int) -> None:
    """Every live token of the account stops working (a password reset, or a change that
    asked for it)."""
    db.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def viewer_for_token(db: Session, raw: str) -> Viewer:
    if not raw.startswith(PREFIX) or len(raw) > 128:
        return ANONYMOUS
    # Whether the owner has an authenticator on: a token counts as having passed a second
    # factor then (it was made from a session that could, and it is revoked, not signed out).
    owner_two_factor = exists().where(
        TwoFactor.user_id == User.id, TwoFactor.enabled_at.is_not(None)
    )
    row = db.execute(
        select(ApiToken, User, has_grants(User.id), owner_two_factor)
        .join(User, User.id == ApiToken.user_id)
        .where(
            ApiToken.token_hash == hash_token(raw),
            ApiToken.revoked_at.is_(None),
            may_sign_in(utcnow()),
        )
    ).first()
    if row is None:
        return ANONYMOUS
    token, user, granted, two_factor = row
    viewer = acting_viewer(
        db,
        viewer_of(
            user,
            brand_roles=brand_roles_of(db, user.id) if granted else NO_GRANTS,
            two_factor=bool(two_factor),
        ),
    )
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_INTERVAL:
        token_id = token.id
        db.rollback()
        try:
            begin_write(db)
            db.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
            db.commit()
        except OperationalError:  # a busy database delays the note, never the request
            db.rollback()
    return viewer
