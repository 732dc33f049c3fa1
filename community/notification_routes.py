"""The notification list, the unread counter htmx polls, and marking notifications read."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from community.core import notifications
from community.core.auth import CurrentUser, ViewerDep
from community.core.db import SessionDep
from community.core.i18n import gettext as _
from community.core.web import flash_redirect, is_htmx, render

router = APIRouter(include_in_schema=False)


@router.get("/notifications", response_class=HTMLResponse, name="notifications")
def notification_list(
    request: Request, db: SessionDep, user: CurrentUser, before: int | None = None
) -> Response:
    page = notifications.list_for(db, user.id, before=before)
    return render(
        request,
        "community/notifications.html",
        {
            "page": page,
            "describe": notifications.describe,
            "unread": notifications.unread_count(db, user.id),
        },
    )


@router.get("/notifications/count", response_class=HTMLResponse, name="notification_count")
def notification_count(request: Request, db: SessionDep, viewer: ViewerDep) -> Response:
    """The header badge; htmx polls it. Anonymous visitors get an empty fragment."""
    count = notifications.unread_count(db, viewer.user_id) if viewer.user_id else 0
    return render(request, "community/_notification_count.html", {"unread": count})


@router.post("/notifications/{notification_id}/open", name="open_notification")
def open_notification(
    request: Request, db: SessionDep, user: CurrentUser, notification_id: int
) -> Response:
    notification = notifications.mark_read(db, user, notification_id)
    db.commit()
    return RedirectResponse(notifications.target_path(notification), status_code=303)


@router.post("/notifications/read-all", name="read_all_notifications")
def read_all(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    notifications.mark_all_read(db, user.id)
    db.commit()
    if is_htmx(request):
        return render(request, "community/_notification_count.html", {"unread": 0})
    return flash_redirect(request, "/notifications", _("All notifications are marked read."))
