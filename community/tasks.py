"""The community's background jobs: a published post's notifications, vote milestones,
notification e-mails (one per notification or a daily digest); `register` adds them to the
worker."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from community import visibility
from community.core import i18n, notifications, outbox
from community.core.brand_look import brand_base_url
from community.core.clock import utcnow
from community.core.db import begin_write, no_queries
from community.core.jobs import Worker
from community.core.mail import Mailer, email_templates, stable_message_id
from community.core.models import Brand, EmailPreference, Notification, Thread, User
from community.core.service import default_brand
from community.core.settings import Settings

DIGEST_INTERVAL = timedelta(days=1)
DIGEST_MAX_ITEMS = 50


def register(worker: Worker) -> None:
    mail = NotificationMail(worker.settings, worker.session_factory)
    worker.register(notifications.EMAIL_EVENT, mail.send_notification_email)
    worker.register(notifications.MILESTONE_EVENT, notifications.send_milestone)
    worker.register(visibility.ANNOUNCE_EVENT, visibility.announce)
    worker.every("digests", timedelta(minutes=5), mail.send_digests)


class NotificationMail:
    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.mailer = Mailer(settings)
        self.emails = email_templates()

    def _render(self, name: str, **context: object) -> str:
        # Like a page, an e-mail renders what was loaded for it and never queries.
        with no_queries(f"email/{name}", strict=self.settings.strict_queries):
            return self.emails.get_template(name).render(base_url=self.settings.base_url, **context)

    def _link(self, db: Session, notification: Notification) -> str:
        """The notification's page, on its brand's own host name when the brand has one."""
        brand = db.get(Brand, notification.thread.brand_id) if notification.thread else None
        base = brand_base_url(self.settings.base_url, brand.host if brand else None)
        return base + notifications.target_path(notification)

    def send_notification_email(self, db: Session, event: outbox.OutboxEvent) -> None:
        notification = db.get(Notification, event.payload.get("notification_id"))
        if notification is None or notification.emailed_at or notification.read_at:
            return
        if not notifications.is_shown(db, notification):
            return  # its content was hidden, held or deleted before the e-mail went out
        user = db.get(User, notification.user_id)
        if (
            user is None
            or not user.email
            or user.deactivated_at is not None
            or user.email_notifications != EmailPreference.IMMEDIATE
            or not self.mailer.enabled
        ):
            return
        with i18n.override(self._locale_for(db, user, notification.thread)):
            subject = notifications.describe(notification)
            context = {
                "user": user,
                "subject": subject,
                "link": self._link(db, notification),
            }
            text = self._render("notification.txt", **context)
            html = self._render("notification.html", **context)
        self.mailer.send(
            user.email,
            subject,
            text,
            html,
            message_id=stable_message_id(self.settings, "notification", notification.id),
        )
        notification.emailed_at = utcnow()

    def _locale_for(self, db: Session, user: User, thread: Thread | None) -> str:
        """The recipient's language: theirs, else the default language of the brand the
        notification is about (or of the site's default brand)."""
        if thread is not None:
            brand_locale: str | None = thread.forum.brand.default_locale
        else:
            brand = default_brand(db, self.settings.default_brand)
            brand_locale = brand.default_locale if brand is not None else None
        return notifications.recipient_locale(user, brand_locale)

    def send_digests(self, db: Session) -> None:
        """One e-mail a day with what daily-digest readers have not seen yet."""
        if not self.mailer.enabled:
            return
        now = utcnow()
        since = func.coalesce(User.digest_sent_at, User.created_at)
        pending = exists().where(
            and_(
                Notification.user_id == User.id,
                Notification.read_at.is_(None),
                Notification.emailed_at.is_(None),
                Notification.kind.not_in(sorted(notifications.IN_APP_ONLY)),
            )
        )
        due = list(
            db.scalars(
                select(User.id).where(
                    User.email_notifications == EmailPreference.DAILY,
                    User.email.is_not(None),
                    User.deactivated_at.is_(None),
                    since <= now - DIGEST_INTERVAL,
                    pending,
                )
            )
        )
        db.rollback()
        for user_id in due:
            self._send_digest(user_id)

    def _send_digest(self, user_id: int) -> None:
        with self.session_factory() as db:
            begin_write(db)
            user = db.get(User, user_id)
            if user is None or not user.email:
                return
            previous = user.digest_sent_at
            now = utcnow()
            claimed = db.execute(
                update(User)
                .where(User.id == user_id, User.digest_sent_at.is_not_distinct_from(previous))
                .values(digest_sent_at=now)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                db.rollback()
                return  # another worker is sending this digest
            items = list(
                db.scalars(
                    notifications.only_shown(
                        select(Notification)
                        .where(
                            Notification.user_id == user_id,
                            Notification.read_at.is_(None),
                            Notification.emailed_at.is_(None),
                            Notification.kind.not_in(sorted(notifications.IN_APP_ONLY)),
                        )
                        .order_by(Notification.id)
                        .limit(DIGEST_MAX_ITEMS)
                    )
                )
            )
            if not items:
                db.rollback()
                return
            with i18n.override(self._locale_for(db, user, items[0].thread)):
                lines = [
                    (notifications.describe(item), self._link(db, item))
                    for item in items
                ]  # fmt: skip
                subject = i18n.ngettext(
                    "Your daily summary: %(count)d new notification",
                    "Your daily summary: %(count)d new notifications",
                    len(items),
                ) % {"count": len(items)}
                text = self._render("digest.txt", user=user, subject=subject, items=lines)
                html = self._render("digest.html", user=user, subject=subject, items=lines)
            # Sent again after a failed commit, the same items make the same Message-ID.
            message_id = stable_message_id(
                self.settings, "digest", user.id, *(item.id for item in items)
            )
            self.mailer.send(user.email, subject, text, html, message_id=message_id)
            for item in items:
                item.emailed_at = now
            db.commit()
