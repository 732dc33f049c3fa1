"""Pages of two-factor sign-in: the code asked for after the password (/login/two-factor) and
the member's own settings (/account/two-factor: set up, new recovery codes, turn off).

Pages that show a seed or recovery codes are sent with Cache-Control: no-store.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from community.accounts import signin, two_factor
from community.core.auth import CurrentUser, ViewerDep, client_ip
from community.core.clock import utcnow
from community.core.db import SessionDep
from community.core.errors import AppError, FormErrors
from community.core.i18n import gettext as _
from community.core.models import User
from community.core.ratelimit import limited
from community.core.second_factor import second_factor_required
from community.core.settings import Settings
from community.core.throttle import LoginThrottle
from community.core.web import current_brand, flash_redirect, render

router = APIRouter(include_in_schema=False)

FormField = Annotated[str, Form()]
NO_STORE = {"cache-control": "no-store"}
CHALLENGE_TEMPLATE = "accounts/two_factor_challenge.html"
SETTINGS_TEMPLATE = "accounts/two_factor.html"
CODES_TEMPLATE = "accounts/two_factor_codes.html"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _secret_key(request: Request) -> str:
    return _settings(request).effective_secret_key


# --- the code after the password ------------------------------------------------------------


def _back_to_login(request: Request, message: str | None = None) -> Response:
    response = flash_redirect(
        request,
        "/login",
        message or _("Your sign-in took too long or was already used. Sign in again."),
    )
    return signin.without_challenge_cookie(request, response)


def _may_still_sign_in(user: User | None) -> bool:
    return (
        user is not None
        and user.deactivated_at is None
        and (user.suspended_until is None or user.suspended_until <= utcnow())
    )


def _throttle_key(user_id: int) -> str:
    # Counted apart from passwords (a "2fa:" key never equals a login's username or address):
    # wrong codes across every challenge of the account slow that address down.
    return f"2fa:{user_id}"


@router.get("/login/two-factor", response_class=HTMLResponse, name="login_two_factor")
def challenge_form(request: Request, db: SessionDep) -> Response:
    challenge = signin.open_challenge(request, db)
    if challenge is None:
        return _back_to_login(request)
    context = {"error": None, "attempts_left": two_factor.attempts_left(challenge)}
    return render(request, CHALLENGE_TEMPLATE, context, headers=NO_STORE)


@router.post("/login/two-factor", response_class=HTMLResponse)
def challenge_submit(request: Request, db: SessionDep, code: FormField = "") -> Response:
    challenge = signin.open_challenge(request, db)
    user = db.get(User, challenge.user_id) if challenge else None
    if challenge is None or user is None or not _may_still_sign_in(user):
        return _back_to_login(request)
    throttle: LoginThrottle = request.app.state.login_throttle
    ip = client_ip(request)
    throttled = throttle.check(_throttle_key(user.id), ip)
    if throttled:
        minutes = max(1, round(throttled.retry_after_seconds / 60))
        context = {
            "error": _("Too many wrong codes. Try again in %(minutes)d minutes.")
            % {"minutes": minutes},
            "attempts_left": two_factor.attempts_left(challenge),
        }
        headers = NO_STORE | {"retry-after": str(throttled.retry_after_seconds)}
        return render(request, CHALLENGE_TEMPLATE, context, status_code=429, headers=headers)
    try:
        kind = two_factor.answer_challenge(db, challenge, _secret_key(request), code)
    except two_factor.ChallengeOver:
        db.rollback()
        return _back_to_login(request)
    if kind is None:
        throttle.record_failure(_throttle_key(user.id), ip)
        left = two_factor.attempts_left(challenge)
        db.commit()  # the attempt counts
        if left == 0:
            return _back_to_login(request, _("Too many wrong codes. Sign in again."))
        context = {"error": _("That code is not right. Try again."), "attempts_left": left}
        return render(request, CHALLENGE_TEMPLATE, context, status_code=401, headers=NO_STORE)
    throttle.record_success(_throttle_key(user.id), ip)
    message = _("Signed in as %(name)s.") % {"name": user.display_name}
    if kind == "recovery":
        left = two_factor.recovery_codes_left(db, user)
        message = _(
            "Signed in as %(name)s with a recovery code: %(left)d left. "
            "Make new ones in your account if you are running low."
        ) % {"name": user.display_name, "left": left}
    response = signin.start_signed_in(
        request, db, user, next_url=challenge.next_url, message=message, passed_two_factor=True
    )
    return signin.without_challenge_cookie(request, response)


# --- the member's settings ------------------------------------------------------------------


def _settings_context(
    request: Request, db: Session, user: User, viewer_two_factor: bool
) -> dict[str, Any]:
    factor = two_factor.factor_of(db, user.id)
    enabled = factor is not None and factor.enabled_at is not None
    enrolment = None
    if not enabled:
        brand = current_brand(request)
        issuer = brand.name if brand else "Support community"
        enrolment = two_factor.pending_enrolment(db, user, _secret_key(request), issuer)
    return {
        "user": user,
        "factor": factor if enabled else None,
        "enrolment": enrolment,
        # segno's own SVG of the provisioning URI: no member input reaches it unescaped.
        "qr_svg": Markup(enrolment.qr_svg) if enrolment else "",  # noqa: S704
        "secret_groups": " ".join(
            enrolment.secret[i : i + 4] for i in range(0, len(enrolment.secret), 4)
        )
        if enrolment
        else "",
        "codes_left": two_factor.recovery_codes_left(db, user) if enabled else 0,
        "required": request.state.viewer.withheld is not None or second_factor_required(db, user),
        "session_passed": viewer_two_factor,
        "errors": {},
    }


def _settings_page(
    request: Request,
    db: Session,
    user: User,
    viewer_two_factor: bool,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = _settings_context(request, db, user, viewer_two_factor)
    context["errors"] = errors or {}
    return render(request, SETTINGS_TEMPLATE, context, status_code=status_code, headers=NO_STORE)


def _codes_page(request: Request, codes: list[str], *, first_time: bool) -> Response:
    return render(
        request, CODES_TEMPLATE, {"codes": codes, "first_time": first_time}, headers=NO_STORE
    )


def _refused(
    request: Request,
    db: Session,
    user: User,
    viewer_two_factor: bool,
    exc: AppError,
    *,
    action: str = "",
) -> Response:
    db.rollback()
    if isinstance(exc, FormErrors):
        errors = exc.errors | {"action": action}  # which form the errors belong to
        status = 422
    else:
        errors = {"form": exc.message or _("That did not work. Reload the page and try again.")}
        status = exc.status_code
    return _settings_page(request, db, user, viewer_two_factor, errors=errors, status_code=status)


@router.get("/account/two-factor", response_class=HTMLResponse, name="account_two_factor")
def settings_page(
    request: Request, db: SessionDep, user: CurrentUser, viewer: ViewerDep
) -> Response:
    return _settings_page(request, db, user, viewer.two_factor)


@router.post(
    "/account/two-factor/setup", name="account_two_factor_setup", response_class=HTMLResponse
)
def setup(request: Request, db: SessionDep, user: CurrentUser, viewer: ViewerDep) -> Response:
    try:
        two_factor.begin_setup(db, user, _secret_key(request))
    except AppError as exc:
        return _refused(request, db, user, viewer.two_factor, exc)
    db.commit()
    return RedirectResponse("/account/two-factor", status_code=303)


@router.post(
    "/account/two-factor/confirm",
    name="account_two_factor_confirm",
    response_class=HTMLResponse,
    dependencies=[limited("two_factor")],
)
def confirm(
    request: Request, db: SessionDep, user: CurrentUser, viewer: ViewerDep, code: FormField = ""
) -> Response:
    try:
        codes = two_factor.confirm_setup(
            db,
            user,
            _secret_key(request),
            code,
            session_id=viewer.session_id,
            ip=client_ip(request),
        )
    except AppError as exc:
        # A wrong code still moved nothing: last_step moves only for a right one.
        return _refused(request, db, user, viewer.two_factor, exc)
    db.commit()
    return _codes_page(request, codes, first_time=True)


@router.post(
    "/account/two-factor/recovery-codes",
    name="account_two_factor_codes",
    response_class=HTMLResponse,
    dependencies=[limited("two_factor")],
)
def regenerate_codes(
    request: Request, db: SessionDep, user: CurrentUser, viewer: ViewerDep, code: FormField = ""
) -> Response:
    try:
        codes = two_factor.regenerate_recovery_codes(
            db, user, _secret_key(request), code, ip=client_ip(request)
        )
    except AppError as exc:
        return _refused(request, db, user, viewer.two_factor, exc, action="codes")
    db.commit()
    return _codes_page(request, codes, first_time=False)


@router.post(
    "/account/two-factor/session",
    name="account_two_factor_session",
    response_class=HTMLResponse,
    dependencies=[limited("two_factor")],
)
def confirm_session(
    request: Request, db: SessionDep, user: CurrentUser, viewer: ViewerDep, code: FormField = ""
) -> Response:
    try:
        two_factor.confirm_session(
            db, user, _secret_key(request), code, session_id=viewer.session_id
        )
    except AppError as exc:
        return _refused(request, db, user, viewer.two_factor, exc, action="session")
    db.commit()
    return flash_redirect(
        request, "/account/two-factor", _("This session passed two-factor sign-in.")
    )


@router.post(
    "/account/two-factor/disable",
    name="account_two_factor_disable",
    response_class=HTMLResponse,
    dependencies=[limited("two_factor")],
)
def disable(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    viewer: ViewerDep,
    password: FormField = "",
    code: FormField = "",
) -> Response:
    try:
        two_factor.disable(
            db,
            request.app.state.passwords,
            user,
            _secret_key(request),
            password=password,
            raw_code=code,
            ip=client_ip(request),
        )
    except AppError as exc:
        return _refused(request, db, user, viewer.two_factor, exc, action="disable")
    db.commit()
    return flash_redirect(request, "/account", _("Two-factor sign-in is off."))
