"""The webhooks admins manage for a brand: the events they receive, the signing secret, and the
URL guard. URLs that resolve to private, loopback, link-local, multicast or reserved addresses
are refused (server-side request forgery) unless the admin allowed them for testing; the check
runs when the URL is saved and again at each delivery (`delivery`)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from community.core import netguard
from community.core.audit import record_audit
from community.core.errors import FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.models import Brand, User
from community.core.policy import ensure_admin
from crowdservice.models import Webhook

EVENTS = (
    "escalation.created",
    "escalation.handed_off",
    "escalation.resolved",
    "escalation.returned",
)
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 24
MAX_URL_LENGTH = netguard.MAX_URL_LENGTH


# --- URLs and the SSRF guard (community.core.netguard, shared with brands' embedding services) ---

_Target = netguard.Target
_Refused = netguard.Refused
_checked_addresses = netguard.checked_addresses
is_public_address = netguard.is_public_address


def parse_url(url: str) -> _Target:
    return netguard.parse_url(
        url,
        missing=_("Enter the URL of the helpdesk's webhook endpoint."),
        credentials=_("Do not put a user name or password in the URL: deliveries are signed."),
    )


def check_url(url: str, *, allow_private: bool) -> str:
    """The cleaned URL, or FormErrors({"url": why}) if deliveries may not go there."""
    cleaned = url.strip()
    try:
        _checked_addresses(parse_url(cleaned), allow_private=allow_private)
    except _Refused as exc:
        raise FormErrors({"url": str(exc)}) from exc
    return cleaned


# --- managing webhooks (admins) ----------------------------------------------------------------


def _check_events(events: list[str]) -> list[str]:
    chosen = [event for event in EVENTS if event in set(events)]
    if not chosen or len(set(events)) != len(chosen):
        raise FormErrors({"events": _("Choose at least one of the offered events.")})
    return chosen


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def masked_secret(secret: str) -> str:
    """What the admin pages show after creation: enough to tell secrets apart, no more."""
    return secret[: len(SECRET_PREFIX) + 4] + "…"


def _checked_settings(
    url: str, events: list[str] | None, *, allow_private: bool, unchanged: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """The cleaned URL and events (`unchanged` where `events` is None), checked together so
    that the form shows every error at once."""
    errors: dict[str, str] = {}
    cleaned = url
    chosen = list(unchanged)
    try:
        cleaned = check_url(url, allow_private=allow_private)
    except FormErrors as exc:
        errors |= exc.errors
    if events is not None:
        try:
            chosen = _check_events(events)
        except FormErrors as exc:
            errors |= exc.errors
    if errors:
        raise FormErrors(errors)
    return cleaned, chosen


def _described(webhook: Webhook) -> dict[str, Any]:
    # Never the secret: audit rows are read by more people than the webhook settings.
    return {
        "url": webhook.url,
        "events": list(webhook.events),
        "active": webhook.active,
        "allow_private": webhook.allow_private,
        "brand_id": webhook.brand_id,
    }


def create_webhook(
    db: Session,
    admin: User,
    brand: Brand,
    *,
    url: str,
    events: list[str],
    allow_private: bool,
    ip: str | None = None,
) -> tuple[Webhook, str]:
    """A new webhook and its secret (the only time the secret is handed out)."""
    ensure_admin(admin)
    cleaned, chosen = _checked_settings(url, events, allow_private=allow_private)
    secret = new_secret()
    webhook = Webhook(
        brand_id=brand.id,
        url=cleaned,
        secret=secret,
        events=chosen,
        active=True,
        allow_private=allow_private,
        created_by_id=admin.id,
    )
    db.add(webhook)
    db.flush()
    record_audit(
        db, actor=admin, action="webhook.created", target_type="webhook", target_id=webhook.id,
        after=_described(webhook), ip=ip,
    )  # fmt: skip
    return webhook, secret


def update_webhook(
    db: Session,
    admin: User,
    webhook: Webhook,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    allow_private: bool | None = None,
    active: bool | None = None,
    ip: str | None = None,
) -> Webhook:
    """Change what is given; the URL is checked again against the (new) private setting."""
    ensure_admin(admin)
    before = _described(webhook)
    new_allow = webhook.allow_private if allow_private is None else allow_private
    new_url, chosen = _checked_settings(
        webhook.url if url is None else url,
        events,
        allow_private=new_allow,
        unchanged=webhook.events,
    )
    webhook.url = new_url
    webhook.allow_private = new_allow
    webhook.events = chosen
    if active is not None:
        webhook.active = active
    db.flush()
    record_audit(
        db, actor=admin, action="webhook.updated", target_type="webhook", target_id=webhook.id,
        before=before, after=_described(webhook), ip=ip,
    )  # fmt: skip
    return webhook


def delete_webhook(db: Session, admin: User, webhook: Webhook, *, ip: str | None = None) -> None:
    """Remove the webhook with its deliveries and their log (the audit row remains)."""
    ensure_admin(admin)
    record_audit(
        db, actor=admin, action="webhook.deleted", target_type="webhook", target_id=webhook.id,
        before=_described(webhook), ip=ip,
    )  # fmt: skip
    db.delete(webhook)
    db.flush()


def rotate_secret(db: Session, admin: User, webhook: Webhook, *, ip: str | None = None) -> str:
    """A new secret, effective for the next attempt (and for call-backs) at once."""
    ensure_admin(admin)
    webhook.secret = new_secret()
    db.flush()
    record_audit(
        db, actor=admin, action="webhook.secret_rotated", target_type="webhook",
        target_id=webhook.id, after={"secret_prefix": masked_secret(webhook.secret)}, ip=ip,
    )  # fmt: skip
    return webhook.secret


def get_webhook(db: Session, brand: Brand, webhook_id: int) -> Webhook:
    webhook = db.get(Webhook, webhook_id)
    if webhook is None or webhook.brand_id != brand.id:
        raise NotFound()
    return webhook
