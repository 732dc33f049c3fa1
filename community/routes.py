"""HTML pages and htmx fragments for accounts, brands and forums. Thin: parse, call the
service, commit once, render."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from community import reputation
from community.accounts import devices, registration, signin, sso_routes, two_factor
from community.core import api_tokens, policy_identity, service
from community.core.auth import (
    Admin,
    CurrentUser,
    ViewerDep,
    client_ip,
    new_anonymous_token,
    revoke_user_sessions,
)
from community.core.db import SessionDep
from community.core.errors import FormErrors, TooManyRequests
from community.core.forms import parse_form
from community.core.i18n import SUPPORTED_LOCALES, active_locale
from community.core.i18n import gettext as _
from community.core.labels import label
from community.core.models import Brand, EmailPreference, Role, User
from community.core.policy import is_staff
from community.core.ratelimit import RateLimiter, limited
from community.core.schemas import (
    LoginIn,
    PasswordChangeIn,
    PreferencesIn,
    RegistrationIn,
    RoleChangeIn,
    TokenIn,
)
from community.core.security import LANGUAGE_COOKIE, session_cookie_header
from community.core.settings import Settings
from community.core.web import current_brand, flash_redirect, is_htmx, render, safe_next
from community.members import badges

router = APIRouter(include_in_schema=False)

FormField = Annotated[str, Form()]
OptionalFormField = Annotated[str, Form()]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _with_session_cookie(request: Request, response: Response, token: str) -> Response:
    response.headers.append("set-cookie", session_cookie_header(_settings(request), token))
    return response


# --- browsing --------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse, name="home")
def home(request: Request, db: SessionDep, viewer: ViewerDep) -> Response:
    brand = service.default_brand(db, _settings(request).default_brand)
    if brand is None:
        return render(request, "community/empty_site.html")
    forums = service.readable_forums(db, brand, viewer)
    brands = service.list_brands(db)
    return render(
        request, "community/brand.html", {"brand": brand, "forums": forums, "brands": brands}
    )


@router.get("/b/{brand_slug}", response_class=HTMLResponse, name="brand")
def brand_page(request: Request, db: SessionDep, viewer: ViewerDep, brand_slug: str) -> Response:
    brand = service.get_brand(db, brand_slug, viewer=viewer)
    return render(
        request,
        "community/brand.html",
        {
            "brand": brand,
            "forums": service.readable_forums(db, brand, viewer),
            "brands": service.list_brands(db),
        },
    )


@router.get("/u/{username}", response_class=HTMLResponse, name="profile")
def profile_page(request: Request, db: SessionDep, viewer: ViewerDep, username: str) -> Response:
    user = service.get_user_by_username(db, username)
    history = reputation.history(db, user.id, limit=30)
    return render(
        request,
        "community/profile.html",
        {
            "profile": user,
            "profile_is_staff": is_staff(user),  # the role badge: members carry none
            # Only what the viewer may read (restricted forums' threads are missing).
            "activity": service.profile_activity(db, user, viewer=viewer),
            "history": history,
            "badges": badges.earned(db, user.id),
            # Events stay (reputation is real) but link only to threads still public.
            "linkable": service.visible_thread_ids(
                db, {event.thread_id for event in history if event.thread_id}, viewer=viewer
            ),
        },
    )


# --- registration and login ------------------------------------------------------------------


def _sign_up_brand(request: Request, db: SessionDep) -> int | None:
    """The brand the visitor signs up in (its id), if it takes sign-ups with a password."""
    look = current_brand(request)
    policy_identity.ensure_password_sign_up(db.get(Brand, look.id) if look else None)
    return look.id if look else None


@router.get("/register", response_class=HTMLResponse, name="register")
def register_form(request: Request, db: SessionDep, viewer: ViewerDep) -> Response:
    if viewer.is_authenticated:
        return RedirectResponse("/", status_code=303)
    _sign_up_brand(request, db)
    return render(request, "community/register.html", {"form": {}, "errors": {}})


@router.post("/register", response_class=HTMLResponse, dependencies=[limited("register")])
def register_submit(
    request: Request,
    db: SessionDep,
    username: FormField = "",
    email: FormField = "",
    password: FormField = "",
    display_name: OptionalFormField = "",
) -> Response:
    """Confirm-first: the account waits for its address's link and nobody is signed in. The
    page is the same when the address already has an account (its owner gets an e-mail)."""
    brand_id = _sign_up_brand(request, db)
    fields = {
        "username": username,
        "email": email,
        "password": password,
        "display_name": display_name,
    }
    try:
        data = parse_form(RegistrationIn, fields)
        address = registration.sign_up(db, request.app.state.passwords, data, brand_id=brand_id)
    except FormErrors as exc:
        db.rollback()
        fields.pop("password")
        return render(
            request,
            "community/register.html",
            {"form": fields, "errors": exc.errors},
            status_code=422,
        )
    # Per address too, whether or not it has an account (so the limit tells nothing): its
    # owner gets at most a few "someone tried to sign up with your address" e-mails an hour.
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.hit("register_address", f"email:{address.casefold()}")
    db.commit()
    return render(request, "accounts/sign_up_sent.html", {"address": address})


@router.get("/login", response_class=HTMLResponse, name="login")
def login_form(request: Request, db: SessionDep, viewer: ViewerDep, next: str = "/") -> Response:
    if viewer.is_authenticated:
        return RedirectResponse(safe_next(next), status_code=303)
    target = safe_next(next)
    # The brand's single sign-on button, and no password form where it turned passwords off.
    options = sso_routes.login_options(request, db, target)
    return render(
        request, "community/login.html", {"form": {}, "error": None, "next": target} | options
    )


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    db: SessionDep,
    login: FormField = "",
    password: FormField = "",
    next: OptionalFormField = "/",
) -> Response:
    target = safe_next(next)
    context = {"form": {"login": login}, "next": target}
    context |= sso_routes.login_options(request, db, target)
    try:
        data = parse_form(LoginIn, {"login": login, "password": password})
        user = service.authenticate(
            db,
            request.app.state.passwords,
            request.app.state.login_throttle,
            data,
            ip=client_ip(request),
        )
    except FormErrors:
        return render(
            request,
            "community/login.html",
            context | {"error": _("Enter your username or e-mail and your password.")},
            status_code=422,
        )
    except TooManyRequests as exc:
        return render(
            request,
            "community/login.html",
            context | {"error": exc.message},
            status_code=429,
            headers={"retry-after": str(exc.retry_after_seconds)},
        )
    except service.AccountSuspended as exc:
        return render(
            request, "community/login.html", context | {"error": exc.message}, status_code=403
        )
    except service.AddressNotConfirmed as exc:
        # The right password, an unconfirmed address: answered as a wrong password, and a
        # fresh link goes out (at most one per 10 minutes, community.accounts.tasks).
        look = current_brand(request)
        registration.send_confirmation(
            db, exc.user, brand_id=look.id if look else None, only_if_none_recent=True
        )
        db.commit()
        return render(
            request, "community/login.html", context | {"error": exc.message}, status_code=401
        )
    except service.InvalidCredentials as exc:
        db.commit()  # keep a rehash or nothing; failures are counted outside the database
        return render(
            request, "community/login.html", context | {"error": exc.message}, status_code=401
        )
    refusal = sso_routes.password_sign_in_refusal(db, user, target, request)
    if refusal:  # a member of a brand whose members sign in with its provider only
        db.rollback()
        return render(
            request, "community/login.html", context | {"error": refusal}, status_code=403
        )
    return signin.finish_sign_in(
        request,
        db,
        user,
        next_url=target,
        message=_("Signed in as %(name)s.") % {"name": user.display_name},
    )


@router.post("/logout", name="logout")
def logout(request: Request, db: SessionDep) -> Response:
    service.log_out(db, request.state.session_token)
    db.commit()
    response = flash_redirect(request, "/", _("You are signed out."))
    # A fresh anonymous token: the old one is revoked and must not be reused.
    return _with_session_cookie(request, response, new_anonymous_token())


def _client_info(request: Request) -> service.ClientInfo:
    return service.ClientInfo(
        previous_token=request.state.session_token,
        max_age=timedelta(days=_settings(request).session_max_age_days),
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )


# --- account ---------------------------------------------------------------------------------


def _account_context(db: SessionDep, user: User) -> dict[str, object]:
    return {
        "user": user,
        "sessions": devices.describe_sessions(
            service.active_sessions(db, user), current_id=None, locale=active_locale()
        ),
        "two_factor_on": two_factor.is_enabled(db, user.id),
        "tokens": api_tokens.list_tokens(db, user),
        "email_choices": list(EmailPreference),
        "new_token": None,
        "errors": {},
        "form": {},
    }


@router.get("/account", response_class=HTMLResponse, name="account")
def account_page(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    return render(request, "community/account.html", _account_context(db, user))


@router.post("/account/preferences", response_class=HTMLResponse, name="account_preferences")
def account_preferences(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    display_name: OptionalFormField = "",
    locale: OptionalFormField = "",
    email_notifications: OptionalFormField = "immediate",
    expert_fields: OptionalFormField = "",
    expert_invitations: OptionalFormField = "",
    away_until: OptionalFormField = "",
) -> Response:
    values: dict[str, object] = {
        "display_name": display_name,
        "locale": locale,
        "email_notifications": email_notifications,
    }
    if expert_fields:  # the form carries the checkbox: unchecked means "do not invite me"
        values["expert_invitations"] = bool(expert_invitations)
        values["away_until"] = away_until or None
    try:
        data = parse_form(PreferencesIn, values)
        service.update_preferences(user, data)
    except FormErrors as exc:
        db.rollback()
        return render(
            request,
            "community/account.html",
            _account_context(db, user) | {"errors": exc.errors},
            status_code=422,
        )
    db.commit()
    return flash_redirect(request, "/account", _("Your preferences are saved."))


@router.post("/account/password", response_class=HTMLResponse, name="account_password")
def account_password(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    current_password: FormField = "",
    new_password: FormField = "",
    revoke_api_tokens: OptionalFormField = "",
) -> Response:
    try:
        data = parse_form(
            PasswordChangeIn,
            {
                "current_password": current_password,
                "new_password": new_password,
                "revoke_api_tokens": bool(revoke_api_tokens),
            },
        )
        started = service.change_password(
            db, request.app.state.passwords, user, data, _client_info(request)
        )
    except FormErrors as exc:
        db.rollback()
        return render(
            request,
            "community/account.html",
            _account_context(db, user) | {"errors": exc.errors},
            status_code=422,
        )
    db.commit()
    message = (
        _("Your password is changed. Other devices were signed out and your API tokens revoked.")
        if data.revoke_api_tokens
        else _("Your password is changed. Other devices were signed out.")
    )
    response = flash_redirect(request, "/account", message)
    return _with_session_cookie(request, response, started.token)


@router.post("/account/sessions/revoke-others", name="account_revoke_others")
def account_revoke_others(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    revoke_user_sessions(db, user.id, except_session_id=request.state.viewer.session_id)
    db.commit()
    return flash_redirect(request, "/account", _("All your other sessions are signed out."))


@router.post("/account/sessions/{session_id}/revoke", name="account_revoke_session")
def account_revoke_session(
    request: Request, db: SessionDep, user: CurrentUser, session_id: int
) -> Response:
    devices.revoke_own_session(db, user, session_id)
    db.commit()
    return flash_redirect(request, "/account", _("That session is signed out."))


@router.post("/account/tokens", response_class=HTMLResponse, name="account_tokens")
def account_create_token(
    request: Request, db: SessionDep, user: CurrentUser, name: OptionalFormField = ""
) -> Response:
    try:
        data = parse_form(TokenIn, {"name": name})
        _token, raw = api_tokens.create_token(
            db, user, data.name, session_two_factor=request.state.viewer.withheld is None
        )
    except FormErrors as exc:
        db.rollback()
        return render(
            request,
            "community/account.html",
            _account_context(db, user) | {"errors": exc.errors},
            status_code=422,
        )
    db.commit()
    # The only time the token is shown: the page says so and nothing else stores it.
    return render(
        request,
        "community/account.html",
        _account_context(db, user) | {"new_token": raw},
        headers={"cache-control": "no-store"},
    )


@router.post("/account/tokens/{token_id}/revoke", name="account_revoke_token")
def account_revoke_token(
    request: Request, db: SessionDep, user: CurrentUser, token_id: int
) -> Response:
    api_tokens.revoke_token(db, user, token_id)
    db.commit()
    return flash_redirect(request, "/account", _("The token is revoked."))


@router.post("/language", name="set_language")
def set_language(
    request: Request,
    db: SessionDep,
    viewer: ViewerDep,
    locale: OptionalFormField = "",
    next: OptionalFormField = "/",
) -> Response:
    chosen = locale if locale in SUPPORTED_LOCALES else ""
    if viewer.user_id is not None:
        user = db.get(User, viewer.user_id)
        if user is not None:
            user.locale = chosen or None
            db.commit()
    response = RedirectResponse(safe_next(next), status_code=303)
    if chosen:
        response.set_cookie(
            LANGUAGE_COOKIE,
            chosen,
            max_age=365 * 86400,
            path="/",
            samesite="lax",
            httponly=True,
            secure=_settings(request).cookie_secure,
        )
    else:
        response.delete_cookie(LANGUAGE_COOKIE, path="/")
    return response


# --- administration --------------------------------------------------------------------------


@router.get("/admin", response_class=HTMLResponse, name="admin_home")
def admin_home(request: Request, db: SessionDep, admin: Admin) -> Response:
    return render(request, "admin/home.html", {"brands": service.list_brands(db)})


@router.get("/admin/users", response_class=HTMLResponse, name="admin_users")
def admin_users(request: Request, db: SessionDep, admin: Admin, q: str = "") -> Response:
    users = service.search_users(db, q[:100])
    return render(
        request,
        "admin/users.html",
        {"users": users, "q": q[:100], "roles": list(Role), "admin": admin},
        block="user_table",
    )


@router.post("/admin/users/{user_id}/role", response_class=HTMLResponse, name="admin_user_role")
def admin_user_role(
    request: Request,
    db: SessionDep,
    admin: Admin,
    user_id: int,
    role: FormField = "",
) -> Response:
    target = service.get_user(db, user_id)
    data = parse_form(RoleChangeIn, {"role": role})
    service.set_role(db, admin, target, data.role, ip=client_ip(request))
    db.commit()
    message = _("%(name)s is now %(role)s.") % {
        "name": target.username,
        "role": label(data.role.value),
    }
    if is_htmx(request):
        return render(
            request,
            "admin/_user_row.html",
            {"user": target, "roles": list(Role), "admin": admin, "message": message},
        )
    return flash_redirect(request, "/admin/users", message)
