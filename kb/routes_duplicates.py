"""Possible duplicates for staff: the moderation queue's section and the two one-click decisions
(close as a duplicate, not a duplicate), from the queue (htmx, the item swapped for a note) or
from the thread page (a plain form post, back to the thread)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from community.core import service as community_service
from community.core.auth import CurrentUser, Moderator, client_ip
from community.core.db import SessionDep
from community.core.i18n import gettext as _
from community.core.web import flash_redirect, is_htmx, render, safe_next
from kb import duplicate_review as review
from kb.duplicate_models import DuplicateSuggestion
from moderation import queue

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]


@router.get("/b/{brand_slug}/mod/duplicates", response_class=HTMLResponse, name="mod_duplicates")
def duplicates_queue(
    request: Request, db: SessionDep, user: Moderator, brand_slug: str
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    return render(
        request,
        "kb/duplicates_queue.html",
        {
            "brand": brand,
            "suggestions": review.open_for_brand(db, brand.id),
            "counts": queue.counts(db, brand.id),
            "duplicate_count": review.count_open(db, brand.id),
            "queue": None,
        },
    )


def _answer(
    request: Request, db: SessionDep, suggestion: DuplicateSuggestion, back: str, message: str
) -> Response:
    if is_htmx(request):
        brand = suggestion.thread.forum.brand
        return render(
            request,
            "kb/_duplicate_handled.html",
            {
                "suggestion": suggestion,
                "message": message,
                "brand": brand,
                "counts": queue.counts(db, brand.id),
                "duplicate_count": review.count_open(db, brand.id),
                "queue": None,
            },
        )
    return flash_redirect(request, safe_next(back, f"/t/{suggestion.thread_id}"), message)


@router.post("/mod/duplicates/{suggestion_id}/close", name="duplicate_close")
def close_as_duplicate(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    suggestion_id: int,
    back: FormText = "",
) -> Response:
    suggestion = review.access_suggestion(db, user, suggestion_id)
    original = review.close_as_duplicate(db, user, suggestion, ip=client_ip(request))
    db.commit()
    message = _("Closed as a duplicate of “%(title)s”.") % {"title": original.title}
    return _answer(request, db, suggestion, back, message)


@router.post("/mod/duplicates/{suggestion_id}/dismiss", name="duplicate_dismiss")
def dismiss(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    suggestion_id: int,
    back: FormText = "",
) -> Response:
    suggestion = review.access_suggestion(db, user, suggestion_id)
    review.dismiss(db, user, suggestion, ip=client_ip(request))
    db.commit()
    return _answer(request, db, suggestion, back, _("Marked as not a duplicate."))
