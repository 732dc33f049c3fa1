"""The last step of every sign-in (a password, an e-mailed link, single sign-on): a session
cookie and a redirect, or, for an account with a second factor, the code page first.

Callers have checked the first factor and the account's standing (suspension, deactivation).
An account with two-factor sign-in on gets no session here: a challenge (5 minutes, its token
in a short-lived HttpOnly cookie) and a redirect to /login/two-factor, where
community.accounts.two_factor_routes starts the session once a code is right.
"""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from community.accounts import two_factor
from community.core import service
from community.core.account_models import SignInChallenge
from community.core.auth import client_ip
from community.core.models import User
from community.core.security import session_cookie_header
from community.core.settings import Settings
from community.core.web import flash_redirect

CHALLENGE_PATH = "/login/two-factor"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def client_info(request: Request) -> service.ClientInfo:
    return service.ClientInfo(
        previous_token=request.state.session_token,
        max_age=timedelta(days=_settings(request).session_max_age_days),
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )


def with_session_cookie(request: Request, response: Response, token: str) -> Response:
    response.headers.append("set-cookie", session_cookie_header(_settings(request), token))
    return response


def challenge_cookie_name(settings: Settings) -> str:
    # Like the session cookie: __Host- makes browsers insist on Secure, this host, Path=/.
    return "__Host-community_2fa" if settings.cookie_secure else "community_2fa"


def challenge_cookie_header(settings: Settings, token: str, *, max_age: int) -> str:
    cookie: SimpleCookie = SimpleCookie()
    name = challenge_cookie_name(settings)
    cookie[name] = token
    morsel = cookie[name]
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = "Lax"
    morsel["max-age"] = str(max_age)
    if settings.cookie_secure:
        morsel["secure"] = True
    return morsel.OutputString()


def open_challenge(request: Request, db: Session) -> SignInChallenge | None:
    """The sign-in challenge this browser is in, if it can still be answered."""
    return two_factor.open_challenge(
        db,
        request.cookies.get(challenge_cookie_name(_settings(request))),
        browser_token=request.state.session_token,
    )


def without_challenge_cookie(request: Request, response: Response) -> Response:
    response.headers.append(
        "set-cookie", challenge_cookie_header(_settings(request), "", max_age=0)
    )
    return response


def start_signed_in(
    request: Request,
    db: Session,
    user: User,
    *,
    next_url: str,
    message: str,
    passed_two_factor: bool = False,
) -> Response:
    """Start the session (commits) and send the browser to `next_url` with `message`."""
    started = service.log_in(db, user, client_info(request), two_factor=passed_two_factor)
    db.commit()
    response = flash_redirect(request, next_url, message)
    return with_session_cookie(request, response, started.token)


def finish_sign_in(
    request: Request, db: Session, user: User, *, next_url: str, message: str
) -> Response:
    """Start the session (commits) and send the browser to `next_url` with `message`; for an
    account with two-factor sign-in on, ask for a code first (commits the challenge)."""
    if not two_factor.is_enabled(db, user.id):
        return start_signed_in(request, db, user, next_url=next_url, message=message)
    token = two_factor.start_challenge(
        db, user, next_url, browser_token=request.state.session_token
    )
    db.commit()
    response = RedirectResponse(CHALLENGE_PATH, status_code=303)
    lifetime = int(two_factor.CHALLENGE_LIFETIME.total_seconds())
    response.headers.append(
        "set-cookie", challenge_cookie_header(_settings(request), token, max_age=lifetime)
    )
    return response
