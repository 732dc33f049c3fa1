"""JSON API for following forums and tags and for members' badges. The same services and
rules as the pages (cookie sessions send X-CSRF-Token for anything that changes state)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from community.api import ERRORS
from community.core import service
from community.core.auth import CurrentUser
from community.core.db import SessionDep
from community.core.i18n import gettext as _
from community.members import badges, follows

router = APIRouter(prefix="/api/v1", responses=ERRORS)  # type: ignore[arg-type]


class FollowOut(BaseModel):
    following: bool


class BadgeOut(BaseModel):
    badge: str
    name: str
    description: str
    awarded_at: datetime


@router.post("/forums/{forum_id}/follow", response_model=FollowOut, tags=["notifications"])
def api_follow_forum(db: SessionDep, user: CurrentUser, forum_id: int) -> FollowOut:
    follows.follow_forum(db, user, follows.access_forum(db, user, forum_id))
    db.commit()
    return FollowOut(following=True)


@router.delete("/forums/{forum_id}/follow", response_model=FollowOut, tags=["notifications"])
def api_unfollow_forum(db: SessionDep, user: CurrentUser, forum_id: int) -> FollowOut:
    follows.unfollow_forum(db, user, follows.access_forum(db, user, forum_id))
    db.commit()
    return FollowOut(following=False)


@router.post("/tags/{brand_slug}/{tag}/follow", response_model=FollowOut, tags=["notifications"])
def api_follow_tag(db: SessionDep, user: CurrentUser, brand_slug: str, tag: str) -> FollowOut:
    follows.follow_tag(db, user, follows.access_tag(db, user, brand_slug, tag))
    db.commit()
    return FollowOut(following=True)


@router.delete("/tags/{brand_slug}/{tag}/follow", response_model=FollowOut, tags=["notifications"])
def api_unfollow_tag(db: SessionDep, user: CurrentUser, brand_slug: str, tag: str) -> FollowOut:
    follows.unfollow_tag(db, user, follows.access_tag(db, user, brand_slug, tag))
    db.commit()
    return FollowOut(following=False)


@router.get("/users/{username}/badges", response_model=list[BadgeOut], tags=["accounts"])
def api_badges(db: SessionDep, username: str) -> list[BadgeOut]:
    user = service.get_user_by_username(db, username)
    return [
        BadgeOut(
            badge=item.badge.key,
            name=_(item.badge.name),
            description=_(item.badge.description),
            awarded_at=item.awarded_at,
        )
        for item in badges.earned(db, user.id)
    ]
