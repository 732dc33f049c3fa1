"""Helpdesk webhooks: the admins' pages (list, create, edit, rotate, delete, the delivery log with
manual redelivery) and the helpdesk's signed call-back (JSON, /api/v1/helpdesk/...).

The call-back is authenticated by its Standard Webhooks signature, not by a cookie, so it is
exempt from the app-wide CSRF check (see community.core.security)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from community.api import ERRORS
from community.core import service as community_service
from community.core.auth import Admin, client_ip
from community.core.db import SessionDep
from community.core.errors import FormErrors
from community.core.i18n import gettext as _
from community.core.models import Brand
from community.core.web import flash_redirect, render
from crowdservice import callbacks, webhooks
from crowdservice.models import Escalation, EscalationStatus, Webhook

router = APIRouter()
FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]


# --- admin pages -----------------------------------------------------------------------------


def _list_context(db: Session, brand: Brand) -> dict[str, Any]:
    hooks = webhooks.brand_webhooks(db, brand)
    return {
        "brand": brand,
        "webhooks": hooks,
        "counts": webhooks.delivery_counts(db, [hook.id for hook in hooks]),
        "events": webhooks.EVENTS,
        "masked": webhooks.masked_secret,
        "errors": {},
        "form": {"url": "", "events": ["escalation.handed_off"], "allow_private": False},
        "new_secret": None,
        "secret_for": None,
    }


def _list_page(
    request: Request, db: Session, brand: Brand, *, status_code: int = 200, **extra: Any
) -> Response:
    return render(
        request,
        "crowdservice/webhooks.html",
        _list_context(db, brand) | extra,
        status_code=status_code,
    )


def _log_page(
    request: Request, db: Session, webhook: Webhook, *, status_code: int = 200, **extra: Any
) -> Response:
    log = webhooks.delivery_log(db, webhook)
    context: dict[str, Any] = {
        "brand": webhook.brand,
        "webhook": webhook,
        "deliveries": log.deliveries,
        "attempts": log.attempts,
        "events": webhooks.EVENTS,
        "masked": webhooks.masked_secret,
        "errors": {},
        "form": {
            "url": webhook.url,
            "events": list(webhook.events),
            "allow_private": webhook.allow_private,
            "active": webhook.active,
        },
    } | extra
    return render(
        request,
        "crowdservice/webhook_log.html",
        context,
        status_code=status_code,
        block="deliveries",
    )


@router.get(
    "/admin/brands/{brand_slug}/webhooks",
    response_class=HTMLResponse,
    name="admin_webhooks",
    include_in_schema=False,
)
def webhooks_page(request: Request, db: SessionDep, user: Admin, brand_slug: str) -> Response:
    return _list_page(request, db, community_service.get_brand(db, brand_slug))


@router.post(
    "/admin/brands/{brand_slug}/webhooks",
    response_class=HTMLResponse,
    name="admin_webhook_create",
    include_in_schema=False,
)
def create_webhook(
    request: Request,
    db: SessionDep,
    user: Admin,
    brand_slug: str,
    url: FormText = "",
    events: FormList = [],  # noqa: B006 - FastAPI's form lists
    allow_private: FormText = "",
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    wants_private = allow_private == "1"
    try:
        webhook, secret = webhooks.create_webhook(
            db, user, brand, url=url[:2000], events=events, allow_private=wants_private,
            ip=client_ip(request),
        )  # fmt: skip
    except FormErrors as exc:
        db.rollback()
        form = {"url": url[:2000], "events": events, "allow_private": wants_private}
        return _list_page(request, db, brand, status_code=422, errors=exc.errors, form=form)
    db.commit()
    # Shown on this response only: the secret is never put in a redirect, a cookie or a log.
    return _list_page(request, db, brand, new_secret=secret, secret_for=webhook.id)


def _brand_webhook(db: Session, brand_slug: str, webhook_id: int) -> Webhook:
    brand = community_service.get_brand(db, brand_slug)
    return webhooks.get_webhook(db, brand, webhook_id)


@router.get(
    "/admin/brands/{brand_slug}/webhooks/{webhook_id}",
    response_class=HTMLResponse,
    name="admin_webhook_log",
    include_in_schema=False,
)
def webhook_log(
    request: Request, db: SessionDep, user: Admin, brand_slug: str, webhook_id: int
) -> Response:
    return _log_page(request, db, _brand_webhook(db, brand_slug, webhook_id))


@router.post(
    "/admin/brands/{brand_slug}/webhooks/{webhook_id}",
    response_class=HTMLResponse,
    name="admin_webhook_update",
    include_in_schema=False,
)
def update_webhook(
    request: Request,
    db: SessionDep,
    user: Admin,
    brand_slug: str,
    webhook_id: int,
    url: FormText = "",
    events: FormList = [],  # noqa: B006 - FastAPI's form lists
    allow_private: FormText = "",
    active: FormText = "",
) -> Response:
    webhook = _brand_webhook(db, brand_slug, webhook_id)
    try:
        webhooks.update_webhook(
            db, user, webhook, url=url[:2000], events=events,
            allow_private=allow_private == "1", active=active == "1", ip=client_ip(request),
        )  # fmt: skip
    except FormErrors as exc:
        db.rollback()
        form = {
            "url": url[:2000],
            "events": events,
            "allow_private": allow_private == "1",
            "active": active == "1",
        }
        webhook = _brand_webhook(db, brand_slug, webhook_id)
        return _log_page(request, db, webhook, status_code=422, errors=exc.errors, form=form)
    db.commit()
    return flash_redirect(
        request, f"/admin/brands/{brand_slug}/webhooks/{webhook.id}", _("Webhook saved.")
    )


@router.post(
    "/admin/brands/{brand_slug}/webhooks/{webhook_id}/rotate",
    response_class=HTMLResponse,
    name="admin_webhook_rotate",
    include_in_schema=False,
)
def rotate_secret(
    request: Request, db: SessionDep, user: Admin, brand_slug: str, webhook_id: int
) -> Response:
    webhook = _brand_webhook(db, brand_slug, webhook_id)
    secret = webhooks.rotate_secret(db, user, webhook, ip=client_ip(request))
    db.commit()
    return _list_page(request, db, webhook.brand, new_secret=secret, secret_for=webhook.id)


@router.post(
    "/admin/brands/{brand_slug}/webhooks/{webhook_id}/delete",
    name="admin_webhook_delete",
    include_in_schema=False,
)
def delete_webhook(
    request: Request, db: SessionDep, user: Admin, brand_slug: str, webhook_id: int
) -> Response:
    webhook = _brand_webhook(db, brand_slug, webhook_id)
    webhooks.delete_webhook(db, user, webhook, ip=client_ip(request))
    db.commit()
    return flash_redirect(request, f"/admin/brands/{brand_slug}/webhooks", _("Webhook deleted."))


@router.post(
    "/admin/webhook-deliveries/{delivery_id}/redeliver",
    name="admin_webhook_redeliver",
    include_in_schema=False,
)
def redeliver(request: Request, db: SessionDep, user: Admin, delivery_id: int) -> Response:
    delivery = webhooks.get_delivery(db, delivery_id)
    webhooks.redeliver(db, user, delivery, ip=client_ip(request))
    db.commit()
    webhook = delivery.webhook
    return flash_redirect(
        request,
        f"/admin/brands/{webhook.brand.slug}/webhooks/{webhook.id}",
        _("The delivery will be sent again in a moment."),
    )


# --- the helpdesk's call-back ----------------------------------------------------------------


def _plain_text(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("control characters are not allowed")
    return value


def _https_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    _plain_text(value)
    if " " in value:
        raise ValueError("a URL has no spaces")
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValueError("not a valid URL") from exc
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise ValueError("an https:// URL with a host (and no user name or password) is required")
    return value


class HelpdeskTicketIn(BaseModel):
    """What the helpdesk reports about the ticket it opened for an escalation."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    ticket_ref: Annotated[str, AfterValidator(_plain_text)] = Field(min_length=1, max_length=120)
    status: Annotated[str, AfterValidator(_plain_text)] = Field(min_length=1, max_length=60)
    url: Annotated[str | None, AfterValidator(_https_url)] = Field(default=None, max_length=500)


class HelpdeskTicketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: EscalationStatus
    ticket_ref: str | None
    ticket_status: str | None
    ticket_url: str | None


async def _raw_body(request: Request) -> bytes:
    # The signature covers the exact bytes, so the body is read raw and parsed after checking.
    return await request.body()


@router.post(
    "/api/v1/helpdesk/escalations/{escalation_id}",
    response_model=HelpdeskTicketOut,
    responses=ERRORS,  # type: ignore[arg-type]
    tags=["crowd-service"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": HelpdeskTicketIn.model_json_schema()}},
        }
    },
)
def helpdesk_callback(
    request: Request,
    db: SessionDep,
    escalation_id: int,
    body: Annotated[bytes, Depends(_raw_body)],
) -> Escalation:
    """The helpdesk reports the ticket it opened for an escalation (reference, status, link).

    Signed like our deliveries (Standard Webhooks headers `webhook-id`, `webhook-timestamp`,
    `webhook-signature`) with the secret of one of the brand's active webhooks; timestamps more
    than five minutes off are refused. A repeat of a call-back (same `webhook-id`), or one sent
    before the call-back already applied, is answered with the escalation as it is and changes
    nothing."""
    callback = callbacks.verify_callback(db, escalation_id, body, request.headers)
    try:
        ticket = HelpdeskTicketIn.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from exc
    callbacks.record_ticket(
        db, callback, ticket_ref=ticket.ticket_ref, status=ticket.status, url=ticket.url
    )
    db.commit()
    return callback.escalation
