"""Pages for e-mailed links: "Forgot password?", the reset link, a new account's confirmation
link, a new address's link, and the account page's change of address.

A link's page (GET) never uses the link up: mail scanners and link previews fetch it. Its
button (POST, with the CSRF token) does. Pages with a token in their address are not cached
and send no Referer, so the token does not leak to another site or a shared cache.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from community.accounts import email_links, registration
from community.core.account_models import LinkPurpose
from community.core.auth import CurrentUser, client_ip
from community.core.db import SessionDep
from community.core.errors import FormErrors
from community.core.i18n import gettext as _
from community.core.ratelimit import RateLimiter, limited
from community.core.web import current_brand, flash_redirect, render
from community.routes import _account_context

router = APIRouter(include_in_schema=False)

FormField = Annotated[str, Form()]

# Pages whose address carries a secret token.
TOKEN_PAGE_HEADERS = {"referrer-policy": "no-referrer", "cache-control": "no-store"}


def _brand_id(request: Request) -> int | None:
    look = current_brand(request)
    return look.id if look else None


def _gone(request: Request, purpose: LinkPurpose) -> Response:
    return render(
        request,
        "accounts/link_gone.html",
        {"purpose": purpose.value, "message": registration.gone_message()},
        status_code=410,
        headers=TOKEN_PAGE_HEADERS,
    )


# --- password reset --------------------------------------------------------------------------


@router.get("/password/forgot", response_class=HTMLResponse, name="password_forgot")
def forgot_form(request: Request) -> Response:
    return render(request, "accounts/forgot.html", {"form": {}, "errors": {}})


@router.post(
    "/password/forgot",
    response_class=HTMLResponse,
    dependencies=[limited("password_reset")],
)
def forgot_submit(request: Request, db: SessionDep, email: FormField = "") -> Response:
    """The same answer, status and database work for every well-formed address: the account
    is looked up by the worker, after this answer."""
    try:
        key = registration.request_password_reset(db, email[:254], brand_id=_brand_id(request))
    except FormErrors as exc:
        db.rollback()
        return render(
            request,
            "accounts/forgot.html",
            {"form": {"email": email[:254]}, "errors": exc.errors},
            status_code=422,
        )
    # Per address too: many addresses from one place, or one address from many.
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.hit("password_reset_address", f"email:{key}")
    db.commit()
    return render(request, "accounts/forgot_sent.html")


@router.get("/password/reset/{token}", response_class=HTMLResponse, name="password_reset")
def reset_form(request: Request, db: SessionDep, token: str) -> Response:
    if email_links.live_link(db, token, LinkPurpose.RESET_PASSWORD) is None:
        return _gone(request, LinkPurpose.RESET_PASSWORD)
    return render(
        request,
        "accounts/reset.html",
        {"token": token, "errors": {}},
        headers=TOKEN_PAGE_HEADERS,
    )


@router.post("/password/reset/{token}", response_class=HTMLResponse)
def reset_submit(
    request: Request, db: SessionDep, token: str, password: FormField = ""
) -> Response:
    found = email_links.live_link(db, token, LinkPurpose.RESET_PASSWORD)
    if found is None:
        return _gone(request, LinkPurpose.RESET_PASSWORD)
    link, user = found
    try:
        registration.reset_password(
            db, request.app.state.passwords, link, user, password[:1024], ip=client_ip(request)
        )
    except FormErrors as exc:
        db.rollback()
        return render(
            request,
            "accounts/reset.html",
            {"token": token, "errors": exc.errors},
            status_code=422,
            headers=TOKEN_PAGE_HEADERS,
        )
    except registration.LinkGone:
        db.rollback()
        return _gone(request, LinkPurpose.RESET_PASSWORD)
    db.commit()
    # Not signed in here: an account with a second factor must still be asked for it.
    return flash_redirect(request, "/login", _("Password changed: sign in with it."))


# --- confirming a new account's address ------------------------------------------------------


# Before the token routes: "resend" would match {token}.
@router.post(
    "/email/confirm/resend",
    name="email_confirm_resend",
    dependencies=[limited("email_link")],
)
def confirm_resend(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    if user.email_verified_at is not None:
        return flash_redirect(request, "/account", _("Your address is already confirmed."))
    registration.send_confirmation(db, user, brand_id=_brand_id(request), only_if_none_recent=False)
    db.commit()
    return flash_redirect(
        request,
        "/account",
        _("We sent a new link to %(address)s. Open it to confirm your address.")
        % {"address": user.email},
    )


@router.get("/email/confirm/{token}", response_class=HTMLResponse, name="email_confirm")
def confirm_page(request: Request, db: SessionDep, token: str) -> Response:
    found = email_links.live_link(db, token, LinkPurpose.CONFIRM_EMAIL)
    if found is None:
        return _gone(request, LinkPurpose.CONFIRM_EMAIL)
    _link, user = found
    return render(
        request,
        "accounts/confirm.html",
        {"token": token, "address": user.email, "action": "confirm"},
        headers=TOKEN_PAGE_HEADERS,
    )


@router.post("/email/confirm/{token}", response_class=HTMLResponse)
def confirm_submit(request: Request, db: SessionDep, token: str) -> Response:
    found = email_links.live_link(db, token, LinkPurpose.CONFIRM_EMAIL)
    if found is None:
        return _gone(request, LinkPurpose.CONFIRM_EMAIL)
    link, user = found
    try:
        registration.confirm_address(db, link, user)
    except registration.LinkGone:
        db.rollback()
        return _gone(request, LinkPurpose.CONFIRM_EMAIL)
    db.commit()
    # The link confirms; it does not sign in. Whoever holds a link for an account whose
    # password they know (their own sign-up) could otherwise hand it to someone else and, one
    # click later, have them working in that account (login CSRF).
    viewer = request.state.viewer
    if viewer.user_id == user.id:
        return flash_redirect(request, "/", _("Your address is confirmed."))
    if viewer.is_authenticated:
        return flash_redirect(
            request,
            "/",
            _("The address %(address)s is confirmed. You are still signed in as yourself.")
            % {"address": user.email},
        )
    return flash_redirect(
        request,
        "/login",
        _("Your address is confirmed. Sign in to start, %(name)s.") % {"name": user.display_name},
    )


# --- changing the address --------------------------------------------------------------------


@router.post(
    "/account/email",
    response_class=HTMLResponse,
    name="account_email",
    dependencies=[limited("email_link")],
)
def account_email(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    new_email: FormField = "",
    email_password: FormField = "",
) -> Response:
    try:
        address = registration.request_email_change(
            db,
            request.app.state.passwords,
            user,
            new_email[:254],
            email_password[:1024],
            brand_id=_brand_id(request),
        )
    except FormErrors as exc:
        db.rollback()
        return render(
            request,
            "community/account.html",
            _account_context(db, user)
            | {"errors": exc.errors, "form": {"new_email": new_email[:254]}},
            status_code=422,
        )
    db.commit()
    return flash_redirect(
        request,
        "/account",
        _("We sent a link to %(address)s. Your address changes when you open it (within 24 hours).")
        % {"address": address},
    )


@router.get("/email/change/{token}", response_class=HTMLResponse, name="email_change")
def change_page(request: Request, db: SessionDep, token: str) -> Response:
    found = email_links.live_link(db, token, LinkPurpose.CHANGE_EMAIL)
    if found is None:
        return _gone(request, LinkPurpose.CHANGE_EMAIL)
    link, _user = found
    return render(
        request,
        "accounts/confirm.html",
        {"token": token, "address": link.email, "action": "change"},
        headers=TOKEN_PAGE_HEADERS,
    )


@router.post("/email/change/{token}", response_class=HTMLResponse)
def change_submit(request: Request, db: SessionDep, token: str) -> Response:
    found = email_links.live_link(db, token, LinkPurpose.CHANGE_EMAIL)
    if found is None:
        return _gone(request, LinkPurpose.CHANGE_EMAIL)
    link, user = found
    try:
        address = registration.apply_email_change(db, link, user, ip=client_ip(request))
    except registration.LinkGone:
        db.rollback()
        return _gone(request, LinkPurpose.CHANGE_EMAIL)
    db.commit()
    return flash_redirect(
        request,
        "/account" if request.state.viewer.user_id == user.id else "/login",
        _("Your e-mail address is now %(address)s.") % {"address": address},
    )
