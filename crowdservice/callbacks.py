"""The helpdesk's signed call-back: the ticket it opened for an escalation (reference, status,
link), posted to /api/v1/helpdesk/escalations/{id}.

It is signed like our deliveries (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
`webhook-signature`) with the secret of one of the brand's active webhooks, and a timestamp
more than five minutes off is refused. Within those five minutes a captured call-back could be
sent again, so two more rules apply:

- A repeat (the same `webhook-id` from the same webhook) is answered like the first, so the
  helpdesk does not retry forever, but changes nothing. Call-backs are remembered until ten
  minutes after their timestamp; after that the signature check refuses them anyway.
- A call-back sent before the one the escalation shows (an older `webhook-timestamp`) is
  answered but not applied, so a late retry or a replayed message cannot set an older ticket
  status back. Ticket statuses are the helpdesk's own words, in no order we could know, so the
  helpdesk's clock decides. Call-backs sent in the same second apply in the order they arrive.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks import WebhookVerificationError

from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import AppError, NotFound
from community.core.i18n import gettext as _
from crowdservice.models import Escalation, HelpdeskCallback, Webhook

logger = logging.getLogger(__name__)

# Standard Webhooks accepts a timestamp up to five minutes either side of now; a call-back is
# remembered a little longer than it could be accepted.
REMEMBER_FOR = timedelta(minutes=10)


class SignatureInvalid(AppError):
    """A call-back whose Standard Webhooks signature is missing, wrong or stale."""

    status_code = 401
    code = "invalid_signature"


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    REPEAT = "repeat"  # this webhook-id was seen already
    OLDER = "older"  # sent before the call-back the escalation shows


@dataclass(frozen=True, slots=True)
class VerifiedCallback:
    escalation: Escalation
    webhook: Webhook  # whose secret signed it
    message_id: str  # `webhook-id`
    sent_at: datetime  # `webhook-timestamp`


def verify_callback(
    db: Session, escalation_id: int, body: bytes, headers: Mapping[str, str]
) -> VerifiedCallback:
    """The escalation, the webhook whose secret signed this call-back, and its id and time.

    NotFound for an unknown escalation; SignatureInvalid unless one of the active webhooks of
    the escalation's brand signed exactly these bytes within the last five minutes."""
    escalation = db.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFound()
    webhooks = db.scalars(
        select(Webhook)
        .where(Webhook.brand_id == escalation.brand_id, Webhook.active.is_(True))
        .order_by(Webhook.id)
    )
    plain_headers = {key.lower(): value for key, value in headers.items()}
    for webhook in webhooks:
        try:
            StandardWebhook(webhook.secret).verify(body, plain_headers, json_parse=False)
        except (WebhookVerificationError, ValueError, TypeError):
            # ValueError covers malformed signatures and bodies that are not UTF-8.
            continue
        # Read as the library read it to check the signature (whole seconds are signed).
        seconds = math.floor(float(plain_headers["webhook-timestamp"]))
        return VerifiedCallback(
            escalation=escalation,
            webhook=webhook,
            message_id=plain_headers["webhook-id"],
            sent_at=datetime.fromtimestamp(seconds, tz=UTC),
        )
    raise SignatureInvalid(_("The call-back signature is missing, invalid or too old."))


def _first_time(db: Session, callback: VerifiedCallback) -> bool:
    """Remember this call-back; False if it was seen already. The unique key decides, so two
    copies arriving at once cannot both count as the first."""
    now = utcnow()
    db.execute(delete(HelpdeskCallback).where(HelpdeskCallback.sent_at < now - REMEMBER_FOR))
    seen = HelpdeskCallback(
        webhook_id=callback.webhook.id,
        message_key=hashlib.sha256(callback.message_id.encode()).hexdigest(),
        sent_at=callback.sent_at,
        received_at=now,
    )
    try:
        with db.begin_nested():
            db.add(seen)
            db.flush()
    except IntegrityError:
        return False
    return True


def record_ticket(
    db: Session, callback: VerifiedCallback, *, ticket_ref: str, status: str, url: str | None
) -> Outcome:
    """Store the helpdesk's ticket on the escalation (audited as an automatic action), unless
    this call-back is a repeat or older than the one already applied."""
    if not _first_time(db, callback):
        logger.info("helpdesk call-back %r repeated: not applied again", callback.message_id)
        return Outcome.REPEAT
    escalation = callback.escalation
    # One call-back at a time per escalation (PostgreSQL; SQLite writers are serialised), so
    # the newer of two concurrent ones is the one that stays.
    db.execute(select(Escalation.id).where(Escalation.id == escalation.id).with_for_update())
    db.refresh(escalation)
    if escalation.ticket_sent_at is not None and callback.sent_at < escalation.ticket_sent_at:
        logger.info(
            "helpdesk call-back %r sent at %s is older than the one applied (%s): not applied",
            callback.message_id, callback.sent_at.isoformat(),
            escalation.ticket_sent_at.isoformat(),
        )  # fmt: skip
        return Outcome.OLDER
    before = {
        "ticket_ref": escalation.ticket_ref,
        "ticket_status": escalation.ticket_status,
        "ticket_url": escalation.ticket_url,
    }
    escalation.ticket_ref = ticket_ref
    escalation.ticket_status = status
    escalation.ticket_url = url
    escalation.ticket_sent_at = callback.sent_at
    escalation.updated_at = utcnow()
    db.flush()
    record_audit(
        db, actor=None, action="escalation.ticket_updated", target_type="escalation",
        target_id=escalation.id, before=before,
        after={"ticket_ref": ticket_ref, "ticket_status": status, "ticket_url": url,
               "webhook_id": callback.webhook.id, "sent_at": callback.sent_at.isoformat()},
    )  # fmt: skip
    return Outcome.APPLIED
