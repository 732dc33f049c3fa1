"""Account e-mails, sent by the worker after the request answered: password reset links,
sign-up confirmations (or, when the address already has an account, a note to its owner), new
confirmation links, and a change of address.

The request that asked never learns what happened here, so its answer cannot tell whether an
address has an account. Without SMTP_URL these e-mails are written as .eml files into
INSTANCE_DIR/mail/ (the embedded demo has no mail server, and a member must still be able to
follow a link); notifications and digests are not written there.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from community.accounts import email_links
from community.accounts.registration import (
    CHANGE_JOB,
    CHANGE_NOTICE_JOB,
    CONFIRM_JOB,
    RESET_JOB,
    SIGN_UP_JOB,
    address_in_use,
)
from community.core import i18n, outbox
from community.core.account_models import EmailLink, LinkPurpose, SignInChallenge, SsoAttempt
from community.core.brand_look import brand_base_url
from community.core.clock import utcnow
from community.core.db import no_queries
from community.core.i18n import gettext as _
from community.core.identity import IdentityError, normalise_email
from community.core.jobs import Worker
from community.core.mail import Mailer, email_templates
from community.core.models import Brand, User
from community.core.notifications import recipient_locale
from community.core.service import default_brand
from community.core.settings import Settings

logger = logging.getLogger(__name__)

# A confirmation link sent without the member asking (a sign-in attempt before confirming)
# goes out at most this often per account.
UNASKED_CONFIRMATION_INTERVAL = timedelta(minutes=10)
MAIL_FOLDER = "mail"
# Expired links, sign-in challenges and single sign-on trips are deleted this long after they
# expire (kept a while so a late click still finds "expired", not "unknown": the same page).
EXPIRED_KEPT_FOR = timedelta(days=1)


def register(worker: Worker) -> None:
    mail = AccountMail(worker.settings)
    worker.register(RESET_JOB, mail.send_reset_link)
    worker.register(SIGN_UP_JOB, mail.send_sign_up)
    worker.register(CONFIRM_JOB, mail.send_confirmation)
    worker.register(CHANGE_JOB, mail.send_change_link)
    worker.register(CHANGE_NOTICE_JOB, mail.send_change_notice)
    worker.every("expired sign-in records", timedelta(hours=1), forget_expired)


def forget_expired(db: Session) -> None:
    """Delete e-mailed links, sign-in challenges and single sign-on trips that expired a day
    ago: they can never be used again, and each held a hash of a secret."""
    before = utcnow() - EXPIRED_KEPT_FOR
    for model in (EmailLink, SignInChallenge, SsoAttempt):
        db.execute(delete(model).where(model.expires_at < before))


def _active(user: User | None) -> bool:
    """Deactivated and suspended accounts get no account e-mail (their links would not work)."""
    if user is None or user.deactivated_at is not None or not user.email:
        return False
    return user.suspended_until is None or user.suspended_until <= utcnow()


class AccountMail:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mailer = Mailer(settings)
        self.emails = email_templates()

    # --- jobs ----------------------------------------------------------------------------

    def send_reset_link(self, db: Session, event: outbox.OutboxEvent) -> None:
        key = str(event.payload.get("email") or "")
        user = db.scalar(select(User).where(User.email_key == key)) if key else None
        if user is None or not _active(user):
            return  # nobody to tell: the page said the same as for a known address
        assert user.email is not None
        raw = email_links.issue(db, user, LinkPurpose.RESET_PASSWORD, user.email)
        brand = self._brand(db, event)
        with i18n.override(self._locale(user, brand)):
            self._send(
                user.email,
                _("Reset your password"),
                user=user,
                brand=brand,
                paragraphs=[
                    _("Someone, hopefully you, asked to reset the password of your account."),
                    _(
                        "Open this link within 30 minutes to choose a new one. It works once. "
                        "Every device signed in to your account will be signed out."
                    ),
                    _("If you did not ask for this, ignore this e-mail: nothing changes."),
                ],
                link=f"{self._base()}/password/reset/{raw}",
                link_label=_("Choose a new password"),
            )

    def send_sign_up(self, db: Session, event: outbox.OutboxEvent) -> None:
        user = db.get(User, event.payload.get("user_id"))
        if user is None or not _active(user):
            return
        assert user.email is not None
        brand = self._brand(db, event)
        if not event.payload.get("taken"):
            self._send_confirmation_link(db, user, brand)
            return
        with i18n.override(self._locale(user, brand)):
            self._send(
                user.email,
                _("Someone tried to sign up with your address"),
                user=user,
                brand=brand,
                paragraphs=[
                    _(
                        "Someone tried to create a new account with this e-mail address, "
                        "which already has an account (username %(username)s)."
                    )
                    % {"username": user.username},
                    _(
                        "If it was you, sign in instead; if you forgot your password, "
                        "reset it with the link below. If it was not you, ignore this e-mail."
                    ),
                ],
                link=f"{self._base()}/password/forgot",
                link_label=_("Reset my password"),
            )

    def send_confirmation(self, db: Session, event: outbox.OutboxEvent) -> None:
        user = db.get(User, event.payload.get("user_id"))
        if user is None or not _active(user) or user.email_verified_at is not None:
            return
        if event.payload.get("only_if_none_recent") and email_links.issued_since(
            db, user.id, LinkPurpose.CONFIRM_EMAIL, UNASKED_CONFIRMATION_INTERVAL
        ):
            return
        self._send_confirmation_link(db, user, self._brand(db, event))

    def send_change_link(self, db: Session, event: outbox.OutboxEvent) -> None:
        user = db.get(User, event.payload.get("user_id"))
        if user is None or not _active(user):
            return
        try:
            new_address, key = normalise_email(str(event.payload.get("email") or ""))
        except IdentityError:
            return
        brand = self._brand(db, event)
        base = self._base()
        owner = address_in_use(db, key, besides=user.id)
        if owner is not None and owner.email:
            with i18n.override(self._locale(owner, brand)):
                self._send(
                    owner.email,
                    _("Someone tried to use your address"),
                    user=owner,
                    brand=brand,
                    paragraphs=[
                        _(
                            "Someone tried to move another account to this e-mail address, "
                            "which already has an account (yours). Nothing was changed."
                        ),
                        _("If you forgot your password, you can reset it with the link below."),
                    ],
                    link=f"{base}/password/forgot",
                    link_label=_("Reset my password"),
                )
        elif owner is None:
            raw = email_links.issue(db, user, LinkPurpose.CHANGE_EMAIL, new_address)
            with i18n.override(self._locale(user, brand)):
                self._send(
                    new_address,
                    _("Confirm your new e-mail address"),
                    user=user,
                    brand=brand,
                    paragraphs=[
                        _(
                            "Open this link within 24 hours to make this the e-mail address "
                            "of your account (username %(username)s)."
                        )
                        % {"username": user.username},
                        _("If you did not ask for this, ignore this e-mail: nothing changes."),
                    ],
                    link=f"{base}/email/change/{raw}",
                    link_label=_("Use this address"),
                )

    def send_change_notice(self, db: Session, event: outbox.OutboxEvent) -> None:
        """The old address hears of the change (the same whether or not the new one is free).
        A job of its own: see registration.request_email_change."""
        user = db.get(User, event.payload.get("user_id"))
        old_address = str(event.payload.get("old_email") or "")
        new_address = str(event.payload.get("email") or "")
        if user is None or not _active(user) or not old_address or not new_address:
            return
        brand = self._brand(db, event)
        with i18n.override(self._locale(user, brand)):
            self._send(
                old_address,
                _("Your e-mail address is being changed"),
                user=user,
                brand=brand,
                paragraphs=[
                    _(
                        "Someone signed in to your account asked to change its e-mail address "
                        "to %(address)s. It changes when the link sent there is opened."
                    )
                    % {"address": email_links.masked(new_address)},
                    _(
                        "If this was not you, reset your password now: that signs out every "
                        "device and cancels the change."
                    ),
                ],
                link=f"{self._base()}/password/forgot",
                link_label=_("Reset my password"),
            )

    def _send_confirmation_link(self, db: Session, user: User, brand: Brand | None) -> None:
        assert user.email is not None
        raw = email_links.issue(db, user, LinkPurpose.CONFIRM_EMAIL, user.email)
        with i18n.override(self._locale(user, brand)):
            self._send(
                user.email,
                _("Confirm your e-mail address"),
                user=user,
                brand=brand,
                paragraphs=[
                    _("Welcome! Open this link within 48 hours to confirm your address."),
                    _("If you did not sign up, ignore this e-mail: the account stays unused."),
                ],
                link=f"{self._base()}/email/confirm/{raw}",
                link_label=_("Confirm my address"),
            )

    def _brand(self, db: Session, event: outbox.OutboxEvent) -> Brand | None:
        """The brand the request was made in, else the site's default brand."""
        brand_id = event.payload.get("brand_id")
        brand = db.get(Brand, brand_id) if isinstance(brand_id, int) else None
        if brand is None or brand.archived_at is not None:
            brand = default_brand(db, self.settings.default_brand)
        return brand

    def _base(self) -> str:
        """Links go to the site's own address (BASE_URL), never to a brand's host: that is
        whatever the brand's admins typed (or a name whose DNS lapsed), and these links carry
        a secret for an account the requester may not own (the request chooses the brand by
        its Host). The e-mail still speaks in the brand's name."""
        return brand_base_url(self.settings.base_url, None)

    def _locale(self, user: User, brand: Brand | None) -> str:
        return recipient_locale(user, brand.default_locale if brand else None)

    def _send(
        self,
        to: str,
        subject: str,
        *,
        user: User,
        brand: Brand | None,
        paragraphs: Sequence[str],
        link: str,
        link_label: str,
    ) -> None:
        context = {
            "user": user,
            "site_name": brand.name if brand else _("the community"),
            "paragraphs": paragraphs,
            "link": link,
            "link_label": link_label,
            "base_url": self._base(),
        }
        with no_queries("email/account_message", strict=self.settings.strict_queries):
            text = self.emails.get_template("account_message.txt").render(**context)
            html = self.emails.get_template("account_message.html").render(**context)
        message = self.mailer.compose(to, subject, text, html)
        if self.mailer.enabled:
            self.mailer.deliver(message)
            return
        folder = self.settings.instance_path / MAIL_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{utcnow():%Y%m%dT%H%M%S}-{secrets.token_hex(4)}.eml"
        _write_private(path, message.as_bytes())
        # The path only: the link inside is a secret, and logs are read by more people.
        logger.info("SMTP_URL is not set: account e-mail written to %s", path)


def _write_private(path: Path, content: bytes) -> None:
    path.touch(mode=0o600)
    path.write_bytes(content)
