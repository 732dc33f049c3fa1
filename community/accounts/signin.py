"""The last step of every sign-in (a password, an e-mailed link, single sign-on): a session
cookie and a redirect, or, for an account with a second factor, the code page first.

Callers have checked the first factor and the account's standing (suspension, deactivation).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from community.core import service
from community.core.auth import client_ip
from community.core.models import User
from community.core.security import session_cookie_header
from community.core.settings import Settings
from community.core.web import flash_redirect


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


def finish_sign_in(
    request: Request, db: Session, user: User, *, next_url: str, message: str
) -> Response:
    """Start the session (commits) and send the browser to `next_url` with `message`."""
    started = service.log_in(db, user, client_info(request))
    db.commit()
    response = flash_redirect(request, next_url, message)
    return with_session_cookie(request, response, started.token)
