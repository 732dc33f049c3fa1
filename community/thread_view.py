"""The thread page's rendering, with post cards that plain members share.

A member who is active, not staff, and has no vote and no post in a thread sees its question
and answers as every other such member does, but for the CSRF token in the vote forms. Those
cards (the question's and the answers section) are rendered once with a placeholder for the
token, kept in the fragment cache (community.core.fragment_cache: until the next write, at most
PAGE_CACHE_SECONDS, per language) and served with each viewer's own token. The thread row and
the viewer's marks on it come in one statement, and the page around the cards (the header, the
helpful and watch buttons, the answer form) is the viewer's own: such a page reads no posts.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy.orm import Session

from community import thread_reading
from community.core import policy
from community.core.fragment_cache import shared_fragment
from community.core.models import Thread, User
from community.core.web import render, render_fragment
from crowdservice import service as crowd_service
from kb import duplicate_review
from kb import service as kb_service

TEMPLATE = "community/thread.html"
CARD_BLOCKS = ("question_card", "answers")


def csrf_slot(secret_key: str) -> str:
    """The placeholder for the CSRF token in shared cards: derived from the secret key, so the
    processes sharing a cache agree on it and no post can contain it."""
    return hmac.new(secret_key.encode(), b"thread-cards:csrf-slot", hashlib.sha256).hexdigest()


def render_thread(
    request: Request,
    db: Session,
    user: User | None,
    thread: Thread,
    *,
    answer_sort: str = "score",
    block: str | None = None,
    oob: bool = False,
    answer_form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    kb_status: tuple[kb_service.ArticleLink | None, bool] | None = None,
    frame: thread_reading.ThreadFrame | None = None,
) -> HTMLResponse:
    """The page (or its `block` for htmx); with `frame` (thread_reading.shared_frame), the
    shared cards inside the viewer's own frame."""
    kb_article, kb_solution = kb_status or kb_service.thread_kb_status(db, thread.id)
    context: dict[str, Any] = {
        "thread": thread,
        "forum": thread.forum,
        "brand": thread.forum.brand,
        "answer_form": answer_form or {},
        "errors": errors or {},
        "kb_article": kb_article,
        "kb_solution": kb_solution,
        "is_curator": policy.can_curate(user, thread.brand_id),
        "can_retag": policy.can_retag(user, thread) and thread.locked_at is None,
        "support": crowd_service.thread_panel(db, user, thread),
        "duplicate_suggestions": duplicate_review.for_thread(db, user, thread),
        "can_decide_duplicates": policy.can_moderate(user, thread.brand_id),
        # The original of a duplicate is named only to who may read its forum.
        "duplicate_readable": thread.duplicate_of is not None
        and policy.can_read_forum(user, thread.duplicate_of.forum),
        "oob": oob,
        "cards": None,
    }
    answer_sort = thread_reading.answer_order(answer_sort)

    def full_page() -> dict[str, Any]:
        page = thread_reading.thread_page(db, user, thread, answer_sort=answer_sort)
        return context | {"page": page}

    if frame is None:
        context = full_page()
    else:
        cards = _shared_cards(request, thread, answer_sort, full_page)
        context = context | {"page": frame, "cards": cards}
    return render(request, TEMPLATE, context, block=block, status_code=status_code)


def _shared_cards(
    request: Request, thread: Thread, answer_sort: str, full_page: Callable[[], dict[str, Any]]
) -> dict[str, Markup]:
    """Both cards in one cache entry (one store round trip a page), split at a separator that
    no rendering of a post can contain (it holds the slot, which is secret)."""
    slot = csrf_slot(request.app.state.settings.effective_secret_key)
    separator = Markup(f"<!--{slot}:next-card-->")  # noqa: S704 - a comment of our own

    def render_cards() -> Markup:
        context = full_page() | {"csrf_token": slot}
        return separator.join(render_fragment(request, TEMPLATE, b, context) for b in CARD_BLOCKS)

    cards = shared_fragment(request, "thread-cards", [thread.id, answer_sort], render_cards)
    token = getattr(request.state, "csrf_token", "")
    return {
        block: card.replace(slot, token)
        for block, card in zip(CARD_BLOCKS, cards.split(separator), strict=True)
    }
