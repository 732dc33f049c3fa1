"""Background work: draining the outbox (e-mail today; search indexing and webhooks later) and
periodic sweeps (daily digests).

`community worker` runs it as its own process; embedded mode runs it on a thread inside
`community serve`. Any number of workers can run on PostgreSQL: outbox rows are claimed with
SKIP LOCKED and sweeps claim their work with conditional updates, so nothing is done twice.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from community import i18n, notifications, outbox
from community.clock import utcnow
from community.db import begin_write
from community.mail import Mailer, email_templates, stable_message_id
from community.models import EmailPreference, Notification, Thread, User
from community.service import default_brand
from community.settings import Settings
from kb import search_model_tasks as kb_search_model_tasks
from kb import tasks as kb_tasks
from kb.search import SearchEngine

logger = logging.getLogger(__name__)

Handler = Callable[[Session, outbox.OutboxEvent], None]
# Batch handlers do their database work in the given session and return what to do after it
# commits (writes to other systems), so no database lock is held while those run.
BatchHandler = Callable[[Session, list[outbox.OutboxEvent]], Callable[[], None] | None]
DIGEST_INTERVAL = timedelta(days=1)
DIGEST_MAX_ITEMS = 50


@dataclass
class Periodic:
    name: str
    every: timedelta
    run: Callable[[Session], None]
    last_run: datetime | None = field(default=None)


class Worker:
    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.worker_id = worker_id or f"{socket.gethostname()[:20]}-{uuid.uuid4().hex[:8]}"
        self.mailer = Mailer(settings)
        self.emails = email_templates()
        self.handlers: dict[str, Handler] = {
            notifications.EMAIL_EVENT: self._send_notification_email,
        }
        self.batch_handlers: dict[str, BatchHandler] = {}
        self.periodic = [
            Periodic("digests", timedelta(minutes=5), self._send_digests),
            Periodic("trust and suspensions", timedelta(minutes=10), self._moderation_sweep),
            # Escalation deadlines are minutes long (P1: 10); a sweep every 30 s keeps them.
            Periodic("escalations", timedelta(seconds=30), self._escalation_sweep),
        ]
        self.search = SearchEngine(settings)
        self.indexer = kb_tasks.register(self, self.search)
        kb_search_model_tasks.register(self, self.indexer)
        from crowdservice import webhooks as crowd_webhooks  # crowd-service builds on community

        crowd_webhooks.register(self)

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def register_batch(self, kind: str, handler: BatchHandler) -> None:
        """A handler that takes every claimed event of its kind at once (one index write)."""
        self.batch_handlers[kind] = handler

    # --- the loop ------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Drain what is due now and run the sweeps whose time has come."""
        processed = self.drain_outbox()
        self.run_periodic()
        return processed

    def run_forever(self, stop: threading.Event) -> None:
        logger.info("worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                logger.exception("worker cycle failed; continuing")
                busy = 0
            if not busy:
                stop.wait(self.settings.worker_poll_seconds)
        logger.info("worker %s stopped", self.worker_id)

    def drain_outbox(self, limit: int = 50) -> int:
        with self.session_factory() as db:
            begin_write(db)
            claimed = [
                (event.id, event.kind) for event in outbox.claim(db, self.worker_id, limit=limit)
            ]
            db.commit()
        batches: dict[str, list[int]] = {}
        for event_id, kind in claimed:
            if kind in self.batch_handlers:
                batches.setdefault(kind, []).append(event_id)
            else:
                self._handle(event_id)
        for kind, event_ids in batches.items():
            self._handle_batch(kind, event_ids)
        return len(claimed)

    def _handle_batch(self, kind: str, event_ids: list[int]) -> None:
        try:
            with self.session_factory() as db:
                begin_write(db)
                events = [
                    event
                    for event in db.scalars(
                        select(outbox.OutboxEvent).where(outbox.OutboxEvent.id.in_(event_ids))
                    )
                    if event.done_at is None and event.claimed_by == self.worker_id
                ]
                if not events:
                    return
                mine = [event.id for event in events]
                after_commit = self.batch_handlers[kind](db, events)
                db.commit()
            if after_commit is not None:
                after_commit()
            with self.session_factory() as db:
                begin_write(db)
                for event in db.scalars(
                    select(outbox.OutboxEvent).where(outbox.OutboxEvent.id.in_(mine))
                ):
                    outbox.mark_done(db, event)
                db.commit()
            return
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("%d outbox events (%s) failed: %s", len(event_ids), kind, error)
        with self.session_factory() as db:
            begin_write(db)
            for event in db.scalars(
                select(outbox.OutboxEvent).where(outbox.OutboxEvent.id.in_(event_ids))
            ):
                if event.done_at is None:
                    outbox.mark_failed(db, event, error)
            db.commit()

    def _handle(self, event_id: int) -> None:
        with self.session_factory() as db:
            begin_write(db)
            event = db.get(outbox.OutboxEvent, event_id)
            if event is None or event.done_at is not None or event.claimed_by != self.worker_id:
                return
            handler = self.handlers.get(event.kind)
            try:
                if handler is None:
                    raise LookupError(f"no handler for outbox events of kind {event.kind!r}")
                handler(db, event)
                outbox.mark_done(db, event)
                db.commit()
                return
            except Exception as exc:
                db.rollback()
                error = f"{type(exc).__name__}: {exc}"
                logger.warning("outbox event %s (%s) failed: %s", event_id, event.kind, error)
        with self.session_factory() as db:
            begin_write(db)
            failed = db.get(outbox.OutboxEvent, event_id)
            if failed is not None:
                outbox.mark_failed(db, failed, error)
                db.commit()

    def run_periodic(self) -> None:
        now = utcnow()
        for task in self.periodic:
            if task.last_run is not None and now - task.last_run < task.every:
                continue
            task.last_run = now
            with self.session_factory() as db:
                try:
                    task.run(db)
                    db.commit()
                except Exception:
                    db.rollback()
                    logger.exception("periodic task %s failed", task.name)

    # --- e-mail --------------------------------------------------------------------------------

    def _render(self, name: str, **context: object) -> str:
        return self.emails.get_template(name).render(base_url=self.settings.base_url, **context)

    def _send_notification_email(self, db: Session, event: outbox.OutboxEvent) -> None:
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
                "link": self.settings.base_url + notifications.target_path(notification),
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

    def _moderation_sweep(self, db: Session) -> None:
        # Imported here: moderation builds on community, not the other way round.
        from moderation import accounts, trust

        begin_write(db)
        promoted = trust.promote_active_members(db)
        ended = accounts.end_expired_suspensions(db)
        if promoted or ended:
            logger.info("trust levels raised: %d; suspensions ended: %d", promoted, ended)

    def _escalation_sweep(self, db: Session) -> None:
        from crowdservice import escalation  # crowd-service builds on community

        begin_write(db)
        report = escalation.sweep(db)
        logger.debug("escalation sweep: %s", report)

    def _send_digests(self, db: Session) -> None:
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
                    (notifications.describe(item),
                     self.settings.base_url + notifications.target_path(item))
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


def start_in_background(worker: Worker) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), name="worker", daemon=True)
    thread.start()
    return thread, stop
