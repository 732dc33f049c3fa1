"""Pages and API for a thread's private follow-up: the conversation page (customer and staff,
everyone else gets 404), opening it from a thread, replying and closing with a public outcome."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from community import threads
from community.api import ERRORS
from community.core import policy
from community.core.auth import CurrentUser
from community.core.db import SessionDep
from community.core.errors import Conflict, FormErrors, NotFound
from community.core.forms import parse_form
from community.core.i18n import gettext as _
from community.core.models import Thread, User
from community.core.ratelimit import limited
from community.core.schemas import AuthorOut
from community.core.web import flash_redirect, render
from crowdservice.followup import service as followup
from crowdservice.followup.models import PrivateConversation
from crowdservice.followup.schemas import (
    PrivateCloseIn,
    PrivateConversationOut,
    PrivateMessageIn,
    PrivateMessageOut,
)

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["support"], responses=ERRORS)  # type: ignore[arg-type]

FormText = Annotated[str, Form()]


# --- pages -----------------------------------------------------------------------------------


def _render_conversation(
    request: Request,
    user: User,
    conversation: PrivateConversation,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    thread = conversation.thread
    return render(
        request,
        "crowdservice/followup.html",
        {
            "conversation": conversation,
            "thread": thread,
            "brand": thread.forum.brand,
            "is_customer": user.id == conversation.customer_id,
            "can_manage": policy.can_follow_up_privately(user, conversation.brand_id),
            "form": form or {},
            "errors": errors or {},
        },
        status_code=status_code,
    )


def _render_open_form(
    request: Request,
    thread: Thread,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "crowdservice/followup_open.html",
        {
            "thread": thread,
            "brand": thread.forum.brand,
            "followup_form": form or {},
            "followup_errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/private/{conversation_id}", response_class=HTMLResponse, name="private_conversation")
def conversation_page(
    request: Request, db: SessionDep, user: CurrentUser, conversation_id: int
) -> Response:
    conversation = followup.access_conversation(db, user, conversation_id)
    return _render_conversation(request, user, conversation)


@router.get("/t/{thread_id}/private", response_class=HTMLResponse, name="private_for_thread")
def thread_private(request: Request, db: SessionDep, user: CurrentUser, thread_id: int) -> Response:
    """The customer and staff go to the thread's conversation; staff with none yet get the form
    that opens it; for anyone else there is nothing here."""
    thread = threads.access_thread(db, user, thread_id)
    try:
        conversation = followup.conversation_for_thread(db, user, thread.id)
    except NotFound:
        if not policy.can_follow_up_privately(user, thread.brand_id):
            raise
        return _render_open_form(request, thread)
    return RedirectResponse(followup.conversation_path(conversation), status_code=303)


@router.post(
    "/t/{thread_id}/private",
    response_class=HTMLResponse,
    name="private_open",
    dependencies=[limited("post")],
)
def open_submit(
    request: Request, db: SessionDep, user: CurrentUser, thread_id: int, body: FormText = ""
) -> Response:
    # Nobody else learns anything from the form (the thread's own brand is checked on opening).
    policy.ensure_can_follow_up_privately(user, None)
    thread = threads.access_thread(db, user, thread_id)
    try:
        text = parse_form(PrivateMessageIn, {"body": body}).body
        conversation = followup.open_followup(db, user, thread, text)
    except FormErrors as exc:
        db.rollback()
        thread = threads.access_thread(db, user, thread_id)
        return _render_open_form(
            request, thread, form={"body": body}, errors=exc.errors, status_code=422
        )
    except Conflict as exc:
        db.rollback()
        return flash_redirect(request, f"/t/{thread_id}", str(exc), category="error")
    db.commit()
    return flash_redirect(
        request,
        followup.conversation_path(conversation),
        _("The conversation continues in private; the author has been notified."),
    )


@router.post(
    "/private/{conversation_id}/messages",
    response_class=HTMLResponse,
    name="private_reply",
    dependencies=[limited("post")],
)
def reply_submit(
    request: Request, db: SessionDep, user: CurrentUser, conversation_id: int, body: FormText = ""
) -> Response:
    conversation = followup.access_conversation(db, user, conversation_id)
    here = followup.conversation_path(conversation)
    try:
        text = parse_form(PrivateMessageIn, {"body": body}).body
        followup.reply(db, user, conversation, text)
    except FormErrors as exc:
        db.rollback()
        conversation = followup.access_conversation(db, user, conversation_id)
        return _render_conversation(
            request, user, conversation, form={"body": body}, errors=exc.errors, status_code=422
        )
    except Conflict as exc:
        db.rollback()
        return flash_redirect(request, here, str(exc), category="error")
    db.commit()
    return flash_redirect(request, here, _("Your message is sent."))


@router.post("/private/{conversation_id}/close", response_class=HTMLResponse, name="private_close")
def close_submit(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    conversation_id: int,
    public_outcome: FormText = "",
) -> Response:
    conversation = followup.access_conversation(db, user, conversation_id)
    here = followup.conversation_path(conversation)
    try:
        outcome = parse_form(PrivateCloseIn, {"public_outcome": public_outcome}).public_outcome
        post = followup.close(db, user, conversation, outcome)
    except FormErrors as exc:
        db.rollback()
        conversation = followup.access_conversation(db, user, conversation_id)
        return _render_conversation(
            request,
            user,
            conversation,
            form={"public_outcome": public_outcome},
            errors=exc.errors,
            status_code=422,
        )
    except Conflict as exc:
        db.rollback()
        return flash_redirect(request, here, str(exc), category="error")
    db.commit()
    if post is not None:
        return flash_redirect(
            request,
            f"/t/{conversation.thread_id}#post-{post.id}",
            _("The conversation is closed and its outcome is posted on the thread."),
        )
    return flash_redirect(request, here, _("The conversation is closed."))


# --- API -------------------------------------------------------------------------------------


def conversation_out(conversation: PrivateConversation) -> PrivateConversationOut:
    def author(user: User | None) -> AuthorOut | None:
        return AuthorOut.model_validate(user) if user is not None else None

    messages = [
        PrivateMessageOut(
            id=message.id,
            author=author(message.author),
            body=message.body,
            body_html=message.body_html,
            created_at=message.created_at,
        )
        for message in conversation.messages
    ]
    fields: dict[str, Any] = {
        "id": conversation.id,
        "thread_id": conversation.thread_id,
        "thread_title": conversation.thread.title,
        "customer": author(conversation.customer),
        "opened_at": conversation.opened_at,
        "last_message_at": conversation.last_message_at,
        "closed_at": conversation.closed_at,
        "outcome_post_id": conversation.outcome_post_id,
        "messages": messages,
    }
    return PrivateConversationOut(**fields)


@api.get("/private/{conversation_id}", response_model=PrivateConversationOut)
def api_conversation(
    db: SessionDep, user: CurrentUser, conversation_id: int
) -> PrivateConversationOut:
    return conversation_out(followup.access_conversation(db, user, conversation_id))


@api.post(
    "/private/{conversation_id}/messages",
    response_model=PrivateMessageOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[limited("post")],
)
def api_reply(
    db: SessionDep, user: CurrentUser, conversation_id: int, body: PrivateMessageIn
) -> PrivateMessageOut:
    conversation = followup.access_conversation(db, user, conversation_id)
    message = followup.reply(db, user, conversation, body.body)
    db.commit()
    return PrivateMessageOut(
        id=message.id,
        author=AuthorOut.model_validate(user),
        body=message.body,
        body_html=message.body_html,
        created_at=message.created_at,
    )


@api.post(
    "/threads/{thread_id}/private",
    response_model=PrivateConversationOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[limited("post")],
)
def api_open(
    db: SessionDep, user: CurrentUser, thread_id: int, body: PrivateMessageIn
) -> PrivateConversationOut:
    policy.ensure_can_follow_up_privately(user, None)
    thread = threads.access_thread(db, user, thread_id)
    conversation = followup.open_followup(db, user, thread, body.body)
    db.commit()
    return conversation_out(followup.access_conversation(db, user, conversation.id))
