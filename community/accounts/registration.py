"""Accounts whose address is proved by an e-mailed link: confirm-first sign-up, password reset,
and a change of address that applies only once the new address's link is opened.

No request here tells whether an address has an account: the request records one outbox job
(community.accounts.tasks) whatever the address, and the job, after the answer was sent, looks
the account up and e-mails the owner. Services flush; routes commit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from community.accounts import email_links
from community.core import outbox, service
from community.core.account_models import EmailLink, LinkPurpose
from community.core.api_tokens import revoke_all_tokens
from community.core.audit import record_audit
from community.core.auth import Passwords, revoke_user_sessions
from community.core.clock import utcnow
from community.core.errors import AppError, Conflict, FormErrors
from community.core.i18n import gettext as _
from community.core.identity import IdentityError, check_password_policy, normalise_email
from community.core.models import User
from community.core.schemas import RegistrationIn

# Outbox jobs (handled by community.accounts.tasks).
RESET_JOB = "accounts.reset_password"
SIGN_UP_JOB = "accounts.sign_up"
CONFIRM_JOB = "accounts.confirm_email"
CHANGE_JOB = "accounts.change_email"
CHANGE_NOTICE_JOB = "accounts.change_email_notice"


class LinkGone(AppError):
    """An e-mailed link that expired, was used, or never existed (all look the same)."""

    status_code = 410
    code = "link_gone"


def _address_key(raw: str, field: str = "email") -> tuple[str, str]:
    try:
        return normalise_email(raw)
    except IdentityError as exc:
        raise FormErrors({field: str(exc)}) from exc


# --- password reset --------------------------------------------------------------------------


def request_password_reset(db: Session, raw_address: str, *, brand_id: int | None) -> str:
    """Record the reset job for the address and return its key. The account is NOT looked up
    here: the same statements run for every address, known or not."""
    _address, key = _address_key(raw_address)
    outbox.enqueue(db, RESET_JOB, {"email": key, "brand_id": brand_id})
    return key


def reset_password(
    db: Session,
    passwords: Passwords,
    link: EmailLink,
    user: User,
    new_password: str,
    *,
    ip: str | None,
) -> None:
    """Set the new password from a live reset link: the link and every other link of the
    account (reset, confirmation, change of address) is used up, every session and API token
    of the account ends, and the address counts as confirmed (its owner read the link)."""
    try:
        check_password_policy(new_password, user_inputs=[user.username, user.email or ""])
    except IdentityError as exc:
        raise FormErrors({"password": str(exc)}) from exc
    if not email_links.use_up(db, link):
        raise LinkGone(gone_message())
    now = utcnow()
    user.password_hash = passwords.hash(new_password)
    user.password_changed_at = now
    if user.email_verified_at is None:
        user.email_verified_at = now
    # Every link ends, a pending change of address too: it may be an intruder's (the notice to
    # the old address says a reset cancels it).
    email_links.use_up_all(db, user.id, list(LinkPurpose))
    revoke_user_sessions(db, user.id)
    revoke_all_tokens(db, user.id)
    record_audit(
        db,
        actor=user,
        action="user.password_reset",
        target_type="user",
        target_id=user.id,
        after={"sessions": "revoked", "api_tokens": "revoked"},
        ip=ip,
    )


def gone_message() -> str:
    return _("This link has expired or was already used. Ask for a new one.")


# --- sign-up and confirmation ----------------------------------------------------------------


def sign_up(
    db: Session, passwords: Passwords, data: RegistrationIn, *, brand_id: int | None
) -> str:
    """Create an unconfirmed account and have its confirmation link e-mailed; when the address
    already has an account, have its owner told instead. Returns the address, for the page,
    which is the same either way (FormErrors for input the form must show)."""
    try:
        user = service.register(db, passwords, data)
        payload = {"user_id": user.id, "brand_id": brand_id, "taken": False}
        address = user.email or ""
    except service.AddressTaken as taken:
        payload = {"user_id": taken.owner.id, "brand_id": brand_id, "taken": True}
        address = _address_key(data.email)[0]
    outbox.enqueue(db, SIGN_UP_JOB, payload)
    return address


def send_confirmation(
    db: Session, user: User, *, brand_id: int | None, only_if_none_recent: bool
) -> None:
    """Have a fresh confirmation link e-mailed (`only_if_none_recent`: not if one went out in
    the last few minutes, for links sent without the member asking)."""
    if user.email_verified_at is not None or not user.email:
        return
    outbox.enqueue(
        db,
        CONFIRM_JOB,
        {"user_id": user.id, "brand_id": brand_id, "only_if_none_recent": only_if_none_recent},
    )


def confirm_address(db: Session, link: EmailLink, user: User) -> None:
    """The member opened the link sent to their address: it is confirmed."""
    if not email_links.use_up(db, link):
        raise LinkGone(gone_message())
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    email_links.use_up_all(db, user.id, [LinkPurpose.CONFIRM_EMAIL])


# --- change of address -----------------------------------------------------------------------


def request_email_change(
    db: Session,
    passwords: Passwords,
    user: User,
    new_address: str,
    current_password: str,
    *,
    brand_id: int | None,
) -> str:
    """Check the member's password and have the new address's link e-mailed (the change waits
    for it); returns the new address. Whether the address belongs to someone else is decided
    by the job, not here."""
    errors: dict[str, str] = {}
    address = key = ""
    try:
        address, key = normalise_email(new_address)
    except IdentityError as exc:
        errors["new_email"] = str(exc)
    if not errors and key == user.email_key:
        errors["new_email"] = _("That is already your address.")
    if not passwords.verify(user.password_hash, current_password):
        errors["email_password"] = _("Your current password is not right.")
    if errors:
        raise FormErrors(errors)
    # Two jobs: the old address's notice failing (a mailbox that no longer exists, often why
    # the address changes) must not undo or repeat the new address's link. The notice names
    # the address it goes to: by the time it is sent the change may have applied.
    outbox.enqueue(
        db,
        CHANGE_NOTICE_JOB,
        {"user_id": user.id, "old_email": user.email, "email": address, "brand_id": brand_id},
    )
    outbox.enqueue(db, CHANGE_JOB, {"user_id": user.id, "email": address, "brand_id": brand_id})
    return address


def address_in_use(db: Session, key: str, *, besides: int | None = None) -> User | None:
    statement = select(User).where(User.email_key == key)
    if besides is not None:
        statement = statement.where(User.id != besides)
    return db.scalar(statement)


def apply_email_change(db: Session, link: EmailLink, user: User, *, ip: str | None) -> str:
    """The new address's link was opened: it becomes the account's, confirmed. Every
    outstanding link of the account stops working. Returns the new address."""
    address, key = normalise_email(link.email)
    if address_in_use(db, key, besides=user.id) is not None:
        raise Conflict(_("That address now belongs to another account, so it cannot be yours."))
    if not email_links.use_up(db, link):
        raise LinkGone(gone_message())
    before = {"email": user.email}
    user.email, user.email_key, user.email_verified_at = address, key, utcnow()
    email_links.use_up_all(db, user.id, list(LinkPurpose))
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError as exc:
        # Another account took the address between the check and now; the unique index decided.
        raise Conflict(
            _("That address now belongs to another account, so it cannot be yours.")
        ) from exc
    record_audit(
        db,
        actor=user,
        action="user.email_changed",
        target_type="user",
        target_id=user.id,
        before=before,
        after={"email": address},
        ip=ip,
    )
    return address
