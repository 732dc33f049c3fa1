"""The sessions the account page lists: the member's own, not signed out, the most recently
used first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core import service
from community.core.auth import revoke_session_token
from community.core.clock import utcnow
from community.core.models import User, UserSession
from community.core.service import ClientInfo


def _signed_in(db: Session, user: User, device: str) -> str:
    client = ClientInfo(
        previous_token=None, max_age=timedelta(days=30), ip="192.0.2.1", user_agent=device
    )
    token = service.log_in(db, user, client).token
    db.commit()
    return token


def test_active_sessions_are_the_members_own_most_recent_first(
    db: Session, make_user: Callable[..., User]
) -> None:
    member, other = make_user("member"), make_user("other")
    for device in ("laptop", "phone", "tablet"):
        _signed_in(db, member, device)
    signed_out = _signed_in(db, member, "kiosk")
    _signed_in(db, other, "other's phone")
    revoke_session_token(db, signed_out)
    # Used last: the signed-out kiosk, then the phone, whatever the order of signing in.
    hours_ago = {"kiosk": 0, "phone": 1, "tablet": 3, "laptop": 5}
    now = utcnow()
    for row in db.scalars(select(UserSession).where(UserSession.user_id == member.id)):
        assert row.user_agent is not None
        row.last_seen_at = now - timedelta(hours=hours_ago[row.user_agent])
    db.commit()

    listed = service.active_sessions(db, member)
    assert [row.user_agent for row in listed] == ["phone", "tablet", "laptop"]
    assert [row.user_agent for row in service.active_sessions(db, member, limit=1)] == ["phone"]
