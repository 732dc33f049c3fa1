"""JSON API for flags, the review queues and the audit log (same services and rules)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field

from community.api import ERRORS
from community.core import policy
from community.core import service as community_service
from community.core.auth import CurrentUser, Moderator, client_ip
from community.core.db import SessionDep
from community.core.errors import PermissionDenied
from community.core.i18n import gettext as _
from community.core.ratelimit import limited
from community.core.schemas import Input, Output, Text
from community.threads import access_post, access_thread
from moderation import audit_view, decisions, queue
from moderation.models import FlagReason, FlagStatus, ItemStatus, Queue

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["moderation"])  # type: ignore[arg-type]


class FlagIn(Input):
    reason: FlagReason
    note: Text | None = Field(default=None, max_length=500)
    duplicate_of_thread_id: int | None = None


class FlagOut(Output):
    id: int
    post_id: int
    reason: FlagReason
    status: FlagStatus
    weight: float
    created_at: datetime


class ItemOut(Output):
    id: int
    queue: Queue
    post_id: int | None
    user_id: int | None
    status: ItemStatus
    reasons: list[str]
    flag_weight: float
    created_at: datetime
    resolution: str | None


class ResolveIn(Input):
    decision: decisions.Decision
    reason: Text | None = Field(default=None, max_length=300)


class AuditOut(Output):
    id: int
    actor_id: int | None
    actor_role: str | None
    action: str
    target_type: str
    target_id: str
    before: dict[str, object] | None
    after: dict[str, object] | None
    reason: str | None
    created_at: datetime


class QueueCounts(BaseModel):
    pending: int
    flagged: int
    users: int


@router.post(
    "/posts/{post_id}/flags",
    response_model=FlagOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[limited("flag")],
)
def api_flag(db: SessionDep, user: CurrentUser, post_id: int, body: FlagIn) -> object:
    post = access_post(db, user, post_id)
    original = (
        access_thread(db, user, body.duplicate_of_thread_id)
        if body.duplicate_of_thread_id
        else None
    )
    created = queue.flag(db, user, post, body.reason, note=body.note, duplicate_of=original)
    db.commit()
    return created


@router.get("/me/flags", response_model=list[FlagOut])
def api_my_flags(db: SessionDep, user: CurrentUser) -> list[object]:
    return list(queue.flags_by(db, user))


@router.get("/brands/{brand_slug}/moderation/counts", response_model=QueueCounts)
def api_counts(db: SessionDep, user: Moderator, brand_slug: str) -> QueueCounts:
    counts = queue.counts(db, community_service.get_brand(db, brand_slug).id)
    return QueueCounts(
        pending=counts[Queue.PENDING], flagged=counts[Queue.FLAGGED], users=counts[Queue.USERS]
    )


@router.get("/brands/{brand_slug}/moderation/{queue_name}", response_model=list[ItemOut])
def api_queue(db: SessionDep, user: Moderator, brand_slug: str, queue_name: Queue) -> list[object]:
    brand = community_service.get_brand(db, brand_slug)
    return list(queue.open_items(db, brand.id, queue_name, limit=100))


@router.post("/moderation/items/{item_id}/resolve", response_model=ItemOut)
def api_resolve(
    request: Request, db: SessionDep, user: Moderator, item_id: int, body: ResolveIn
) -> object:
    item = queue.access_item(db, user, item_id)
    decisions.resolve(db, user, item, body.decision, reason=body.reason, ip=client_ip(request))
    db.commit()
    return item


@router.get("/moderation/audit", response_model=list[AuditOut])
def api_audit(
    db: SessionDep,
    user: Moderator,
    action: Annotated[str, Query(max_length=60)] = "",
    target_type: Annotated[str, Query(max_length=30)] = "",
    target_id: Annotated[str, Query(max_length=40)] = "",
    before: int | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[object]:
    if policy.staffed_brands(user) is not None:
        # The log spans every brand (and names what was hidden where): site-wide staff only.
        raise PermissionDenied(_("The audit log is for site-wide moderators and admins."))
    wanted = audit_view.AuditFilter(
        action=action, target_type=target_type, target_id=target_id, before=before, limit=limit
    )
    return list(audit_view.audit_entries(db, wanted))
